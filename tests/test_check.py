"""Baselines: record a run, then check runs against it (regressions, missing cells, tolerance)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.runstore import read_jsonl, write_json, write_jsonl
from reports.check import CheckResult, check_run, record_baseline, sample_hash
from reports.testing import make_run


def _run(tmp_path: Path, name: str = "ci-run") -> Path:
    return make_run(tmp_path / "runs", name, trainer="sdrrl", langs=("en", "cs"), n=20)


def _set_score(run: Path, variant: str, task: str, metric: str, delta: float) -> float:
    p = run / "eval" / variant / task / "scores.json"
    s = json.loads(p.read_text())
    s["metrics"][metric] += delta
    write_json(p, s)
    return s["metrics"][metric]


def test_baseline_file_format(tmp_path):
    run = _run(tmp_path)
    out = tmp_path / "baselines" / "smoke.json"
    b = record_baseline(run, out, {"acc": 0.02, "bleu": 1.0, "chrf": 1.0})
    assert json.loads(out.read_text()) == b
    assert (b["suite"], b["model"], b["trainer"], b["engine"]) == ("smoke", "tiny-model", "sdrrl", "vllm")
    assert b["tolerance"] == {"acc": 0.02, "bleu": 1.0, "chrf": 1.0}
    cell = b["cells"]["adapter/belebele_cs/acc"]
    assert cell["n_samples"] == 20 and len(cell["sample_hash"]) == 64
    assert "adapter/flores200_en-cs/bleu" in b["cells"] and "base/flores200_cs-en/chrf" in b["cells"]
    assert not any(k.endswith("_stderr") for k in b["cells"])
    # the hash is over the ordered (doc_hash, prediction) pairs: sample order in the file does not matter
    samples = read_jsonl(run / "eval" / "adapter" / "belebele_cs" / "samples.jsonl")
    assert sample_hash(list(reversed(samples))) == cell["sample_hash"]


def test_check_passes_on_the_run_it_was_recorded_from(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base, {"acc": 0.0, "bleu": 0.0, "chrf": 0.0})
    res = check_run(run, base)
    assert isinstance(res, CheckResult)
    assert res.ok and res.problems == [] and res.notes == []
    assert res.checked == len(json.loads(base.read_text())["cells"])
    assert "passed" in res.summary()


def test_check_fails_on_a_drop_beyond_tolerance_naming_the_cell(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base, {"acc": 0.02, "bleu": 0.5, "chrf": 0.5})
    _set_score(run, "adapter", "belebele_cs", "acc", -0.05)
    _set_score(run, "adapter", "flores200_en-cs", "bleu", -2.0)
    res = check_run(run, base)
    assert not res.ok
    assert len(res.problems) == 2
    assert any(p.startswith("adapter/belebele_cs/acc:") for p in res.problems)
    assert any(p.startswith("adapter/flores200_en-cs/bleu:") for p in res.problems)
    assert "FAIL adapter/belebele_cs/acc" in res.summary()


def test_check_passes_on_a_small_drop_within_tolerance_and_on_a_gain(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base, {"acc": 0.05, "bleu": 1.0, "chrf": 1.0})
    _set_score(run, "adapter", "belebele_cs", "acc", -0.05)  # exactly the tolerance
    _set_score(run, "adapter", "flores200_en-cs", "bleu", -0.4)
    _set_score(run, "adapter", "flores200_cs-en", "chrf", +3.0)  # higher is fine
    # the outputs changed too: passes, with a note
    p = run / "eval" / "adapter" / "belebele_cs" / "samples.jsonl"
    rows = read_jsonl(p)
    rows[0]["prediction"] = (rows[0]["prediction"] + 1) % 4
    write_jsonl(p, rows)
    res = check_run(run, base)
    assert res.ok, res.problems
    assert any(n.startswith("adapter/belebele_cs/acc: outputs differ") for n in res.notes)


def test_zero_tolerance_fails_on_any_drop(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base, {"acc": 0.0, "bleu": 0.0, "chrf": 0.0})
    _set_score(run, "base", "belebele_en", "acc", -0.001)
    res = check_run(run, base)
    assert not res.ok and res.problems[0].startswith("base/belebele_en/acc:")


def test_check_fails_on_a_missing_cell_and_a_changed_sample_count(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base, {"acc": 0.1, "bleu": 5.0, "chrf": 5.0})
    shutil.rmtree(run / "eval" / "adapter" / "flores200_cs-en")
    p = run / "eval" / "adapter" / "belebele_en" / "scores.json"
    s = json.loads(p.read_text())
    s["n_samples"] = 10
    write_json(p, s)
    res = check_run(run, base)
    assert not res.ok
    assert "adapter/flores200_cs-en/bleu: missing (baseline " in " ".join(res.problems)
    assert any(p.startswith("adapter/flores200_cs-en/chrf: missing") for p in res.problems)
    assert any(p.startswith("adapter/belebele_en/acc: n_samples changed 20 -> 10") for p in res.problems)


def test_unknown_metric_uses_default_tolerance_and_extra_cells_are_notes(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    b = record_baseline(run, base, {"default": 0.5})
    del b["cells"]["base/belebele_cs/acc"]
    write_json(base, b)
    _set_score(run, "adapter", "flores200_en-cs", "bleu", -0.3)
    res = check_run(run, base)
    assert res.ok
    assert any("not in the baseline" in n and "base/belebele_cs/acc" in n for n in res.notes)


def test_other_model_is_a_note(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    b = record_baseline(run, base, None)
    b["model"] = "another-model"
    write_json(base, b)
    res = check_run(run, base)
    assert res.ok and any("model" in n and "another-model" in n for n in res.notes)


@pytest.mark.parametrize("content, message", [
    (None, "baseline file not found"),
    ("{not json", "bad baseline file"),
    ("[]", "not a JSON object"),
    ('{"cells": {}}', "no 'cells'"),
    ('{"cells": {"adapter/x/acc": {"n_samples": 3}}}', "no numeric 'score'"),
    ('{"cells": {"acc": {"score": 1}}}', "not <variant>/<task>/<metric>"),
    ('{"tolerance": {"acc": "x"}, "cells": {"a/b/acc": {"score": 1}}}', "'tolerance'"),
])
def test_bad_baseline_file_is_a_one_line_error(tmp_path, content, message):
    run = _run(tmp_path)
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HarnessError, match=message) as e:
        check_run(run, path)
    assert "\n" not in str(e.value)


def test_bad_tolerance_and_bad_run_are_errors(tmp_path):
    run = _run(tmp_path)
    with pytest.raises(HarnessError, match="bad tolerance"):
        record_baseline(run, tmp_path / "b.json", {"acc": -1})
    with pytest.raises(HarnessError, match="not a run folder"):
        record_baseline(tmp_path / "nope", tmp_path / "b.json", {})
    assert not (tmp_path / "b.json").exists()
