"""Shared fixtures: the tiny random Llama (built here, offline) and the built-in SmolLM2."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tiny_model import build_tiny_llama
from tiny_runs import FinishedRun, tiny_run_args

# Tests run without the network: no download attempts (sacreBLEU's flores200 model, the Hub).
os.environ.setdefault("SDRRL_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# No test reads a route table `harness selftest` wrote on this machine: `--engine auto` starts from the
# design default (tests that need a table write their own, tests/test_selftest.py).
os.environ["SDRRL_ROUTES"] = os.path.join(tempfile.mkdtemp(prefix="sdrrl-routes-"), "routes.json")


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture(scope="session")
def finished_tiny_run(tiny_llama, tmp_path_factory) -> FinishedRun:
    """One uninterrupted tiny SDRRL run (tests/tiny_runs.py), computed once for the tests that need its result."""
    from harness.app.cli import main

    folder = tmp_path_factory.mktemp("finished-tiny-run")
    finished = FinishedRun(folder / "runs", folder / "eval-cache")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("SDRRL_EVAL_CACHE", str(finished.eval_cache))
        assert main(tiny_run_args(tiny_llama, finished.runs_dir)) == 0
    return finished


@pytest.fixture(scope="session")
def smollm2() -> Path:
    from harness.core.models import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture()
def eval_cache(tmp_path, monkeypatch) -> Path:
    """A private shared-evaluation cache, so a test never reuses another test's scores."""
    cache = tmp_path / "eval-cache"
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_comet(tmp_path_factory) -> Path:
    """A tiny random COMET checkpoint, built by the COMET venv (bash scripts/install.sh --comet)."""
    import subprocess

    from harness.evaluation.comet import default_python

    python = default_python()
    if not python.exists():
        pytest.fail(f"no COMET venv at {python}: run bash scripts/install.sh --comet")
    out = tmp_path_factory.mktemp("tiny-comet")
    subprocess.run([str(python), str(Path(__file__).parent / "tiny_comet.py"), str(out)], check=True, capture_output=True)
    return out
