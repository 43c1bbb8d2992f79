"""`harness run` over several trainers and seeds: members, ablation presets, equal budgets, one report."""

from __future__ import annotations

import json

import pytest

from harness.app.cli import main
from harness.app.plan import read_plan
from harness.app.compare import member_settings, parse_members, parse_seeds
from harness.core.errors import HarnessError
from harness.core.runstore import read_json


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
    from harness.evaluation.registry import get_suite

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


def _planned(*layers):
    from harness.app.compare import plan_comparison
    from harness.app.spec import RunSpec

    def make_spec(member, settings, seed):
        return RunSpec(member.label, member.trainer, "tiny", "smoke", ("cs",), settings, seed=seed)

    return plan_comparison("cmp", parse_members("sdrrl,translate_sft,english_sft"), [0], list(layers), make_spec)


def test_the_budget_members_tokens_per_step_size_the_others_unless_set_for_them():
    from harness.app.compare import with_budget

    def budgeted(comparison, tokens):
        return {m.label: with_budget(comparison, m, comparison.specs[(m.label, 0)], 7, tokens).trainer_config
                for m in comparison.members}

    default = _planned({"batch_size": 4})
    assert default.tokens_per_step is None  # the budget member's measured tokens per step, once it has run
    configs = budgeted(default, 900)
    assert {label: c["tokens_per_step"] for label, c in configs.items()} == {l: 900 for l in configs}
    assert all(c["max_steps"] == 7 and c["batch_size"] == 4 for c in configs.values())
    # set for one trainer alone: its batches stay as set (the report flags the budgets that then differ)
    own = _planned({"batch_size": 4}, {"english_sft.batch_size": 8, "translate_sft.tokens_per_step": 500})
    configs = budgeted(own, 900)
    assert "tokens_per_step" not in configs["english_sft"] and configs["english_sft"]["batch_size"] == 8
    assert configs["translate_sft"]["tokens_per_step"] == 500 and configs["sdrrl"]["tokens_per_step"] == 900
    # a plain setting is every member's target; 0 turns the matching off: equal records per step
    assert _planned({"tokens_per_step": 1200}).tokens_per_step == 1200
    off = _planned({"tokens_per_step": 0})
    assert off.tokens_per_step == 0 and all(c["tokens_per_step"] == 0 for c in budgeted(off, off.tokens_per_step).values())


def _compare_args(model, runs, *extra):
    return ["run", "--trainer", "sdrrl,translate_sft,english_sft", "--seeds", "0,1", "--model", str(model),
            "--suite", "smoke", "--langs", "cs", "--tasks", "belebele_cs,flores200_en-cs", "--engine", "hf",  # one task per kind
            "--runs-dir", str(runs), "--name", "cmp",
            "--limit", "2", "--max-gen-toks", "8", "--max-model-len", "512",
            "--set", "num_instructions=6", "--set", "answer_max_new_tokens=8", "--set", "keep_truncated_answers=true", "--set", "keep_wrong_language_answers=true",
            "--set", "parallel_per_lang=2", "--set", "epochs=1", "--set", "batch_size=4", "--set", "max_seq_len=128", *extra]


@pytest.mark.slow
def test_comparison_of_three_trainers_and_two_seeds_at_an_equal_budget(tiny_llama, tmp_path, eval_cache, monkeypatch,
                                                                     capsys):
    runs = tmp_path / "runs"
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(_compare_args(tiny_llama, runs)) == 0
    root = runs / "cmp"
    # the screen (issue 28 item 11): one line per finished member, the comparison's own line last, no machine path
    screen = capsys.readouterr().err
    members = [line for line in screen.splitlines() if line.startswith("member ")]
    # in the plan's order (harness.app.plan's waves: the budget member of each seed first), numbered as they finish
    plan_order = [(j.member, j.seed) for wave in read_plan(runs / "cmp").waves() for j in wave if j.kind == "member"]
    assert sorted(plan_order) == sorted((t, s) for s in (0, 1) for t in ("sdrrl", "translate_sft", "english_sft"))
    assert [line.split(":")[0] for line in members] == [f"member {k}/6 {t}, seed {s}" for k, (t, s) in
                                                       enumerate(plan_order, 1)], screen
    assert all(f"→ runs/cmp/{t}-s{s}" in line for line, (t, s) in zip(members, plan_order))
    assert screen.strip().splitlines()[-1].startswith("comparison cmp: 6/6 members in ")
    assert screen.strip().splitlines()[-1].endswith("report: runs/cmp/report.md")
    assert str(tmp_path) not in screen and "report: " not in screen.replace("report: runs/cmp/report.md", "")
    assert screen.count("from the shared evaluation cache") <= 6  # at most once per member, never per task
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
        assert trains["sdrrl"]["records_per_step"] == 4 and trains["sdrrl"]["steps"] == records["sdrrl"] // 4  # one epoch of SDRRL's set sets the budget
        # equal in tokens too: the others' batches are sized to SDRRL's tokens per step
        reference = trains["sdrrl"]["tokens_per_step"]
        assert all(abs(t["tokens_per_step"] - reference) / reference <= 0.10 for t in trains.values()), \
            {name: (t["tokens_per_step"], t["records_per_step"]) for name, t in trains.items()}
        assert comparison["tokens_per_step_per_seed"][str(seed)] == round(reference)
        assert {trains[t]["tokens_per_step_target"] for t in ("translate_sft", "english_sft")} == {round(reference)}
    report = read_json(root / "report.json")
    assert [s["label"] for s in report["systems"]] == ["base", "sdrrl", "translate_sft", "english_sft"]
    assert all(s["seeds"] == [0, 1] for s in report["systems"][1:])
    assert {d["reference_label"] for d in report["deltas"]} == {"base", "translate_sft"}
    # equal in steps and tokens per step; the answer tokens the loss counts are not equalised, and are flagged
    unequal = [n for n in report["notes"] if "Unequal budget" in n and "answer tokens per step" not in n]
    assert not unequal, unequal
    html = (root / "report.html").read_text()
    assert html.count('class="forest"') == len([d for d in report["deltas"] if d["role"] == "primary"])
    # the verdict first: every trained system against base and translate_sft, seed means with their spread
    assert list(report)[2] == "headline" and (root / "report.md").read_text().splitlines()[2] == "## Headline"
    assert html.index('id="headline"') < html.index('id="systems"')
    entries = [e for e in report["headline"] if e["family"] == "belebele"]
    assert [e["system_label"] for e in entries] == ["sdrrl", "translate_sft", "english_sft"]
    assert all(c["seeds"] == 2 and c["spread"] is not None for e in entries for c in e["comparisons"])
    assert [c["reference_label"] for c in entries[0]["comparisons"]] == ["base", "translate_sft"]
    assert all(c.get("p_adjusted") is not None or c["screened_out"] for d in report["deltas"] for r in d["rows"]
               for c in r["cells"].values() if c.get("p_value") is not None)
    assert "tmp" not in (root / "report.md").read_text() and "http" not in html

    # Each member is an ordinary resumable run: a rerun trains and evaluates nothing again.
    import harness.evaluation.evaluate as evaluate_mod
    import trainers.lora as lora

    def fail(*_a, **_k):
        raise AssertionError("a finished member ran again")

    monkeypatch.setattr(lora, "train_lora", fail)
    monkeypatch.setattr(evaluate_mod, "build_lm", fail)
    assert main(_compare_args(tiny_llama, runs)) == 0
    assert json.loads((root / "comparison.json").read_text()) == comparison
