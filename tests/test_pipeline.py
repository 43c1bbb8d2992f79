"""`harness run` end to end on the tiny Llama: stages, caching, --force, report, baseline check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import harness.evaluation.evaluate as evaluate_mod
from harness.app.cli import main
from harness.core.runstore import read_json, read_jsonl, write_json
from harness.evaluation.evalcache import write_entry

pytestmark = pytest.mark.slow


def _run_args(model: Path, runs: Path, *extra: str) -> list[str]:
    return [
        "run", "--trainer", "sdrrl", "--model", str(model), "--suite", "smoke", "--langs", "en,cs",
        "--runs-dir", str(runs), "--name", "tiny", "--limit", "2", "--max-gen-toks", "16", "--max-model-len", "1024",
        "--set", "num_instructions=4", "--set", "answer_max_new_tokens=16", "--set", "keep_truncated_answers=true", "--set", "keep_wrong_language_answers=true", "--set", "parallel_per_lang=2",
        "--set", "max_steps=2", *extra,
    ]


def _fail(*_a, **_k):
    raise AssertionError("a finished stage ran again")


def test_run_end_to_end_then_cached_then_forced(tiny_llama, tmp_path, eval_cache, monkeypatch, capsys):
    runs = tmp_path / "runs"
    assert main(_run_args(tiny_llama, runs)) == 0
    run = runs / "tiny"
    records = read_jsonl(run / "data" / "train.jsonl")
    assert {r["kind"] for r in records} >= {"en_self", "mt"} and any(r["kind"].startswith("parallel") for r in records)
    assert {r["lang"] for r in records} == {"en", "cs"}
    heldout = read_jsonl(run / "data" / "heldout.jsonl")  # never trained on: whole groups kept out
    assert heldout and not {r["group"] for r in heldout} & {r["group"] for r in records}
    assert set(read_json(run / "eval" / "heldout.json")["langs"]) == {"en", "cs"}
    assert (run / "adapter" / "adapter_model.safetensors").exists()
    for variant in ("base", "adapter"):
        scores = read_json(run / "eval" / variant / "belebele_cs" / "scores.json")
        assert scores["variant"] == variant and scores["n_samples"] == 2
    manifest = read_json(run / "manifest.json")["stages"]
    assert set(manifest) == {"plan", "data", "train", "evaluate", "report"}
    assert manifest["data"]["records"] == len(records)
    report = (run / "report.md").read_text()
    assert "sdrrl" in report and "macro avg" in report

    # A rerun of the same command redoes nothing.
    import trainers.sdrrl as sdrrl

    monkeypatch.setattr(sdrrl.SDRRLTrainer, "build_dataset", _fail)
    monkeypatch.setattr(sdrrl.SDRRLTrainer, "train", _fail)
    monkeypatch.setattr(evaluate_mod, "build_lm", _fail)
    assert main(_run_args(tiny_llama, runs)) == 0

    # --force train: the data stay, training and the adapter's evaluation are redone.
    monkeypatch.undo()
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(eval_cache))
    monkeypatch.setattr(sdrrl.SDRRLTrainer, "build_dataset", _fail)
    before = (run / "data" / "train.jsonl").stat().st_mtime_ns
    assert main(_run_args(tiny_llama, runs, "--force", "train", "--keep-cache")) == 0  # base scores from the cache: CI time
    assert (run / "data" / "train.jsonl").stat().st_mtime_ns == before
    assert read_json(run / "manifest.json")["stages"]["train"]["finished_at"]

    # Same name, other settings: refused in one line, nothing overwritten.
    capsys.readouterr()
    assert main(_run_args(tiny_llama, runs, "--seed", "7")) == 2
    assert "seed: 0 -> 7" in capsys.readouterr().err

    # Baseline recorded from this run: the check passes, then fails naming a cell whose score drops.
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(run), "--out", str(baseline), "--tolerance", "acc=0.1"]) == 0
    assert main(["check", str(run), "--against", str(baseline)]) == 0
    scores_path = run / "eval" / "base" / "sib200_en" / "scores.json"
    scores = read_json(scores_path)
    cell = json.loads(baseline.read_text())["cells"]["base/sib200_en/acc"]
    scores["metrics"]["acc"] = cell["value"] - 0.5
    write_json(scores_path, scores)
    capsys.readouterr()
    assert main(["check", str(run), "--against", str(baseline)]) == 2  # a hand edit: refused, not compared
    assert "sib200_en/scores.json is damaged (" in capsys.readouterr().err
    write_entry(scores_path.parent, scores, read_jsonl(scores_path.parent / "samples.jsonl"))  # as an evaluation writes it
    assert main(["check", str(run), "--against", str(baseline)]) == 1
    assert "base/sib200_en/acc" in capsys.readouterr().out


def test_french_source_sdrrl_run_end_to_end(tiny_llama, tmp_path, eval_cache):
    """French as the resource-rich source: instructions machine-translated from the shipped English
    ones, self-answers in French, translated and code-switched (fr->cs lexicon composed through
    English), fr-cs parallel pairs, and retention measured on the French tasks."""
    runs = tmp_path / "runs"
    args = ["run", "--trainer", "sdrrl", "--model", str(tiny_llama), "--suite", "smoke_fr", "--langs", "fr,cs",
            "--engine", "hf", "--runs-dir", str(runs), "--name", "fr", "--limit", "2", "--max-gen-toks", "8",
            "--max-model-len", "512", "--set", "num_instructions=4", "--set", "answer_max_new_tokens=8",
            "--set", "keep_truncated_answers=true", "--set", "keep_wrong_language_answers=true", "--set", "parallel_per_lang=2", "--set", "max_steps=1"]
    assert main(args) == 0
    run = runs / "fr"
    records = read_jsonl(run / "data" / "train.jsonl")
    kinds = {(r["kind"], r["lang"]) for r in records}
    assert {("fr_self", "fr"), ("mt", "cs"), ("code_switch", "cs")} <= kinds
    assert {lang for kind, lang in kinds if kind.startswith("parallel")} == {"cs"}
    assert not any(lang == "en" for _, lang in kinds)  # English is neither source nor target here
    stats = read_json(run / "manifest.json")["stages"]["data"]["trainer_stats"]
    assert stats["instructions_from"]["written_in"] == "en" and stats["instructions_from"]["source_lang"] == "fr"
    assert stats["instructions_from"]["machine_translated_by"].startswith("lexicon:")
    from trainers.instructions import load_instructions, question_of

    english = {ex["id"]: question_of(ex) for ex in load_instructions("builtin:alpaca-smoke", 0, 0)}
    for r in (r for r in records if r["kind"] == "fr_self"):
        assert r["messages"][0]["content"] != english[r["group"]]  # the French (word-by-word MT) version
    for task in ("belebele_fr", "sib200_fr", "flores200_fr-en", "flores200_en-fr"):  # retention of the source language
        assert (run / "eval" / "adapter" / task / "scores.json").is_file(), task


def test_a_setting_added_at_its_default_keeps_an_old_run_folder_cached(tiny_llama, tmp_path, eval_cache, monkeypatch, capsys):
    """A run folder made before a trainer gained a setting resumes with every stage cached when the
    setting is at its default; set otherwise, the refusal names that setting alone."""
    from dataclasses import dataclass

    from harness.core.rules import setting
    from trainers.base import BaseModelTrainer

    argv = ["run", "--trainer", "base", "--model", str(tiny_llama), "--suite", "smoke", "--langs", "en",
            "--runs-dir", str(tmp_path / "runs"), "--name", "old", "--limit", "1", "--max-gen-toks", "4"]
    assert main(argv) == 0
    run = tmp_path / "runs" / "old"
    spec_before, stages_before = (run / "spec.yaml").read_bytes(), read_json(run / "manifest.json")["stages"]

    @dataclass
    class GrownConfig:  # the base trainer after an upgrade that added one setting
        new_knob: int = setting(1, paper="n/a", help="a setting added after the run folder was made")

    monkeypatch.setattr(BaseModelTrainer, "Config", GrownConfig)
    capsys.readouterr()
    assert main(argv) == 0
    assert "evaluate: cached" in capsys.readouterr().err
    stages = read_json(run / "manifest.json")["stages"]
    for name in ("plan", "evaluate"):  # same input hash, not recorded again
        assert stages[name] == stages_before[name]
    assert (run / "spec.yaml").read_bytes() == spec_before

    assert main([*argv, "--set", "new_knob=2"]) == 2
    err = capsys.readouterr().err
    assert "(setting new_knob: (absent) -> 2)" in err and len(err) < 300, err
