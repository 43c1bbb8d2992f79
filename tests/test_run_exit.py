"""How a run ends: a forced evaluation from the cache finishes promptly, and SIGTERM ends a run as
Ctrl-C does (the same message, the lock released, no temporary file left)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.evaluation.registry import get_suite
from tiny_runs import copy_run, tiny_run_args

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
INTERRUPTED = "harness: interrupted; finished stages and tasks are kept, rerun the same command to resume"


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "SDRRL_EVAL_CACHE": str(cache)}


def test_force_evaluate_keep_cache_ends_promptly_with_its_held_out_scores(tiny_llama, finished_tiny_run, tmp_path):
    copy = copy_run(finished_tiny_run, tmp_path)  # the session's finished run and its cache: only their result is needed
    args = tiny_run_args(tiny_llama, copy.runs_dir)
    heldout = copy.run / "eval" / "heldout.json"
    before = heldout.read_bytes()
    # As a user runs it: its own process, which must end (it once sat silent for minutes).
    proc = subprocess.run([sys.executable, "-m", "harness", *args, "--force", "evaluate", "--keep-cache"],
                          env=_env(copy.eval_cache), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    n = 2 * len(get_suite("smoke", "cs").tasks)
    assert f"evaluate: done ({n} task results, {n} from the shared evaluation cache)" in proc.stderr
    assert "held-out loss" not in proc.stderr and heldout.read_bytes() == before  # kept, as the cached results are


# `harness run` that signals itself when its first task starts evaluating.
SIGNALLING = textwrap.dedent("""
    import os, signal, sys
    import harness.evaluation.evaluate as mod

    real = mod._run_call
    def run_call(*a, **k):
        os.kill(os.getpid(), int(sys.argv[1]))
        return real(*a, **k)
    mod._run_call = run_call

    from harness.app.cli import main
    if __name__ == "__main__":
        sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_sigterm_ends_a_run_as_ctrl_c_does(sig, tiny_llama, tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(SIGNALLING)
    runs = tmp_path / "runs"
    args = ["run", "--trainer", "base", "--model", str(tiny_llama), "--suite", "smoke", "--langs", "cs", "--engine", "hf",
            "--runs-dir", str(runs), "--name", "sig", "--limit", "1", "--max-gen-toks", "4", "--max-model-len", "256"]
    proc = subprocess.run([sys.executable, str(driver), str(int(sig)), *args], env=_env(tmp_path / "cache"),
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 128 + sig, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in proc.stderr
    run = runs / "sig"
    assert (run / "manifest.json").is_file() and not (run / ".lock").exists()
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
