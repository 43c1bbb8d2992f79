"""End to end on the tiny model: generation metrics, COMET from the tiny checkpoint, the judge with the
tiny model as judge, and the report rows they produce."""

from __future__ import annotations

import pytest
import yaml

from harness.evaluation.comet import default_python
from harness.engines import EngineSettings
from harness.evaluation.evaluate import EvalRequest, evaluate
from harness.evaluation.judge import chat_generator, judge_run
from harness.core.runstore import read_json, read_jsonl
from harness.evaluation.registry import get_suite
from reports.build import build_report

COMET_PYTHON = default_python()


@pytest.mark.slow
def test_generation_metrics_comet_and_judge_reach_the_report(tiny_llama, tiny_comet, tmp_path, eval_cache, monkeypatch):
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))  # private COMET score cache
    monkeypatch.setenv("SDRRL_COMET_MODEL", str(tiny_comet))
    monkeypatch.setenv("SDRRL_COMET_PYTHON", str(COMET_PYTHON))
    suite = get_suite("smoke", "cs")
    tasks = [t for t in suite.tasks if t.name in ("flores200_en-cs", "instruct_cs")]
    run = tmp_path / "run"
    (run).mkdir()
    (run / "spec.yaml").write_text(yaml.safe_dump({"name": "gen", "trainer": "sdrrl", "model": "tiny", "suite": "smoke",
                                                   "languages": ["cs"]}))
    for variant in ("base", "adapter"):
        req = EvalRequest(model_dir=tiny_llama, tasks=tasks, out_dir=run / "eval" / variant, variant=variant,
                          engine="hf", data_dir=suite.data_dir, limit=2, settings=EngineSettings(max_gen_toks=8))
        evaluate(req)
    flores = read_json(run / "eval" / "base" / "flores200_en-cs" / "scores.json")["metrics"]
    assert {"bleu", "chrf", "comet", "lang_match", "empty", "preamble", "cut_at_limit"} <= set(flores)
    assert flores["cut_at_limit"] == 1.0  # a random model never stops before its 8 tokens
    rows = read_jsonl(run / "eval" / "base" / "instruct_cs" / "samples.jsonl")
    assert len(rows) == 2 and all(r["instruction"] and "lang_match" in r["metrics"] for r in rows)
    assert all("comet" not in r["metrics"] for r in rows)  # no reference: no COMET

    assert judge_run(run, chat_generator(tiny_llama, engine="hf", max_new_tokens=8), "tiny") == 1
    judged = read_json(run / "eval" / "adapter" / "instruct_cs" / "scores.json")
    assert judged["judge"] == "tiny" and 0.0 <= judged["metrics"]["judge_win"] <= 1.0
    assert "judge_win" not in read_json(run / "eval" / "base" / "instruct_cs" / "scores.json")["metrics"]

    report = build_report([run], tmp_path / "report", n_resamples=50)
    tables = {(t["family"], t["metric"]) for t in report["tables"]}
    for metric in ("comet", "lang_match", "empty", "preamble", "cut_at_limit"):
        assert ("flores200", metric) in tables, metric
    for metric in ("lang_match", "answer_words", "judge_win", "empty"):
        assert ("instruct", metric) in tables, metric
    md = (tmp_path / "report" / "report.md").read_text()
    assert "COMET: the model's own scale" in md and md.count("BLEU is not spBLEU here: tok:flores200") == 1


def _result(scores: dict, signatures: dict | None = None):
    from pathlib import Path

    from reports.load import TaskResult

    return TaskResult(task="flores200_en-cs", variant="base", family="flores200", lang="cs", kind="generation",
                      primary_metric="bleu", metrics={"bleu": 1.0}, n_samples=1, signatures=signatures or {},
                      metadata={}, scores=scores, path=Path("."))


def test_table_notes_state_scale_chat_template_and_bleu_fallback():
    from types import SimpleNamespace

    from reports.table_notes import bleu_fallback_caveats, table_notes

    fallback = {"bleu_fallback": "requested tok:flores200, used tok:13a: no SentencePiece model at /root/x, "
                                 "downloading https://example.org/spm failed"}
    notes = table_notes("bleu", [("base", _result({"chat_template": True}, fallback)),
                                 ("sdrrl", _result({"chat_template": True}))])
    assert notes == ["Scale: BLEU, 0-100.", "Chat template applied: yes."]  # the fallback is the report's, once
    run = SimpleNamespace(variant=lambda v: {"a": _result({}, fallback), "b": _result({}, fallback)})
    caveats = bleu_fallback_caveats([SimpleNamespace(run=run, variant="base")] * 2)
    assert len(caveats) == 1 and "tok:flores200" in caveats[0] and "tok:13a" in caveats[0]
    assert "`harness fetch`" in caveats[0] and "/root" not in caveats[0] and "http" not in caveats[0]
    mixed = table_notes("lang_match", [("base", _result({"chat_template": False})), ("sdrrl", _result({"chat_template": True}))])
    assert mixed[1] == "Chat template applied for: sdrrl; not for: base." and len(mixed) == 2
