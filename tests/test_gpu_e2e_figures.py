"""benchmarks/e2e_figures.py (read by benchmarks/gpu_e2e.sh): stage times and items/s per variant and request
type from a run folder, each lm-eval call's time counted once however many tasks it scored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.core.runstore import write_json

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import e2e_figures  # noqa: E402


def _scores(run: Path, variant: str, task: str, kind: str, n: int, call: dict | None, wall: float = 0.0) -> None:
    write_json(run / "eval" / variant / task / "scores.json",
               {"task": task, "kind": kind, "n_samples": n, "engine": "hf", "wall_s": wall, **({"engine_call": call} if call else {})})


def test_items_per_second_count_each_engine_call_once(tmp_path):
    run = tmp_path / "gpu"
    write_json(run / "manifest.json", {"stages": {"data": {"wall_s": 14.0}, "train": {"wall_s": 10.0}, "evaluate": {"wall_s": 30.0}}})
    gen_call = {"tasks": ["flores_en_cs", "flores_cs_en"], "wall_s": 4.0}
    _scores(run, "base", "flores_en_cs", "generation", 30, gen_call, 2.0)
    _scores(run, "base", "flores_cs_en", "generation", 10, gen_call, 2.0)
    _scores(run, "base", "belebele_cs", "comprehension", 20, None, 5.0)  # an older scores.json without the call
    _scores(run, "adapter", "flores_en_cs", "generation", 30, {"tasks": ["flores_en_cs"], "wall_s": 6.0})
    rates = e2e_figures.items_per_second(run)
    assert rates["base"]["generation"] == {"items": 40, "seconds": 4.0, "engines": ["hf"], "items_per_s": 10.0}
    assert rates["base"]["comprehension"]["items_per_s"] == 4.0
    assert rates["adapter"]["generation"]["items_per_s"] == 5.0
    assert e2e_figures.stage_seconds(run) == {"data": 14.0, "train": 10.0, "evaluate": 30.0}


def test_the_gpu_script_parses():
    for script in ("gpu_e2e.sh", "gpu_prep.sh"):
        proc = subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
