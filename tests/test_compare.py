"""`harness run` over several trainers and seeds: members, ablation presets, equal budgets, one report."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.compare import member_settings, parse_members, parse_seeds
from harness.errors import HarnessError
from harness.runstore import read_json


def test_members_and_ablation_presets():
    labels = [m.label for m in parse_members("sdrrl,translate_sft,english_sft", ablations=True)]
    assert labels == ["sdrrl", "sdrrl+ref_answers", "sdrrl+no_cs", "sdrrl+no_parallel", "sdrrl+no_grouping",
                      "translate_sft", "translate_sft+parallel", "english_sft"]
    assert [m.label for m in parse_members("sdrrl+no_cs")] == ["sdrrl+no_cs"]
    with pytest.raises(HarnessError, match=r"unknown ablation of trainer 'sdrrl': 'nope'; valid: no_cs"):
        parse_members("sdrrl+nope")
    with pytest.raises(HarnessError, match="unknown trainer 'sdrl'"):
        parse_members("sdrl,translate_sft")
    with pytest.raises(HarnessError, match="more than once"):
        parse_members("sdrrl,sdrrl")
    assert parse_seeds("0,1,2") == [0, 1, 2]
    with pytest.raises(HarnessError, match="distinct integers"):
        parse_seeds("1,1")


def test_settings_scope_and_presets():
    members = {m.label: m for m in parse_members("sdrrl,translate_sft", ablations=True)}
    layers = [{"parallel_per_lang": 4, "learning_rate": 1e-3}, {"sdrrl.code_switch_ratio": 0.5, "sdrrl.parallel_formats": "translation:1"}]
    sdrrl = member_settings(members["sdrrl"], layers)
    assert sdrrl["code_switch_ratio"] == 0.5 and sdrrl["learning_rate"] == 1e-3
    tsft = member_settings(members["translate_sft"], layers)
    assert "code_switch_ratio" not in tsft and tsft["learning_rate"] == 1e-3
    assert member_settings(members["sdrrl+no_cs"], layers)["code_switch_variants"] == 0  # the preset wins
    parallel = member_settings(members["translate_sft+parallel"], layers)
    # the same parallel data as SDRRL in this comparison, whatever the plain translate_sft would take
    assert parallel["parallel_per_lang"] == 4 and parallel["parallel_formats"] == "translation:1"
    assert parallel["parallel_data"] == sdrrl.get("parallel_data", "Helsinki-NLP/opus-100")


@pytest.mark.parametrize("suite", ["smoke", "smoke_fr"])
def test_the_suites_parallel_data_reaches_sdrrl_but_leaves_translate_sft_plain(suite):
    from harness.tasks import get_suite

    members = {m.label: m for m in parse_members("sdrrl,translate_sft", ablations=True)}
    layers = [get_suite(suite).trainer_settings]
    assert member_settings(members["sdrrl"], layers)["parallel_per_lang"] == 4
    plain = member_settings(members["translate_sft"], layers)
    assert "parallel_per_lang" not in plain  # its default: 0, no parallel records
    assert plain["translator"] == "lexicon" and plain["instructions"] == "builtin:alpaca-smoke"  # the offline inputs
    asked = member_settings(members["translate_sft+parallel"], layers)
    assert asked["parallel_per_lang"] == 4 and asked["parallel_data"] == "builtin:opus-smoke"
    # asked for by the user: a flat --set reaches every member that has the field
    assert member_settings(members["translate_sft"], layers + [{"parallel_per_lang": 2}])["parallel_per_lang"] == 2


def _compare_args(model, runs, *extra):
    return ["run", "--trainer", "sdrrl,translate_sft,english_sft", "--seeds", "0,1", "--model", str(model),
            "--suite", "smoke", "--langs", "cs", "--engine", "hf", "--runs-dir", str(runs), "--name", "cmp",
            "--limit", "2", "--max-gen-toks", "8", "--max-model-len", "512",
            "--set", "num_instructions=6", "--set", "answer_max_new_tokens=8", "--set", "keep_truncated_answers=true", "--set", "keep_wrong_language_answers=true",
            "--set", "parallel_per_lang=2", "--set", "epochs=1", "--set", "batch_size=4", "--set", "max_seq_len=128", *extra]


@pytest.mark.slow
def test_comparison_of_three_trainers_and_two_seeds_at_an_equal_budget(tiny_llama, tmp_path, eval_cache, monkeypatch):
    runs = tmp_path / "runs"
    assert main(_compare_args(tiny_llama, runs)) == 0
    root = runs / "cmp"
    comparison = read_json(root / "comparison.json")
    assert comparison["budget_set_by"] == "sdrrl" and comparison["seeds"] == [0, 1]
    for seed in (0, 1):
        trains = {}
        for trainer in ("sdrrl", "translate_sft", "english_sft"):
            run = root / f"{trainer}-s{seed}"
            assert (run / "spec.yaml").is_file() and (run / "adapter" / "adapter_model.safetensors").is_file()
            trains[trainer] = read_json(run / "manifest.json")["stages"]["train"]
        records = {t: read_json(root / f"{t}-s{seed}" / "manifest.json")["stages"]["data"]["records"] for t in trains}
        assert len(set(records.values())) > 1  # the data sets differ in size ...
        assert {t["steps"] for t in trains.values()} == {comparison["steps_per_seed"][str(seed)]}  # ... the steps do not
        assert {t["records_per_step"] for t in trains.values()} == {4}
        assert trains["sdrrl"]["steps"] == records["sdrrl"] // 4  # one epoch of SDRRL's set sets the budget
    report = read_json(root / "report.json")
    assert [s["label"] for s in report["systems"]] == ["base", "sdrrl", "translate_sft", "english_sft"]
    assert all(s["seeds"] == [0, 1] for s in report["systems"][1:])
    assert {d["reference_label"] for d in report["deltas"]} == {"base", "translate_sft"}
    assert not any("Unequal budget" in n and "steps" in n for n in report["notes"])
    html = (root / "report.html").read_text()
    assert html.count('class="forest"') == len([d for d in report["deltas"] if d["role"] == "primary"])
    # the verdict first: every trained system against base and translate_sft, seed means with their spread
    assert list(report)[2] == "headline" and (root / "report.md").read_text().splitlines()[2] == "## Headline"
    assert html.index('id="headline"') < html.index('id="systems"')
    entries = [e for e in report["headline"] if e["family"] == "belebele"]
    assert [e["system_label"] for e in entries] == ["sdrrl", "translate_sft", "english_sft"]
    assert all(c["seeds"] == 2 and c["spread"] is not None for e in entries for c in e["comparisons"])
    assert [c["reference_label"] for c in entries[0]["comparisons"]] == ["base", "translate_sft"]
    assert all(c.get("p_adjusted") is not None for d in report["deltas"] for r in d["rows"]
               for c in r["cells"].values() if c.get("p_value") is not None)
    assert "tmp" not in (root / "report.md").read_text() and "http" not in html

    # Each member is an ordinary resumable run: a rerun trains and evaluates nothing again.
    import harness.evaluate as evaluate_mod
    import trainers.lora as lora

    def fail(*_a, **_k):
        raise AssertionError("a finished member ran again")

    monkeypatch.setattr(lora, "train_lora", fail)
    monkeypatch.setattr(evaluate_mod, "build_lm", fail)
    assert main(_compare_args(tiny_llama, runs)) == 0
    assert json.loads((root / "comparison.json").read_text()) == comparison
