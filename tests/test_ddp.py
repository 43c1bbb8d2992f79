"""Data-parallel training: 2 CPU processes (accelerate launch, gloo) follow the 1-process loss curve."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainers.config import TrainConfig
from trainers.lora import train_lora

ROOT = Path(__file__).parent.parent
# Gloo sums gradients in another order than one process accumulates them: float32 rounding only.
TOLERANCE = 1e-4
# No dropout: each process draws its own dropout masks, so with dropout the runs differ by design.
CONFIG = dict(lora_rank=8, lora_dropout=0.0, learning_rate=2e-2, warmup_ratio=0.0, lr_scheduler="constant", batch_size=2, max_steps=4)
# Batches sized in tokens: fractional records per batch, so the processes' batches of a step differ in size.
SIZED = {"records": {}, "tokens": {"tokens_per_step": 150}}


def _records() -> list[dict]:
    # Answers of different lengths: the processes' batches hold different numbers of answer tokens,
    # so the loss must be normalised by the tokens of all processes, not each process's own.
    answers = ["The dog runs to the house and the cat sees the big red tree.", "A cat.", "Water is blue.", "Trees grow slowly in the cold.", "Sky.", "The small dog runs."]
    return [
        {"id": f"g{g}:{k}", "group": f"g{g}", "kind": "en_self", "lang": "en",
         "messages": [{"role": "user", "content": f"Question {g} {k}"}, {"role": "assistant", "content": answers[g] * (k + 1)}]}
        for g in range(6)
        for k in range(2)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("sized_in", list(SIZED))
def test_two_processes_follow_the_one_process_loss_curve(tiny_llama, tmp_path, sized_in):
    config = {**CONFIG, **SIZED[sized_in]}
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    records_file, out = tmp_path / "records.json", tmp_path / "stats.json"
    records_file.write_text(json.dumps(_records()))
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(
        f"""
        import json
        import os
        from pathlib import Path
        from trainers.config import TrainConfig
        from trainers.lora import train_lora
        records = json.loads(Path({str(records_file)!r}).read_text())
        stats = train_lora(Path({str(tiny_llama)!r}), records, Path({str(tmp_path / 'ddp')!r}), TrainConfig(**{config!r}), seed=0)
        # One writer: both processes return the stats, and two writes to one file can interleave.
        if stats["num_processes"] == 2 and os.environ.get("RANK") == "0":
            Path({str(out)!r}).write_text(json.dumps(stats))
        """
    ))
    # `--cpu` alone runs one process (several CPU processes need mpirun there); accelerate's torchrun
    # launcher with ACCELERATE_USE_CPU gives 2 processes on the gloo backend.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1"}
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert proc.returncode == 0 and out.exists(), proc.stderr[-3000:]
    two = json.loads(out.read_text())

    # One process, the same global batch: the two processes' batches accumulated into one step.
    one = train_lora(tiny_llama, _records(), tmp_path / "one", TrainConfig(**{**config, "grad_accum_steps": 2}), seed=0)
    assert two["num_processes"] == 2 and one["num_processes"] == 1
    assert two["records_per_step"] == one["records_per_step"] and two["tokens_per_step"] == one["tokens_per_step"]
    if sized_in == "tokens":  # the case this checks: batches of different sizes on the two processes
        assert (one["records_per_step"] / 2) % 1 != 0
    assert two["train_tokens"] == one["train_tokens"] and two["examples_seen"] == one["examples_seen"]
    assert two["losses"] == pytest.approx(one["losses"], rel=TOLERANCE)
    assert one["final_loss"] < one["first_loss"]  # the curve moves, so matching it means something
