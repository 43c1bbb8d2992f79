"""The report's verdict: the headline first in all three formats, multiple-comparison control, the
smallest detectable difference, no machine paths, seed spreads in the headline (reports/headline.py,
reports/multiple.py, reports/power.py)."""

from __future__ import annotations

import json
import statistics
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from harness.core.errors import HarnessError
from reports import multiple, power
from reports.build import build_report
from reports.fmt import significant
from run_fixtures import make_run


def _smoke_like(tmp_path: Path, n: int = 20, **adapter) -> list[Path]:
    """What `harness run --suite smoke` leaves: one run with its base evaluation, comprehension,
    FLORES with fidelity and hygiene (and the spBLEU fallback), and open-ended instructions."""
    settings = {"adapter_acc": {"en": 0.5, "cs": 0.6, "ja": 0.55}, **adapter}
    return [make_run(tmp_path / "runs", "sdrrl-smoke", trainer="sdrrl", n=n, families=("belebele", "sib200"),
                     hygiene=True, instruct=True, bleu_fallback=True, **settings)]


def _three_trainers_two_seeds(tmp_path: Path) -> list[Path]:
    root = tmp_path / "runs"
    skill = {"sdrrl": 0.75, "translate_sft": 0.65, "english_sft": 0.55}
    return [make_run(root, f"{trainer}-s{seed}", trainer=trainer, seed=seed, n=30, hygiene=True,
                     adapter_acc=acc + 0.05 * seed, adapter_quality=acc + 0.05 * seed)
            for seed in (0, 1) for trainer, acc in skill.items()]


# --------------------------------------------------------------------------- multiple comparisons


def test_benjamini_hochberg_on_a_hand_computed_case():
    # sorted: 0.005 0.01 0.03 0.04 (m = 4): p * m / rank = 0.02 0.02 0.04 0.04; running minimum from the top
    assert multiple.adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert multiple.adjust([]) == []


def _delta(ref: str, role: str, ps: list[float]) -> dict:
    rows = [{"lang": f"l{i}", "cells": {"s": {"delta": 0.1, "p_value": p}}} for i, p in enumerate(ps)]
    return {"reference": ref, "role": role, "rows": rows, "macro": {"cells": {"s": {"delta": 0.1, "p_value": 0.01}}}}


def test_families_are_adjusted_apart_and_bold_follows_the_adjusted_p():
    # four raw "significant" tests of one family, of which BH keeps only the smallest two
    a = _delta("base", "primary", [0.001, 0.002, 0.04, 0.045, 0.5, 0.6, 0.7, 0.8])
    b = _delta("base", "secondary", [0.04])
    c = _delta("adapter:t", "primary", [0.04])
    sizes = multiple.adjust_deltas([a, b, c])
    assert {k: v["tests"] for k, v in sizes.items()} == {"base · primary": 8, "base · macro": 1, "base · secondary": 2,
                                                         "adapter:t · primary": 1, "adapter:t · macro": 1}
    cells = [r["cells"]["s"] for r in a["rows"]]
    assert [x["p_adjusted"] for x in cells] == pytest.approx(list(false_discovery_control([x["p_value"] for x in cells])))
    assert [significant(x) for x in cells] == [True, True, False, False, False, False, False, False]
    assert all(x["p_value"] < 0.05 for x in cells[:4])  # raw p would have bolded four
    assert c["rows"][0]["cells"]["s"]["p_adjusted"] == pytest.approx(0.04)  # a family of one is not adjusted


def test_report_adjusted_p_values_match_scipy_on_the_same_inputs(tmp_path):
    report = build_report(_three_trainers_two_seeds(tmp_path), tmp_path / "out", n_resamples=200)
    for reference in ("base", next(s["key"] for s in report["systems"] if s["label"] == "translate_sft")):
        cells = [c for d in report["deltas"] if d["reference"] == reference and d["role"] == "primary"
                 for r in d["rows"] for c in r["cells"].values() if c.get("p_value") is not None]
        assert len(cells) > 10
        kept = [c for c in cells if not c["screened_out"]]  # the testable ones (reports/multiple.py)
        assert len(kept) >= 5 and all(c["p_adjusted"] is None for c in cells if c["screened_out"])
        expected = false_discovery_control([c["p_value"] for c in kept], method="bh")
        assert [c["p_adjusted"] for c in kept] == pytest.approx(list(np.minimum(expected, 1.0)))
    mc = report["settings"]["multiple_comparisons"]
    assert "Benjamini-Hochberg" in mc["method"] and "per reference" in mc["family"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Benjamini-Hochberg" in md and "adj p=" in md


# --------------------------------------------------------------------------- power


def test_mdd_is_2_8_bootstrap_standard_errors_and_marks_underpowered(tmp_path):
    runs = _smoke_like(tmp_path)
    report = build_report(runs, tmp_path / "out", n_resamples=200)
    assert power.multiplier() == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    cells = [c for d in report["deltas"] for r in d["rows"] for c in r["cells"].values() if c.get("se")]
    assert cells and all(c["mdd"] == pytest.approx(max(power.multiplier() * c["se"], power.resolution(c) or 0.0))
                         for c in cells)
    bele = next(d for d in report["deltas"] if d["family"] == "belebele")
    ja = next(r for r in bele["rows"] if r["lang"] == "ja")["cells"]["adapter:sdrrl-smoke"]
    assert bele["min_effect"] == 0.05
    assert ja["underpowered"] and not significant(ja)  # 20 items cannot show a 5-point change
    assert "+5.0°" in (tmp_path / "out" / "report.md").read_text()
    lenient = build_report(runs, tmp_path / "out2", n_resamples=200, min_effect=power.parse_min_effect(["acc=0.9"]))
    bele = next(d for d in lenient["deltas"] if d["family"] == "belebele")
    assert not any(c["underpowered"] for r in bele["rows"] for c in r["cells"].values())
    assert lenient["settings"]["power"]["min_effect"]["acc"] == 0.9


@pytest.mark.parametrize("bad", ["acx=0.1", "acc", "acc=-1", "acc=zero", "bleu=0"])
def test_bad_min_effect_is_one_line_naming_the_valid_values(bad):
    with pytest.raises(HarnessError) as e:
        power.parse_min_effect([bad])
    assert "\n" not in str(e.value) and bad.split("=")[0] in str(e.value)


def test_min_effect_defaults_and_overrides():
    assert power.parse_min_effect(None)["acc"] == 0.05 and power.parse_min_effect(None)["bleu"] == 1.0
    got = power.parse_min_effect(["acc=0.03,bleu=0.5", "chrf=2"])
    assert (got["acc"], got["bleu"], got["chrf"], got["comet"]) == (0.03, 0.5, 2.0, 0.01)


# --------------------------------------------------------------------------- the headline


class _Main(HTMLParser):
    """The children of <main>, in order: (tag, id), and the text of the first table after the headline."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.children, self.in_main = 0, [], False

    def handle_starttag(self, tag, attrs):
        if tag == "main":
            self.in_main = True
            self.depth = 0
            return
        if self.in_main:
            if self.depth == 0:
                self.children.append((tag, dict(attrs).get("id"), dict(attrs).get("class")))
            if tag not in ("meta", "br"):
                self.depth += 1

    def handle_endtag(self, tag):
        if tag == "main":
            self.in_main = False
        elif self.in_main and tag not in ("meta", "br"):
            self.depth -= 1


def test_headline_is_first_in_markdown_html_and_json(tmp_path):
    build_report(_smoke_like(tmp_path), tmp_path / "out", n_resamples=100)
    out = tmp_path / "out"
    md = (out / "report.md").read_text()
    assert md.splitlines()[2] == "## Headline" and md.index("## Headline") < md.index("| run |")
    data = json.loads((out / "report.json").read_text())
    assert [k for k in data if k not in ("format", "settings")][0] == "headline"
    parser = _Main()
    parser.feed((out / "report.html").read_text())
    # <main>: the title, the navigation, then the headline section before anything else
    assert parser.children[:3] == [("h1", None, None), ("nav", None, None), ("h2", "headline", None)]
    assert parser.children[3][2] == "lead" and parser.children[4][2] == "tw"  # its lead, then its table
    assert ("h2", "systems", None) in parser.children[5:]


def test_headline_counts_languages_after_correction_and_says_english(tmp_path):
    report = build_report(_smoke_like(tmp_path), tmp_path / "out", n_resamples=200)
    entry = next(e for e in report["headline"] if e["family"] == "belebele")
    (vs_base,) = entry["comparisons"]
    delta = next(d for d in report["deltas"] if d["family"] == "belebele" and d["reference"] == "base")
    per_lang = [r["cells"]["adapter:sdrrl-smoke"] for r in delta["rows"] if r["lang"] != "en"]
    assert vs_base["improved"] == sum(significant(c) and c["delta"] > 0 for c in per_lang)
    assert vs_base["delta"] == pytest.approx(delta["macro"]["cells"]["adapter:sdrrl-smoke"]["delta"])
    assert vs_base["low"] <= vs_base["delta"] <= vs_base["high"]
    assert entry["english"]["delta"] == 0.0 and "English moves 0.0 points" in entry["sentence"]
    instruct = next(e for e in report["headline"] if e["family"] == "instruct")
    assert instruct["degenerate"] is not None and "echo the prompt" in instruct["sentence"]


def test_headline_does_not_overstate_when_nothing_survives(tmp_path):
    runs = _smoke_like(tmp_path, adapter_acc=0.5, adapter_quality=0.5)  # the adapter is the base model
    report = build_report(runs, tmp_path / "out", n_resamples=100)
    assert report["headline"]
    for entry in report["headline"]:
        assert "not distinguishable from the base model at this item count" in entry["sentence"]
        assert "none of 2 differs" in entry["sentence"] and "significant after correction" not in entry["sentence"]
    assert "not distinguishable from the base model" in (tmp_path / "out" / "report.md").read_text()


def test_headline_has_translate_sft_and_the_seed_means_and_spreads(tmp_path):
    report = build_report(_three_trainers_two_seeds(tmp_path), tmp_path / "out", n_resamples=200)
    entry = next(e for e in report["headline"] if e["family"] == "belebele" and e["system_label"] == "sdrrl")
    refs = [c["reference_label"] for c in entry["comparisons"]]
    assert refs == ["base", "translate_sft"]
    vs_base = entry["comparisons"][0]
    # per seed: the macro over cs and ja of the adapter's score minus the base model's, from the run folders
    per_seed = []
    for seed in (0, 1):
        def acc(variant, lang, run=f"sdrrl-s{seed}"):
            path = tmp_path / "runs" / run / "eval" / variant / f"belebele_{lang}" / "scores.json"
            return json.loads(path.read_text())["metrics"]["acc"]
        per_seed.append(statistics.mean(acc("adapter", lang) - acc("base", lang) for lang in ("cs", "ja")))
    assert vs_base["seeds"] == 2
    assert vs_base["delta"] == pytest.approx(statistics.mean(per_seed))
    assert vs_base["spread"] == pytest.approx(statistics.stdev(per_seed))
    assert "mean of 2 seeds, sd" in entry["sentence"]
    md = (tmp_path / "out" / "report.md").read_text()
    headline = md[md.index("## Headline"):md.index("## Systems")]
    assert "2 seeds" in headline and "Δ vs translate_sft (macro)" in headline


# --------------------------------------------------------------------------- no machine paths


def test_no_report_holds_a_machine_path_or_a_url(tmp_path):
    for name, runs in (("smoke", _smoke_like(tmp_path / "a")), ("compare", _three_trainers_two_seeds(tmp_path / "b"))):
        out = tmp_path / name
        build_report(runs, out, n_resamples=50)
        for file in ("report.md", "report.html", "report.json"):
            text = (out / file).read_text()
            assert str(tmp_path) not in text and "/tmp" not in text, (name, file)
            assert "http" not in text and "/root" not in text, (name, file)
    md = (tmp_path / "smoke" / "report.md").read_text()
    html = (tmp_path / "smoke" / "report.html").read_text()
    assert md.count("not spBLEU") == 1 and html.count("not spBLEU") == 1  # the fallback, once
    assert "`harness fetch`" in md
    runs = json.loads((tmp_path / "smoke" / "report.json").read_text())["runs"]
    assert runs[0]["path"] == "../a/runs/sdrrl-smoke"  # relative to the report's folder


def test_portable_settings_keep_only_the_last_part_of_a_path():
    from reports.systems import portable

    assert portable("/home/me/data/instr.json") == "…/instr.json" and portable("builtin:alpaca-smoke") == "builtin:alpaca-smoke"
    assert portable(["~/x/y", 3]) == ["…/y", 3]


def test_markdown_is_under_half_the_length_of_one_table_per_metric(tmp_path):
    """The smoke run's layout: 2 comprehension families, FLORES both ways with 6 metrics, instruct with 6:
    one score and one delta table per metric took 491 lines on this fixture; the folded layout under half."""
    build_report(_smoke_like(tmp_path), tmp_path / "out", n_resamples=50)
    lines = (tmp_path / "out" / "report.md").read_text().splitlines()
    assert len(lines) < 491 / 2


def test_the_spbleu_fallback_is_said_once_on_the_screen_without_paths(monkeypatch, caplog):
    from harness.evaluation import metrics

    metrics.reset_tokenizer_cache()
    monkeypatch.setattr(metrics, "tokenizer_available", lambda tok: False)
    monkeypatch.setitem(metrics._unavailable_reason, "flores200",
                        "no SentencePiece model at /root/.sacrebleu/x and downloading https://tinyurl.com/x failed")
    with caplog.at_level("WARNING", logger=metrics.log.name):
        assert metrics.resolve_tokenize("flores200", "13a") == "13a"
        assert metrics.resolve_tokenize("flores200", "13a") == "13a"
    metrics.reset_tokenizer_cache()
    (record,) = [r for r in caplog.records if "spBLEU" in r.getMessage()]
    text = record.getMessage()
    assert "`harness fetch`" in text and "/root" not in text and "http" not in text
