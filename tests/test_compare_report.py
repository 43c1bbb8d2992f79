"""Reports over comparisons: seed replicates, labels by settings, budgets, the forest plot."""

from __future__ import annotations

import statistics
import xml.etree.ElementTree as ET

import pytest

from reports.build import build_report
from reports.forest import color_range
from run_fixtures import make_run

ACCS = {0: 0.6, 1: 0.7, 2: 0.8}


def _seeded(tmp_path):
    root = tmp_path / "runs"
    runs = []
    for seed, acc in ACCS.items():
        runs.append(make_run(root, f"sdrrl-s{seed}", trainer="sdrrl", seed=seed, adapter_acc=acc, translation=False))
        runs.append(make_run(root, f"translate_sft-s{seed}", trainer="translate_sft", seed=seed,
                             adapter_acc=acc - 0.1, translation=False))
    return runs


def _cell(report, system_label, lang="cs", family="belebele"):
    key = next(s["key"] for s in report["systems"] if s["label"] == system_label)
    table = next(t for t in report["tables"] if t["family"] == family)
    return next(r for r in table["rows"] if r["lang"] == lang)["cells"][key], key


def test_seed_replicates_are_one_system_shown_as_seed_mean_with_spread(tmp_path):
    report = build_report(_seeded(tmp_path), tmp_path / "out", n_resamples=200)
    assert [s["label"] for s in report["systems"]] == ["base", "sdrrl", "translate_sft"]
    assert report["systems"][1]["seeds"] == [0, 1, 2]
    cell, _ = _cell(report, "sdrrl")
    per_seed = []
    for seed in ACCS:
        import json
        per_seed.append(json.loads((tmp_path / "runs" / f"sdrrl-s{seed}" / "eval" / "adapter" / "belebele_cs"
                                    / "scores.json").read_text())["metrics"]["acc"])
    assert cell["score"] == pytest.approx(statistics.mean(per_seed))
    assert cell["spread"] == pytest.approx(statistics.stdev(per_seed)) and cell["seeds"] == 3
    assert cell["low"] <= cell["score"] <= cell["high"]
    assert "3 seeds" in (tmp_path / "out" / "report.md").read_text()


def test_deltas_are_tested_on_seed_paired_results(tmp_path):
    report = build_report(_seeded(tmp_path), tmp_path / "out", n_resamples=200)
    base_cell, _ = _cell(report, "base")
    sdrrl_cell, sdrrl_key = _cell(report, "sdrrl")
    tsft_cell, _ = _cell(report, "translate_sft")
    vs_base = next(d for d in report["deltas"] if d["reference"] == "base" and d["family"] == "belebele")
    delta = next(r for r in vs_base["rows"] if r["lang"] == "cs")["cells"][sdrrl_key]
    assert delta["delta"] == pytest.approx(sdrrl_cell["score"] - base_cell["score"])
    assert delta["seeds"] == 3 and delta["p_value"] is not None and delta["mcnemar"] is None
    vs_tsft = next(d for d in report["deltas"] if d["reference_label"] == "translate_sft" and d["family"] == "belebele")
    paired = next(r for r in vs_tsft["rows"] if r["lang"] == "cs")["cells"][sdrrl_key]
    assert paired["delta"] == pytest.approx(sdrrl_cell["score"] - tsft_cell["score"])
    assert paired["spread"] is not None and paired["seeds"] == 3  # one delta per seed pair


def test_systems_are_labelled_by_the_settings_they_differ_in(tmp_path):
    root = tmp_path / "runs"
    common = {"code_switch_variants": 1, "parallel_per_lang": 200, "max_steps": 0}
    runs = [make_run(root, "full", trainer="sdrrl", trainer_config=common, translation=False),
            make_run(root, "no-cs", trainer="sdrrl", trainer_config={**common, "code_switch_variants": 0, "max_steps": 80},
                     translation=False),
            make_run(root, "no-par", trainer="sdrrl", trainer_config={**common, "parallel_per_lang": 0, "max_steps": 80},
                     translation=False)]
    report = build_report(runs, tmp_path / "out", n_resamples=50)
    assert [s["label"] for s in report["systems"]] == [
        "base", "sdrrl", "sdrrl · code_switch_variants=0", "sdrrl · parallel_per_lang=0"]  # max_steps is budget, not a label
    assert "| sdrrl · parallel_per_lang=0 | sdrrl | no-par |" in (tmp_path / "out" / "report.md").read_text()


def test_unequal_budgets_are_marked(tmp_path):
    root = tmp_path / "runs"
    runs = [make_run(root, "a", trainer="sdrrl", translation=False),
            make_run(root, "b", trainer="translate_sft", translation=False),
            make_run(root, "c", trainer="english_sft", translation=False,
                     train_stats={"steps": 100, "tokens_per_step": 11900, "epochs": 10.0, "train_tokens": 312500})]
    report = build_report(runs, tmp_path / "out", n_resamples=50)
    flagged = {r["run"]: r["unequal"] for r in report["budget"]}
    assert flagged == {"a": [], "b": [], "c": ["steps"]}  # 11900 tokens/step is within 10% of 11250
    assert any("Unequal budget: run c trained with 100 optimizer steps" in n for n in report["notes"])
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Training budget" in md and "100 ⚠" in md
    assert next(r for r in report["budget"] if r["run"] == "c")["epochs"] == 10.0  # english_sft repeats its records
    assert "| epochs |" in md and "| dropped wrong-language answers |" in md
    equal = build_report(runs[:2], tmp_path / "out2", n_resamples=50)
    assert not any("Unequal budget" in n for n in equal["notes"])


def test_records_per_step_of_runs_sized_in_tokens_are_not_a_budget_mismatch(tmp_path):
    """A comparison sizes its members' batches in tokens: their records per step differ by design."""
    root = tmp_path / "runs"
    runs = [make_run(root, "a", trainer="sdrrl", translation=False),  # 16 records, 11,250 tokens per step
            make_run(root, "b", trainer="translate_sft", translation=False,
                     train_stats={"records_per_step": 9.71, "tokens_per_step": 11400, "tokens_per_step_target": 11250}),
            make_run(root, "c", trainer="english_sft", translation=False,
                     train_stats={"records_per_step": 7.0, "tokens_per_step": 8100, "tokens_per_step_target": 11250})]
    report = build_report(runs, tmp_path / "out", n_resamples=20)
    flagged = {r["run"]: r["unequal"] for r in report["budget"]}
    assert flagged == {"a": [], "b": [], "c": ["tokens_per_step"]}  # c's data set is smaller than a step
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| b | translate_sft | 0 | 640 | 80 | — | ≈9.71 |" in md and "8,100 ⚠" in md
    # sized in records (tokens_per_step off), records per step are compared as before
    plain = build_report([runs[0], make_run(root, "d", trainer="translate_sft", translation=False,
                                            train_stats={"records_per_step": 8, "tokens_per_step": 11250})],
                         tmp_path / "out2", n_resamples=20)
    assert {r["run"]: r["unequal"] for r in plain["budget"]}["d"] == ["records_per_step"]


def _svgs(html_text: str, cls: str) -> list[ET.Element]:
    out, at = [], 0
    while (start := html_text.find("<svg", at)) >= 0:
        end = html_text.index("</svg>", start) + len("</svg>")
        element = ET.fromstring(html_text[start:end])
        if element.get("class") == cls:
            out.append(element)
        at = end
    return out


def test_forest_plot_shows_each_delta_with_its_interval_in_metric_units(tmp_path):
    report = build_report(_seeded(tmp_path), tmp_path / "out", n_resamples=200)
    page = (tmp_path / "out" / "report.html").read_text()
    forests = _svgs(page, "forest")
    primary = [d for d in report["deltas"] if d["role"] == "primary"]
    assert len(forests) == len(primary)  # the secondary metrics' deltas are folded tables, without plots
    vs_base = next(i for i, d in enumerate(primary) if d["reference"] == "base")
    d = primary[vs_base]
    points = forests[vs_base].findall("g[@class='pt']")  # inline SVG in HTML: no namespace URI
    assert len(points) == len(d["systems"]) * (len(d["rows"]) + 1)  # every language and the macro average
    for p in points:
        row = next((r for r in d["rows"] if r["label"] == p.get("data-lang")), None)
        if row is None:
            continue
        key = next(s["key"] for s in report["systems"] if s["label"] == p.get("data-system"))
        cell = row["cells"][key]
        assert float(p.get("data-delta")) == pytest.approx(cell["delta"] * d["scale"], rel=1e-5)  # points, not fractions
        assert float(p.get("data-low")) <= float(p.get("data-delta")) <= float(p.get("data-high"))
    axis = "".join(forests[vs_base].itertext())
    assert "points (%)" in axis and "95% interval" in axis


def test_heatmap_colour_scale_is_fixed_in_metric_units():
    from reports.html import heat_colour

    assert color_range("bleu") == 5.0 and color_range("acc") == 10.0
    pale = heat_colour(0.04, color_range("bleu"))  # a 0.04 BLEU change
    assert all(int(pale[i:i + 2], 16) > 245 for i in (1, 3, 5))  # nearly white, not full colour
    assert heat_colour(5.0, color_range("bleu")) == heat_colour(50.0, color_range("bleu"))  # saturates at the range


def test_systems_table_shows_each_members_settings_other_than_its_trainers_defaults(tmp_path):
    """Whatever set them (here the smoke suite's settings): the plain translate_sft shows no parallel data."""
    from harness.app.compare import member_settings, parse_members
    from harness.evaluation.registry import get_suite
    from harness.trainer_api import build_config, get_trainer_class, settings_of

    layers = [get_suite("smoke").trainer_settings, {"max_steps": 12}]
    root = tmp_path / "runs"
    runs = []
    for member in parse_members("sdrrl,translate_sft"):
        config = settings_of(build_config(get_trainer_class(member.trainer), member_settings(member, layers)))
        runs.append(make_run(root, member.label, trainer=member.trainer, trainer_config=config, translation=False))
    report = build_report(runs, tmp_path / "out", n_resamples=20)
    systems = {s["label"]: s for s in report["systems"]}
    assert systems["sdrrl"]["non_default"]["parallel_per_lang"] == 4
    plain = systems["translate_sft"]["non_default"]
    assert plain["translator"] == "lexicon"
    # budget fields (steps, epochs, batch size) are the budget table's, which shows what the runs took
    assert not {"parallel_per_lang", "max_steps", "batch_size", "epochs"} & set(plain)
    assert systems["base"]["non_default"] == {}
    md = (tmp_path / "out" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| translate_sft | translate_sft | translate_sft |"))
    assert "translator=lexicon" in row and "parallel_per_lang" not in row  # (system, trainer, runs, ...)
