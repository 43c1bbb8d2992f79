"""A user's own tasks/, trainers/ or reports/ folder in the working folder never replaces ours.

Under `python -m harness` the working folder is first on sys.path; harness/__init__.py looks the
three packages up beside harness/ first. The decoys here raise on import, so any use of one fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import SIBLINGS
from run_fixtures import make_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def decoy_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    for name in SIBLINGS:
        (folder / name).mkdir(parents=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('the user\\'s own {name} package')\n")
    return folder


def _python(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SDRRL_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
    return subprocess.run([sys.executable, *args], cwd=folder, capture_output=True, text=True, timeout=300, env=env)


def test_the_decoys_shadow_a_plain_import(decoy_folder):
    # What the guard is for: without harness imported first, the working folder's package wins.
    for name in SIBLINGS:
        proc = _python(decoy_folder, "-c", f"import {name}")
        assert proc.returncode != 0 and f"the user's own {name} package" in proc.stderr


def test_the_cli_run_from_a_folder_with_decoys_uses_ours(decoy_folder, tmp_path):
    run = make_run(tmp_path / "runs", "r1", trainer="sdrrl", n=8)
    commands = [
        ("list", "trainers"),  # imports every trainer module
        ("doctor", "--suite", "smoke", "--trainer", "sdrrl"),  # reads the tasks' data loading (tasks.dataio)
        ("report", str(run), "--out", str(tmp_path / "report")),  # the reports package
    ]
    for command in commands:
        proc = _python(decoy_folder, "-m", "harness", *command)
        assert proc.returncode == 0 and "user's own" not in proc.stdout + proc.stderr, (command, proc.stderr[-2000:])
    assert (tmp_path / "report" / "report.md").is_file()
    proc = _python(decoy_folder, "-c", "import harness, tasks, trainers, reports; print(tasks.__file__, trainers.__file__, reports.__file__)")
    assert proc.returncode == 0 and all(Path(p).is_relative_to(ROOT) for p in proc.stdout.split()), proc.stderr
