"""kill -9 at each stage of `harness run` on the tiny model, resume, and end with the same files as
an uninterrupted run; plus --force redoing evaluations and a failed plan freezing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.evaluation.registry import get_suite
from harness.core.runstore import read_json
from tiny_runs import tiny_run_args

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

# Runs `harness run` with one function replaced by a SIGKILL of the process, in the middle of `stage`.
DRIVER = textwrap.dedent("""
    import os, signal, sys

    def die(*_a, **_k):
        os.kill(os.getpid(), signal.SIGKILL)

    stage = sys.argv[1]
    if stage == "data":  # after the self-distilled answers and translations are cached
        import trainers.sdrrl as mod
        mod.add_parallel = die
    elif stage == "train":  # after the first optimizer step
        import trainers.lora as mod
        real_train = mod.train_lora
        mod.train_lora = lambda *a, **k: real_train(*a, **{**k, "on_step": die})
    elif stage == "evaluate":  # after the first task's scores are written
        import harness.evaluation.evaluate as mod
        real_write, calls = mod._write_task, []
        def write(*a):
            calls.append(a)
            if len(calls) == 3:
                die()
            real_write(*a)
        mod._write_task = write
    elif stage == "report":
        import reports.build as mod
        mod.build_report = die

    from harness.app.cli import main
    if __name__ == "__main__":
        sys.exit(main(sys.argv[2:]))
""")


def _final_files(run: Path) -> dict[str, object]:
    """What a run ends with: training set, adapter, per-task samples and scores (minus timings and paths)."""
    files: dict[str, object] = {
        "train.jsonl": (run / "data" / "train.jsonl").read_bytes(),
        "adapter": (run / "adapter" / "adapter_model.safetensors").read_bytes(),
    }
    for scores in sorted((run / "eval").glob("*/*/scores.json")):
        key = str(scores.parent.relative_to(run))
        data = {k: v for k, v in read_json(scores).items() if k not in ("wall_s", "engine_call", "adapter", "reused_from_cache")}  # timings and batching
        files[key] = (data, (scores.parent / "samples.jsonl").read_bytes())
    return files


def test_kill_at_each_stage_then_resume_ends_identical(tiny_llama, finished_tiny_run, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "SDRRL_EVAL_CACHE": str(tmp_path / "cache-killed")}
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    runs = tmp_path / "killed"
    run = runs / "tiny"
    for stage in ("data", "train", "evaluate", "report"):
        proc = subprocess.run([sys.executable, str(driver), stage, *tiny_run_args(tiny_llama, runs)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, f"{stage}: {proc.returncode} {proc.stderr[-2000:]}"
        if stage != "data":  # the killed run's lock is left behind and taken over
            assert "taking over" in proc.stderr, proc.stderr[-2000:]
        stages = read_json(run / "manifest.json")["stages"]
        assert stage not in stages, f"{stage} recorded as done though killed"
        if stage == "data":
            assert (run / "data" / "work" / "self_answers.jsonl").exists()  # finished work is kept
    proc = subprocess.run([sys.executable, str(driver), "none", *tiny_run_args(tiny_llama, runs)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "data: cached" in proc.stderr and "train: cached" in proc.stderr and "evaluate:" in proc.stderr
    leftovers = [p for p in run.rglob("*") if p.name.endswith(".tmp") or p.name in ("adapter.partial", ".lock")]
    assert not leftovers, leftovers

    # The uninterrupted reference run (the session's, in-process, its own evaluation cache).
    killed, reference = _final_files(run), _final_files(finished_tiny_run.run)
    n_tasks = len(get_suite("smoke", "cs").tasks)
    assert killed.keys() == reference.keys() and len(killed) == 2 + 2 * n_tasks
    for key in reference:
        assert killed[key] == reference[key], key


def test_force_evaluate_recomputes_and_a_failed_plan_freezes_nothing(tiny_llama, tmp_path, monkeypatch, capsys):
    import harness.evaluation.evaluate as evaluate_mod

    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(tmp_path / "cache"))
    args = ["run", "--trainer", "base", "--model", str(tiny_llama), "--suite", "smoke", "--langs", "cs", "--engine", "hf",
            "--runs-dir", str(tmp_path / "runs"), "--limit", "1", "--max-gen-toks", "4", "--max-model-len", "256"]
    assert main([*args, "--name", "first"]) == 0
    # Another run of the same model and settings takes every task from the shared cache ...
    capsys.readouterr()
    assert main([*args, "--name", "second"]) == 0
    n_tasks = len(get_suite("smoke", "cs").tasks)
    assert f"{n_tasks} from the shared evaluation cache" in capsys.readouterr().err
    # ... and a cached rerun says so for the evaluate stage.
    assert main([*args, "--name", "second"]) == 0
    assert "evaluate: cached" in capsys.readouterr().err
    # --force evaluate computes every task again; --keep-cache takes them from the cache.
    built = []
    real_build = evaluate_mod.build_lm
    monkeypatch.setattr(evaluate_mod, "build_lm", lambda *a, **k: built.append(1) or real_build(*a, **k))
    assert main([*args, "--name", "second", "--force", "evaluate"]) == 0
    scores = [read_json(p) for p in (tmp_path / "runs" / "second" / "eval" / "base").glob("*/scores.json")]
    assert built and len(scores) == n_tasks and not any(s.get("reused_from_cache") for s in scores)
    built.clear()
    assert main([*args, "--name", "second", "--force", "evaluate", "--keep-cache"]) == 0
    assert not built

    # A plan that fails (bad model) leaves no spec: the fixed command then runs without --force plan.
    assert main([*args, "--name", "third", "--model", str(tmp_path / "no-model")]) == 2
    assert not (tmp_path / "runs" / "third" / "spec.yaml").exists()
    fixed = [a if a != str(tmp_path / "no-model") else str(tiny_llama) for a in args]
    assert main([*fixed, "--name", "third"]) == 0
    assert json.dumps(read_json(tmp_path / "runs" / "third" / "manifest.json")["stages"]["plan"])
