"""Baselines: record a run's cells with measured noise, then check runs against it (both directions)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.core.errors import HarnessError
from harness.core.runstore import read_json, read_jsonl, write_json, write_jsonl
from reports.check import FLOORS, FORMAT, check_run, moves_table, record_baseline, update_baseline
from run_fixtures import make_run, reseal


def _signals(run: Path, shift: float = 0.0) -> None:
    """Add what harness/evaluation/samples.py writes per item (gold/chosen log-likelihood, chrF, output hash),
    a held-out loss file and a training loss curve to a synthetic run; `shift` moves them all."""
    for samples in (run / "eval").glob("*/*/samples.jsonl"):
        rows = read_jsonl(samples)
        for r in rows:
            if "reference" in r:
                r["chrf"] = 40.0 + r["doc_id"] + shift
                r["output_sha256"] = hashlib.sha256(r["prediction"].encode()).hexdigest()
            else:
                r["gold_ll"], r["chosen_ll"] = -1.5 - 0.01 * r["doc_id"] + shift, -1.0 + shift
        write_jsonl(samples, rows)
        reseal(samples.parent)
    write_json(run / "eval" / "heldout.json", {"key": "k", "records": 6, "langs": {
        lang: {"n_records": 3, "tokens": 90, "base_loss": 3.0 + shift, "adapter_loss": 2.5 + shift} for lang in ("en", "cs")}})
    manifest = read_json(run / "manifest.json")
    manifest["stages"]["train"]["losses"] = [round(3.0 - 0.1 * i + shift, 5) for i in range(5)]
    write_json(run / "manifest.json", manifest)


def _run(tmp_path: Path, name: str = "ci-run", shift: float = 0.0) -> Path:
    run = make_run(tmp_path / "runs", name, trainer="sdrrl", langs=("en", "cs"), n=8)
    _signals(run, shift)
    return run


def _edit(path: Path, change) -> None:
    data = read_json(path) if path.suffix == ".json" else read_jsonl(path)
    change(data)
    (write_json if path.suffix == ".json" else write_jsonl)(path, data)
    if path.name in ("scores.json", "samples.jsonl"):
        reseal(path.parent)  # a changed evaluation, as the harness would write it


def test_baseline_holds_every_cell_kind_and_the_noise(tmp_path):
    run, rerun = _run(tmp_path), _run(tmp_path, "rerun", shift=0.002)
    out = tmp_path / "baselines" / "b.json"
    b = record_baseline(run, out, [rerun], multiple=3.0, command="harness run ...")
    assert json.loads(out.read_text()) == b and b["format"] == FORMAT and b["command"] == "harness run ..."
    kinds = {c["kind"] for c in b["cells"].values()}
    assert kinds == {"acc", "bleu", "chrf", "gold_ll", "chosen_ll", "item_chrf", "output_sha256",
                     "heldout_loss", "heldout_drop", "train_loss"}
    assert b["cells"]["adapter/belebele_cs/#3/gold_ll"] == {"kind": "gold_ll", "value": -1.53}
    assert b["cells"]["adapter/belebele_cs/acc"]["n_samples"] == 8
    assert b["cells"]["train/loss/5"]["value"] == 2.6
    # held-out: the drop must stay above half the recorded one
    assert b["cells"]["heldout/cs/loss_drop"] == {"kind": "heldout_drop", "value": 0.5, "min": 0.25}
    # noise: spread 0.002 for the shifted kinds, zero for the rest; tolerance = max(3 x spread, floor)
    assert b["noise"]["n_runs"] == 2 and b["noise"]["spread"]["gold_ll"] == pytest.approx(0.002)
    assert b["noise"]["spread"]["acc"] == 0.0 and b["noise"]["hash_changes"] == 0
    assert "acc" not in b["noise"]["worst_cell"] and b["noise"]["worst_cell"]["train_loss"].startswith("train/loss/")
    assert b["tolerance"]["gold_ll"] == pytest.approx(0.006)
    assert b["tolerance"]["train_loss"] == pytest.approx(0.006)
    assert b["tolerance"]["acc"] == 1e-6 and b["tolerance"]["bleu"] == FLOORS["bleu"]


def test_check_passes_on_its_own_run_and_on_a_rerun_within_noise(tmp_path):
    run, rerun = _run(tmp_path), _run(tmp_path, "rerun", shift=0.002)
    base = tmp_path / "b.json"
    record_baseline(run, base, [rerun])
    for r in (run, rerun):
        res = check_run(r, base)
        assert res.ok and res.moves == [] and res.problems == [], moves_table(res.moves)
        assert res.checked == len(read_json(base)["cells"])


@pytest.mark.parametrize("shift", [+0.01, -0.01])
def test_a_move_in_either_direction_beyond_tolerance_fails_naming_the_cells(tmp_path, shift):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base)  # one run: zero noise, floors
    _edit(run / "eval" / "adapter" / "belebele_cs" / "samples.jsonl", lambda rows: rows[2].update(gold_ll=rows[2]["gold_ll"] + shift))
    _edit(run / "manifest.json", lambda m: m["stages"]["train"]["losses"].__setitem__(1, m["stages"]["train"]["losses"][1] + shift))
    res = check_run(run, base)
    assert not res.ok
    assert {m.key for m in res.moves} == {"adapter/belebele_cs/#2/gold_ll", "train/loss/2"}
    move = next(m for m in res.moves if m.key == "train/loss/2")
    assert move.deviation == pytest.approx(shift) and move.tolerance == FLOORS["train_loss"]
    assert move.units == pytest.approx(100.0)
    table = moves_table(res.moves)
    assert table.splitlines()[0].split() == ["cell", "value", "baseline", "deviation", "tolerance", "x", "tol", "why"]
    assert "train/loss/2" in table and "100.0" in table


def test_a_flipped_item_fails_the_accuracy_and_a_changed_output_fails_its_hash(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base)
    _edit(run / "eval" / "adapter" / "belebele_en" / "scores.json", lambda s: s["metrics"].update(acc=s["metrics"]["acc"] + 1 / 8))
    _edit(run / "eval" / "base" / "flores200_en-cs" / "samples.jsonl", lambda rows: rows[0].update(output_sha256="0" * 64))
    res = check_run(run, base)
    assert {m.key for m in res.moves} == {"adapter/belebele_en/acc", "base/flores200_en-cs/#0/output"}


def test_a_hash_that_changed_between_noise_runs_is_only_a_note(tmp_path):
    run, rerun = _run(tmp_path), _run(tmp_path, "rerun")
    _edit(rerun / "eval" / "base" / "flores200_en-cs" / "samples.jsonl", lambda rows: rows[0].update(output_sha256="1" * 64))
    base = tmp_path / "b.json"
    assert record_baseline(run, base, [rerun])["noise"]["hash_changes"] == 1
    _edit(run / "eval" / "base" / "flores200_cs-en" / "samples.jsonl", lambda rows: rows[0].update(output_sha256="2" * 64))
    res = check_run(run, base)
    assert res.ok and any("flores200_cs-en/#0/output: output changed" in n for n in res.notes)


def test_held_out_loss_drop_below_the_recorded_margin_fails(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base, tolerance={"heldout_loss": 1.0, "heldout_drop": 1.0})  # wide on purpose
    _edit(run / "eval" / "heldout.json", lambda h: h["langs"]["cs"].update(adapter_loss=2.9))  # drop 0.5 -> 0.1
    res = check_run(run, base)
    assert [m.key for m in res.moves] == ["heldout/cs/loss_drop"]
    assert res.moves[0].why.startswith("below the required 0.25")


def test_missing_cells_and_changed_item_count_fail(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base)
    shutil.rmtree(run / "eval" / "adapter" / "flores200_cs-en")
    (run / "eval" / "heldout.json").unlink()
    _edit(run / "eval" / "adapter" / "belebele_en" / "scores.json", lambda s: s.update(n_samples=10))
    res = check_run(run, base)
    missing = {m.key for m in res.moves if m.why == "missing"}
    assert {"adapter/flores200_cs-en/bleu", "adapter/flores200_cs-en/#0/chrf", "heldout/en/adapter_loss"} <= missing
    assert res.problems == ["adapter/belebele_en/acc: n_samples changed 8 -> 10"]


def test_update_rewrites_values_keeping_noise_and_shows_old_and_new(tmp_path, capsys):
    run, rerun = _run(tmp_path), _run(tmp_path, "rerun", shift=0.002)
    base = tmp_path / "b.json"
    before = record_baseline(run, base, [rerun])
    moved = _run(tmp_path, "moved", shift=0.5)
    assert main(["check", str(moved), "--against", str(base)]) == 1
    out = capsys.readouterr().out
    assert "... and 45 more" in out and "check failed: 105 cell(s) moved" in out
    assert "moved cells by group: " in out and "heldout/en 2" in out and "train/loss 5" in out
    assert main(["check", str(moved), "--against", str(base), "--update"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["cell", "new", "old"]
    assert "train/loss/1" in out and "3.5" in out and "baseline updated" in out
    after = read_json(base)
    assert after["noise"] == before["noise"] and after["tolerance"] == before["tolerance"]
    assert after["cells"]["train/loss/1"]["value"] == 3.5 and after["run"] == "moved"
    assert check_run(moved, base).ok
    assert update_baseline(moved, base) == []


def test_cli_baseline_prints_tolerances_and_records_noise_runs(tmp_path, capsys):
    run, rerun = _run(tmp_path), _run(tmp_path, "rerun", shift=0.002)
    out = tmp_path / "b.json"
    assert main(["baseline", str(run), "--out", str(out), "--noise-run", str(rerun), "--noise-multiple", "5",
                 "--tolerance", "acc=0.25"]) == 0
    text = capsys.readouterr().out
    assert "noise over 2 run(s)" in text and "gold_ll: tolerance 0.01 (spread 0.002)" in text
    b = read_json(out)
    assert b["tolerance"]["acc"] == 0.25 and b["tolerance_rule"]["overrides"] == {"acc": 0.25}
    assert b["tolerance"]["gold_ll"] == pytest.approx(0.01)


@pytest.mark.parametrize("content, message", [
    (None, "baseline file not found"),
    ("{not json", "bad baseline file"),
    ("[]", "not a JSON object"),
    ('{"format": "sdrrl-harness baseline v1", "cells": {"a/b/acc": {"score": 1}}}', "re-record it"),
    (f'{{"format": "{FORMAT}", "cells": {{}}}}', "no 'cells'"),
    (f'{{"format": "{FORMAT}", "tolerance": {{"acc": 0}}, "cells": {{"adapter/x/acc": {{"kind": "acc"}}}}}}', "needs 'kind' and 'value'"),
    (f'{{"format": "{FORMAT}", "tolerance": {{"acc": 0}}, "cells": {{"acc": {{"kind": "acc", "value": 1}}}}}}', "is not <variant>"),
    (f'{{"format": "{FORMAT}", "tolerance": {{"acc": "x"}}, "cells": {{"a/b/acc": {{"kind": "acc", "value": 1}}}}}}', "tolerance of 'acc' is 'x'"),
    (f'{{"format": "{FORMAT}", "tolerance": {{}}, "cells": {{"a/b/acc": {{"kind": "acc", "value": 1}}}}}}', "no tolerance for kind"),
])
def test_bad_baseline_file_is_a_one_line_error(tmp_path, content, message):
    run = _run(tmp_path)
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(HarnessError, match=message) as e:
        check_run(run, path)
    assert "\n" not in str(e.value)


def test_bad_tolerance_multiple_noise_run_and_run_are_errors(tmp_path, capsys):
    run = _run(tmp_path)
    with pytest.raises(HarnessError, match="bad tolerance"):
        record_baseline(run, tmp_path / "b.json", tolerance={"acc": -1})
    with pytest.raises(HarnessError, match="bad value for --noise-multiple"):
        record_baseline(run, tmp_path / "b.json", multiple=0)
    other = make_run(tmp_path / "runs", "other", trainer="sdrrl", langs=("en", "cs"), n=8, model="another")
    with pytest.raises(HarnessError, match="not run with the same settings"):
        record_baseline(run, tmp_path / "b.json", [other])
    with pytest.raises(HarnessError, match="not a run folder"):
        record_baseline(tmp_path / "nope", tmp_path / "b.json")
    assert main(["baseline", str(run), "--out", str(tmp_path / "b.json"), "--tolerance", "acc=x"]) == 2
    assert "bad value for --tolerance: 'acc=x'" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


@pytest.mark.parametrize("field, value", [("suite", "paper15"), ("model", "another-model"), ("trainer", "translate_sft")])
def test_a_baseline_of_another_suite_model_or_trainer_fails_naming_it(tmp_path, capsys, field, value):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base)
    _edit(base, lambda b: b.update({field: value}))  # as if recorded from another run, cells and all
    recorded = read_json(base)
    with pytest.raises(HarnessError, match=f"recorded for {field} '{value}'.*has {field} ") as e:
        check_run(run, base)
    assert "\n" not in str(e.value)
    assert main(["check", str(run), "--against", str(base)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error: baseline") and f"{field} '{value}'" in err
    with pytest.raises(HarnessError, match=f"recorded for {field}"):
        update_baseline(run, base)
    assert read_json(base) == recorded  # --update refused: nothing rewritten


def test_a_baseline_of_another_engine_is_a_note_and_passes(tmp_path):
    run = _run(tmp_path)
    base = tmp_path / "b.json"
    record_baseline(run, base)
    _edit(base, lambda b: b.update(engine="hf"))
    res = check_run(run, base)
    assert res.ok and "baseline was recorded with engine 'hf', this run has 'vllm'" in res.notes
