"""CI's regression check: the built-in small-model SDRRL run, end to end, against baselines/; and the
tiny-model runs that take the paths it does not (the NLLB translator, a seed other than 0).

Each command comes from its baseline file itself (`command`, written by baselines/record_smoke.sh or
baselines/record_tiny.sh), so CI reruns exactly what was recorded; the file's tolerances come from
reruns of that command.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.core.runstore import RunPaths, read_json, read_jsonl, task_samples, task_scores
from harness.evaluation.registry import get_suite
from tiny_nllb import build_baseline_models

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "baselines" / "smoke__smollm2-135m__sdrrl.json"
# The tiny-model baselines (baselines/record_tiny.sh) and the translator each one's command must use.
TINY_BASELINES = {"tiny__sdrrl-nllb-seed1": "nllb", "tiny__sdrrl-nllb-ct2-seed1": "nllb-ct2"}


def recorded_command(baseline: Path = BASELINE) -> list[str]:
    words = shlex.split(json.loads(baseline.read_text(encoding="utf-8"))["command"])
    assert words[:2] == ["harness", "run"] and "--runs-dir" not in words, words
    return words[1:]


def test_builtin_sdrrl_run_matches_the_recorded_baseline(tmp_path, smollm2):
    harness = str(Path(sys.executable).parent / "harness")
    # A private evaluation cache: the check must see this run's own scores, not reused ones.
    env = {**os.environ, "SDRRL_EVAL_CACHE": str(tmp_path / "eval-cache"), "NO_COLOR": "1"}
    runs = tmp_path / "runs"
    args = recorded_command()
    proc = subprocess.run([harness, *args, "--runs-dir", str(runs)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    name = args[args.index("--name") + 1]
    check = subprocess.run([harness, "check", str(runs / name), "--against", str(BASELINE)],
                           env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "check passed" in check.stdout
    assert_base_model_is_sane(runs / name, get_suite("smoke"), int(args[args.index("--limit") + 1]))


def assert_base_model_is_sane(run_dir: Path, suite, limit: int) -> None:
    """The base model's own evaluation in that run (the whole smoke suite through vLLM) is a real model's.

    Folded in here rather than evaluated again in a test of its own: it is the same vLLM evaluation.
    """
    base = RunPaths(run_dir).eval_dir("base")
    for task in suite.tasks:
        scores = read_json(task_scores(base / task.name))
        metric = scores["primary_metric"]
        assert 0 <= scores["metrics"][metric] <= (1 if metric == "acc" else 100), task.name
        assert scores["n_samples"] == limit, task.name
        if scores["kind"] == "generation":  # the real model answers every item, with text
            rows = read_jsonl(task_samples(base / task.name))
            assert all(r["prediction"].strip() for r in rows), task.name
    # SmolLM2 tells English topics apart far better than chance (1/7), unlike a random model.
    assert read_json(task_scores(base / "sib200_en"))["metrics"]["acc"] > 0.5


@pytest.fixture(scope="module")
def tiny_baseline_folder(tmp_path_factory, tiny_llama) -> Path:
    """Where the tiny baselines' commands run: they name the tests' tiny models by relative folder."""
    return build_baseline_models(tmp_path_factory.mktemp("tiny-baselines"), tiny_llama)


@pytest.mark.parametrize("stem", sorted(TINY_BASELINES))
def test_tiny_nllb_run_at_seed_1_matches_its_recorded_baseline(stem, tiny_baseline_folder, tmp_path, monkeypatch, capsys):
    """SDRRL with the NLLB translator (transformers, CTranslate2) at seed 1: a translator that returns its
    input, or a seed that does not reach the sampling, moves the training-loss and held-out cells."""
    args = recorded_command(ROOT / "baselines" / f"{stem}.json")
    settings = {args[i + 1].split("=", 1)[0]: args[i + 1].split("=", 1)[1] for i, a in enumerate(args) if a == "--set"}
    # What these cells are for, kept by any re-recording: the NLLB path and a seed other than 0.
    assert settings["translator"] == TINY_BASELINES[stem] and int(args[args.index("--seed") + 1]) != 0, args
    monkeypatch.chdir(tiny_baseline_folder)
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))  # the CTranslate2 conversion: private
    # Base-model evaluations are shared by the tiny runs (same model and settings); the adapters' are not.
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(tiny_baseline_folder / "eval-cache"))
    runs = tmp_path / "runs"
    assert main([*args, "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    rc = main(["check", str(runs / args[args.index("--name") + 1]), "--against", str(ROOT / "baselines" / f"{stem}.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "check passed" in out, out
