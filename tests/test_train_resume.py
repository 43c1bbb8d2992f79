"""Training checkpoints: a run killed mid-way resumes from its last checkpoint with the same loss curve."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from trainers.checkpoint import LoopState, latest
from trainers.config import TrainConfig
from trainers.lora import train_lora
from trainers.sampler import GroupBatchSampler, optimizer_steps

ROOT = Path(__file__).parent.parent
# Dropout, warm-up + cosine decay and several epochs: the RNG, the scheduler and the sampler's
# epoch all have to come back for the curve to match.
CONFIG = dict(
    lora_rank=8, lora_dropout=0.1, learning_rate=2e-2, warmup_ratio=0.3, lr_scheduler="cosine",
    batch_size=4, micro_batch_size=2, max_steps=7, checkpoint_every=2,
)


def _records() -> list[dict]:
    answers = ["The dog runs to the house.", "A cat sleeps.", "Water is blue and cold.", "Trees grow slowly."]
    return [
        {"id": f"g{g}:{k}", "group": f"g{g}", "kind": "en_self", "lang": "en",
         "messages": [{"role": "user", "content": f"Question {g} {k}"}, {"role": "assistant", "content": answers[g]}]}
        for g in range(4)
        for k in range(2)
    ]


def test_positions_resume_the_same_batches():
    """From any saved (step, epoch, batch) the generator yields exactly the tail of an uninterrupted run."""
    sampler = GroupBatchSampler([f"g{i // 2}" for i in range(16)], batch_size=4, seed=3)
    full = list(optimizer_steps(sampler, grad_accum_steps=3, total_steps=8, state=LoopState()))
    assert len(full) == 8 and full[0][0] == (0, 3) and full[1][0] == (1, 0)  # 4 batches an epoch: 3 + 1
    for k, ((epoch, batch), _) in enumerate(full[:-1]):
        tail = list(optimizer_steps(sampler, 3, 8, LoopState(step=k + 1, epoch=epoch, batch=batch)))
        assert [b for _, b in tail] == [b for _, b in full[k + 1 :]]


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_loss_curve(tiny_llama, tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    records_file = tmp_path / "records.json"
    records_file.write_text(json.dumps(_records()))
    # A separate process killed with SIGKILL right after step 5: checkpoints exist for steps 2 and 4.
    script = textwrap.dedent(
        f"""
        import json, os, signal
        from pathlib import Path
        from trainers.config import TrainConfig
        from trainers.lora import train_lora
        def die(info):
            if info["step"] == 5:
                os.kill(os.getpid(), signal.SIGKILL)
        records = json.loads(Path({str(records_file)!r}).read_text())
        train_lora(Path({str(tiny_llama)!r}), records, Path({str(tmp_path / 'killed')!r}), TrainConfig(**{CONFIG!r}),
                   seed=1, on_step=die, checkpoint_dir=Path({str(ckpt_dir)!r}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert proc.returncode == -9, proc.stderr[-3000:]
    assert latest(ckpt_dir).name == "step-4" and not (tmp_path / "killed").exists()

    resumed = train_lora(tiny_llama, _records(), tmp_path / "resumed", TrainConfig(**CONFIG), seed=1, checkpoint_dir=ckpt_dir)
    straight = train_lora(tiny_llama, _records(), tmp_path / "straight", TrainConfig(**CONFIG), seed=1)
    assert resumed["resumed_from_step"] == 4 and resumed["steps"] == 7
    assert resumed["losses"] == pytest.approx(straight["losses"], rel=1e-5, abs=1e-6)
    assert resumed["train_tokens"] == straight["train_tokens"] and resumed["examples_seen"] == straight["examples_seen"]
    from safetensors.torch import load_file

    a = load_file(tmp_path / "resumed" / "adapter_model.safetensors")
    b = load_file(tmp_path / "straight" / "adapter_model.safetensors")
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)

    # A checkpoint of other records is never resumed from: it is deleted and training starts at step 1.
    other = _records()[:6]
    fresh = train_lora(tiny_llama, other, tmp_path / "other", TrainConfig(**CONFIG), seed=1, checkpoint_dir=ckpt_dir)
    assert fresh["resumed_from_step"] == 0 and fresh["steps"] == 7
