"""A damaged output of a finished stage is found, named in one line and recomputed, alone: the
training set, the adapter, a task's scores.json and samples.jsonl, an entry of the shared
evaluation cache. Each rerun ends with the same scores and samples as the undamaged run."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness.evaluation.evaluate as evaluate_mod
from harness.app.cli import main
from harness.core.runstore import read_json
from tiny_runs import copy_run, tiny_run_args

pytestmark = pytest.mark.slow


def _final_files(run: Path) -> dict[str, object]:
    """What a run ends with: training set, adapter, held-out losses, per-task scores (minus timings
    and where they came from) and samples."""
    files: dict[str, object] = {name: (run / name).read_bytes() for name in
                                ("data/train.jsonl", "data/heldout.jsonl", "adapter/adapter_model.safetensors", "eval/heldout.json")}
    for scores in sorted((run / "eval").glob("*/*/scores.json")):
        # "adapter" is the adapter folder's path: the copy's own where recomputed, the session run's where not.
        data = {k: v for k, v in read_json(scores).items() if k not in ("wall_s", "engine_call", "reused_from_cache", "adapter")}
        files[str(scores.parent.relative_to(run))] = (data, (scores.parent / "samples.jsonl").read_bytes())
    return files


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _cache_entry(eval_cache: Path, task: str, variant: str) -> Path:
    (entry,) = [p.parent for p in eval_cache.glob("*/scores.json")
                if read_json(p)["task"] == task and read_json(p)["variant"] == variant]
    return entry


def test_each_damaged_output_is_named_and_recomputed_alone(tiny_llama, finished_tiny_run, tmp_path, monkeypatch, capsys):
    copy = copy_run(finished_tiny_run, tmp_path)  # the session's finished run, ours to damage
    runs, run, eval_cache = copy.runs_dir, copy.run, copy.eval_cache
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(eval_cache))
    reference = _final_files(run)
    computed: list[str] = []  # tasks evaluated by the model (not restored from a cache)
    real_run_call = evaluate_mod._run_call
    monkeypatch.setattr(evaluate_mod, "_run_call", lambda req, s, lm, served, call: computed.extend(t.name for t, _ in call.tasks)
                        or real_run_call(req, s, lm, served, call))
    cases = [
        ("data/train.jsonl", [], "data: {path} is damaged (size differs from the manifest); rebuilding the data stage", "train: cached"),
        ("adapter/adapter_model.safetensors", [], "train: {path} is damaged (size differs from the manifest); training again", "data: cached"),
        ("eval/base/belebele_cs/scores.json", [], "evaluate: {path} is damaged (it does not parse); evaluating belebele_cs again", "train: cached"),
        ("eval/adapter/flores200_cs-en/samples.jsonl", [], "evaluate: {path} is damaged (size differs from its integrity record); evaluating flores200_cs-en again", "train: cached"),
    ]
    for name, expect_computed, line, cached in cases:
        path = run / name
        _truncate(path)
        capsys.readouterr()
        computed.clear()
        assert main(tiny_run_args(tiny_llama, runs)) == 0, name
        err = capsys.readouterr().err
        assert line.format(path=path) in err.splitlines(), err
        assert cached in err and "internal error" not in err
        assert computed == expect_computed, name  # a task's result comes back from the shared cache
        assert _final_files(run) == reference, name

    # A damaged entry of the shared cache is a miss: the task is evaluated again, and the entry rewritten.
    entry = _cache_entry(eval_cache, "sib200_cs", "adapter")
    _truncate(entry / "samples.jsonl")
    capsys.readouterr()
    computed.clear()
    assert main(tiny_run_args(tiny_llama, runs, "--force", "evaluate", "--keep-cache")) == 0
    err = capsys.readouterr().err
    line = f"evaluate: shared evaluation cache: {entry / 'samples.jsonl'} is damaged (size differs from its integrity record); a miss, sib200_cs is recomputed"
    assert line in err.splitlines(), err
    assert computed == ["sib200_cs"]
    assert _final_files(run) == reference
    assert read_json(entry / "scores.json")["metrics"] == reference["eval/adapter/sib200_cs"][0]["metrics"]
