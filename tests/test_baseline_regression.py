"""CI's regression check: the built-in small-model SDRRL run, end to end, against baselines/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "baselines" / "smoke__smollm2-135m__sdrrl.json"
# Exactly the command the baseline was recorded with (baselines/README.md).
RUN = ["run", "--trainer", "sdrrl", "--model", "smollm2-135m", "--suite", "smoke",
       "--limit", "4", "--max-gen-toks", "64", "--name", "ci-sdrrl"]


def test_builtin_sdrrl_run_matches_the_recorded_baseline(tmp_path, smollm2):
    harness = str(Path(sys.executable).parent / "harness")
    # A private evaluation cache: the check must see this run's own scores, not reused ones.
    env = {**os.environ, "SDRRL_EVAL_CACHE": str(tmp_path / "eval-cache"), "NO_COLOR": "1"}
    runs = tmp_path / "runs"
    proc = subprocess.run([harness, *RUN, "--runs-dir", str(runs)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check = subprocess.run([harness, "check", str(runs / "ci-sdrrl"), "--against", str(BASELINE)],
                           env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "check passed" in check.stdout
