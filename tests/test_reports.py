"""Report statistics against known values, and the report files built from synthetic run folders."""

from __future__ import annotations

import json
import math
import random
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from harness.core.errors import HarnessError
from harness.core.runstore import write_json
from reports import stats
from reports.build import build_report
from reports.fmt import MACRO_LABEL
from reports.load import load_run
from run_fixtures import make_run, reseal

# --------------------------------------------------------------------------- statistics


def test_mcnemar_hand_computed_table():
    # A right / B wrong on 1 item, A wrong / B right on 9, 20 concordant:
    # p = 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * (1 + 10) / 1024
    a = [1] * 1 + [0] * 9 + [1] * 12 + [0] * 8
    b = [0] * 1 + [1] * 9 + [1] * 12 + [0] * 8
    res = stats.mcnemar_exact(a, b)
    assert (res.b, res.c) == (1, 9)
    assert res.p_value == pytest.approx(22 / 1024)
    # symmetric in the direction of the change
    assert stats.mcnemar_exact(b, a).p_value == pytest.approx(22 / 1024)


def test_mcnemar_no_discordant_pairs_is_one():
    assert stats.mcnemar_exact([1, 0, 1], [1, 0, 1]).p_value == 1.0
    # 3 vs 3 discordant: p = 1 (capped)
    assert stats.mcnemar_exact([1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]).p_value == 1.0


def test_bootstrap_ci_of_constant_is_the_constant():
    iv = stats.mean_distribution([0.7] * 50, n_resamples=300, seed=1)[0]
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((0.7, 0.7, 0.7))
    assert iv.n == 50


def test_bootstrap_ci_matches_normal_approximation_and_is_seeded():
    rng = random.Random(0)
    values = [1.0 if rng.random() < 0.6 else 0.0 for _ in range(400)]
    iv = stats.mean_distribution(values, n_resamples=2000, seed=3)[0]
    mean = sum(values) / len(values)
    half = 1.96 * math.sqrt(mean * (1 - mean) / len(values))
    assert iv.low < mean < iv.high
    assert (iv.high - iv.low) == pytest.approx(2 * half, rel=0.15)
    assert stats.mean_distribution(values, n_resamples=2000, seed=3)[0] == iv
    d3 = stats.mean_distribution(values, n_resamples=200, seed=3)[1]
    assert (stats.mean_distribution(values, n_resamples=200, seed=3)[1] == d3).all()
    assert not (stats.mean_distribution(values, n_resamples=200, seed=4)[1] == d3).all()


def test_resample_counts_rows_sum_to_n():
    counts = stats.resample_counts(17, n_resamples=50, seed=0)
    assert counts.shape == (50, 17)
    assert (counts.sum(axis=1) == 17).all()


def test_paired_bootstrap_identical_systems_p_is_one():
    rng = random.Random(1)
    a = [float(rng.random() < 0.5) for _ in range(100)]
    res = stats.paired_mean_distribution(a, list(a), n_resamples=500, seed=0)[0]
    assert res.delta == 0.0 and res.p_value == 1.0
    assert (res.low, res.high) == (0.0, 0.0)


def test_paired_bootstrap_large_clear_difference():
    # B is right on 150 of 200 items A gets wrong and never worse: every resample has d* > 0
    # (unless it drew only the 50 unchanged items), so p = 2 / (R + 1).
    a = [0.0] * 200
    b = [1.0] * 150 + [0.0] * 50
    res = stats.paired_mean_distribution(a, b, n_resamples=1000, seed=0)[0]
    assert res.delta == pytest.approx(0.75)
    assert res.p_value == pytest.approx(2 / 1001)
    assert res.p_value < 0.01
    assert res.low > 0.6 and res.high < 0.9
    # and the other way round, the same p with a negative delta
    rev = stats.paired_mean_distribution(b, a, n_resamples=1000, seed=0)[0]
    assert rev.delta == pytest.approx(-0.75) and rev.p_value == res.p_value


def test_item_changes_and_alignment_by_doc_hash():
    a = [{"doc_hash": h, "metrics": {"acc": v}} for h, v in zip("abcde", [1, 0, 0, 1, 1])]
    b = [{"doc_hash": h, "metrics": {"acc": v}} for h, v in zip("edcbaz", [0, 1, 1, 1, 1, 1])]
    pairs = [(a[i], b[j]) for i, j in zip(*stats.align_indices(a, b))]
    assert [x["doc_hash"] for x, _ in pairs] == list("abcde")
    assert all(x["doc_hash"] == y["doc_hash"] for x, y in pairs)
    va = [x["metrics"]["acc"] for x, _ in pairs]
    vb = [y["metrics"]["acc"] for _, y in pairs]
    ch = stats.item_changes(va, vb)
    # a: 1 0 0 1 1 ; b aligned: a->1 b->1 c->1 d->1 e->0
    assert (ch.improved, ch.regressed, ch.unchanged) == (2, 1, 2)


def _sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = "the a cat dog sat on mat house blue red went home quickly slowly river".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))) for _ in range(n)]


def _corrupt(sents: list[str], p: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(w if rng.random() > p else "xyz" for w in s.split()) for s in sents]


def _corpus_score(metric: str, refs: list[str], hyps: list[str], tokenize: str | None = None) -> float:
    """The slow reference: the corpus score straight from sacreBLEU, on the corpus as given."""
    return float(stats.make_metric(metric, tokenize=tokenize).corpus_score(list(hyps), [list(refs)]).score)


def _paired_corpus(refs: list[str], hyps_a: list[str], hyps_b: list[str], n_resamples: int) -> stats.PairedResult:
    a, b = (stats.CorpusScorer("bleu", refs, hyps, tokenize="13a") for hyps in (hyps_a, hyps_b))
    return stats.paired_scorers_distribution(a, b, n_resamples=n_resamples, seed=0)[0]


@pytest.mark.parametrize("metric", ["bleu", "chrf"])
def test_corpus_resample_equals_recomputing_the_corpus_score(metric):
    refs = _sentences(30, 0)
    hyps = _corrupt(refs, 0.4, 1)
    scorer = stats.CorpusScorer(metric, refs, hyps, tokenize="13a")
    assert scorer.score() == pytest.approx(_corpus_score(metric, refs, hyps, tokenize="13a"))
    counts = stats.resample_counts(len(refs), n_resamples=3, seed=5)
    fast = scorer.resampled(counts)
    for r in range(3):
        idx = [i for i in range(len(refs)) for _ in range(counts[r, i])]
        slow = _corpus_score(metric, [refs[i] for i in idx], [hyps[i] for i in idx], tokenize="13a")
        assert fast[r] == pytest.approx(slow)


def test_chrf_default_is_chrf_plus_plus_and_signature_is_honoured():
    from sacrebleu.metrics import BLEU, CHRF

    refs = _sentences(10, 2)
    hyps = _corrupt(refs, 0.3, 3)
    assert _corpus_score("chrf", refs, hyps) == pytest.approx(
        CHRF(word_order=2).corpus_score(hyps, [refs]).score)
    char_bleu = BLEU(tokenize="char")
    expected = char_bleu.corpus_score(hyps, [refs]).score
    sig = str(char_bleu.get_signature())
    assert stats.parse_signature(sig)["tok"] == "char"
    assert stats.CorpusScorer("bleu", refs, hyps, signature=sig).score() == pytest.approx(expected)
    assert expected != pytest.approx(_corpus_score("bleu", refs, hyps, tokenize="13a"))


def test_corpus_ci_of_perfect_output_is_100():
    refs = _sentences(20, 4)
    scorer = stats.CorpusScorer("bleu", refs, refs, tokenize="13a")
    dist = scorer.resampled(stats.resample_counts(len(scorer), n_resamples=200, seed=0))
    iv = stats.percentile_interval(scorer.score(), dist, len(scorer))
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((100.0, 100.0, 100.0))


def test_paired_corpus_bootstrap_identical_and_clear_difference():
    refs = _sentences(60, 5)
    good = _corrupt(refs, 0.1, 6)
    bad = _corrupt(refs, 0.7, 7)
    same = _paired_corpus(refs, good, good, n_resamples=300)
    assert same.delta == 0.0 and same.p_value == 1.0
    res = _paired_corpus(refs, bad, good, n_resamples=1000)
    expected = _corpus_score("bleu", refs, good, "13a") - _corpus_score("bleu", refs, bad, "13a")
    assert res.delta == pytest.approx(expected)
    assert res.delta > 30 and res.p_value < 0.01 and res.low > 0


# --------------------------------------------------------------------------- synthetic runs and the report


def _three_runs(tmp_path: Path, n: int = 40) -> list[Path]:
    root = tmp_path / "runs"
    return [
        make_run(root, "r-base", trainer="base", n=n),
        make_run(root, "r-sdrrl", trainer="sdrrl", n=n, adapter_acc={"en": 0.5, "cs": 0.95, "ja": 0.9},
                 adapter_quality=0.85, device="NVIDIA H100 80GB HBM3 x2", gpus=2),
        make_run(root, "r-tsft", trainer="translate_sft", n=n, adapter_acc=0.6, adapter_quality=0.6),
    ]


class _Checker(HTMLParser):
    VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: dict[str, int] = {}
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for name, value in attrs:
            v = (value or "").strip().lower()
            if name in ("src", "href", "xlink:href", "srcset", "action") and not v.startswith("#"):
                self.external.append(f"{tag} {name}={value}")
            if "url(" in v and "url(#" not in v:
                self.external.append(f"{tag} {name}={value}")
        if tag in ("link", "iframe", "img", "object") or (tag == "script" and "src" in dict(attrs)):
            self.external.append(tag)  # an inline script (the item explorer's filter) loads nothing
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag in ("link", "script", "img"):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def test_report_files_and_content(tmp_path):
    runs = _three_runs(tmp_path)
    out = tmp_path / "report"
    rep = build_report(runs, out, n_resamples=300, seed=0)
    assert {p.name for p in out.iterdir()} == {"report.md", "report.html", "report.json"}  # no temp files left
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(rep))

    md = (out / "report.md").read_text()
    # the primary metrics' score tables first (generation: per direction), each with the macro row; the
    # secondary metrics folded into one table per family and direction, scores and deltas alike
    titles = [line for line in md.splitlines() if line.startswith("### ") and " — " not in line]
    assert titles == ["### belebele · accuracy (%)", "### flores200 · en→xx · BLEU", "### flores200 · xx→en · BLEU",
                      "### flores200 · en→xx", "### flores200 · xx→en"]
    assert [t["metric"] for t in rep["tables"]] == ["acc", "bleu", "chrf", "bleu", "chrf"]  # report.json keeps all
    assert [t["role"] for t in rep["tables"]] == ["primary", "primary", "secondary", "primary", "secondary"]
    assert "| language | system | chrF++ |" in md
    # the runs table names the engine (and adapter serving) behind each variant's scores, per request type
    assert "base: generation vllm, multiple choice hf; adapter: generation vllm, multiple choice hf+merged" in md
    primary = [t for t in rep["tables"] if t["role"] == "primary"]
    primary_deltas = [d for d in rep["deltas"] if d["role"] == "primary"]
    folded = 2 * (3 + 2 + 1)  # flores200 per direction: base, sdrrl, tsft scores; sdrrl and tsft vs base; sdrrl vs tsft
    # (+1: the explanation above the tables names the row too)
    assert md.count(f"**{MACRO_LABEL}**") == len(primary) + len(primary_deltas) + folded + 1
    assert "| language | base | sdrrl | translate_sft |" in md
    assert "— vs base" in md and "— vs translate_sft" in md
    assert "McN p" in md and "↑" in md
    assert "## English retention" in md and "## Cost per run" in md and "## sacreBLEU signatures" in md
    assert "tok:13a" in md and "nw:2" in md

    # cells are score [low, high]
    bele = rep["tables"][0]
    cs = next(r for r in bele["rows"] if r["lang"] == "cs")
    for key in ("base", "adapter:r-sdrrl", "adapter:r-tsft"):
        c = cs["cells"][key]
        assert c["low"] <= c["score"] <= c["high"]
    cs_line = next(line for line in md.splitlines() if line.startswith("| Czech (cs) |"))
    assert len(re.findall(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", cs_line)) == 3
    # macro over non-English languages only, with an interval
    assert bele["macro"]["langs"] == ["cs", "ja"] and bele["macro"]["excluded"] == ["English (en)"]
    m = bele["macro"]["cells"]["adapter:r-sdrrl"]
    assert m["score"] == pytest.approx((cs["cells"]["adapter:r-sdrrl"]["score"]
                                        + next(r for r in bele["rows"] if r["lang"] == "ja")["cells"]["adapter:r-sdrrl"]["score"]) / 2)
    assert m["low"] < m["score"] < m["high"]

    # deltas: sdrrl clearly better than base on cs, with McNemar and item counts; identical English-ish
    d_base = next(d for d in rep["deltas"] if d["family"] == "belebele" and d["reference"] == "base")
    dcs = next(r for r in d_base["rows"] if r["lang"] == "cs")["cells"]["adapter:r-sdrrl"]
    assert dcs["delta"] > 0.3 and dcs["p_value"] < 0.01 and dcs["mcnemar"]["p_value"] < 0.01
    assert dcs["changes"]["regressed"] == 0 and dcs["changes"]["improved"] > 10
    den = next(r for r in d_base["rows"] if r["lang"] == "en")["cells"]["adapter:r-sdrrl"]
    assert den["delta"] == 0.0 and den["p_value"] == 1.0 and den["mcnemar"]["p_value"] == 1.0
    d_tsft = [d for d in rep["deltas"] if d["reference"] == "adapter:r-tsft"]
    assert d_tsft and all(d["systems"] == ["adapter:r-sdrrl"] for d in d_tsft)
    # generation deltas recompute the corpus metric; delta equals the difference of reported scores
    d_bleu = next(d for d in rep["deltas"] if d["metric"] == "bleu" and d["group"] == "en→xx" and d["reference"] == "base")
    c = d_bleu["rows"][0]["cells"]["adapter:r-sdrrl"]
    assert c["delta"] == pytest.approx(c["reported_delta"]) and c["p_value"] < 0.01 and c["mcnemar"] is None

    # English retention lists both adapters on the English belebele task
    ret = rep["english_retention"]
    assert {e["system"] for e in ret} == {"adapter:r-sdrrl", "adapter:r-tsft"}
    assert all(e["task"] == "belebele_en" for e in ret)

    # cost: GPU hours only for the run trained on a GPU: (data + train + eval) wall x 2 GPUs
    cost = {c["run"]: c for c in rep["cost"]}
    assert cost["r-sdrrl"]["gpu_hours"] == pytest.approx((300 + 1800 + 120) * 2 / 3600)
    assert cost["r-tsft"]["gpu_hours"] is None and cost["r-sdrrl"]["train_tokens"] == 250000
    assert "1.23" in md


def test_markdown_and_html_show_the_same_sections_in_order(tmp_path):
    """Both renderings walk one description of the sections (reports/sections.py); the HTML's navigation links them all."""
    out = tmp_path / "report"
    build_report(_three_runs(tmp_path, n=20), out, n_resamples=50)
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    md_titles = [line[3:] for line in md.splitlines() if line.startswith("## ")]
    html_titles = re.findall(r'<h2 id="[a-z]+">([^<]+)</h2>', html)
    assert md_titles == html_titles == ["Headline", "Systems", "Scores: primary metrics", "Deltas: primary metrics",
                                        "English retention", "Secondary metrics: quality, fidelity, hygiene",
                                        "Item explorer: where the systems disagree", "Training budget",
                                        "Cost per run", "sacreBLEU signatures", "Notes"]
    assert re.findall(r'<a href="#([a-z]+)">', html) == re.findall(r'<h2 id="([a-z]+)">', html)


def test_report_html_is_valid_and_self_contained(tmp_path):
    out = tmp_path / "report"
    build_report(_three_runs(tmp_path), out, n_resamples=100)
    text = (out / "report.html").read_text()
    assert text.startswith("<!DOCTYPE html>")
    p = _Checker()
    p.feed(text)
    p.close()
    assert p.errors == [] and p.stack == []
    assert p.external == []
    assert "http" not in text  # inline SVG in HTML needs no namespace URI
    assert p.tags.get("style") == 1 and p.tags.get("svg", 0) >= 5 and p.tags.get("table", 0) >= 10
    body = "".join(p.text)
    assert MACRO_LABEL in body and "English retention" in body and "vs translate_sft" in body


def test_report_is_deterministic(tmp_path):
    runs = _three_runs(tmp_path)
    a = build_report(runs, tmp_path / "a", n_resamples=100, seed=7)
    b = build_report(runs, tmp_path / "b", n_resamples=100, seed=7)
    assert a == b
    assert (tmp_path / "a" / "report.html").read_text() == (tmp_path / "b" / "report.html").read_text()


def test_two_runs_with_one_trainer_are_labelled_by_name(tmp_path):
    root = tmp_path / "runs"
    runs = [make_run(root, "s1", trainer="sdrrl", translation=False),
            make_run(root, "s2", trainer="sdrrl", translation=False, adapter_acc=0.4)]
    rep = build_report(runs, tmp_path / "out", n_resamples=50)
    labels = [s["label"] for s in rep["systems"]]
    assert labels == ["base", "sdrrl (s1)", "sdrrl (s2)"]
    assert "| language | base | sdrrl (s1) | sdrrl (s2) |" in (tmp_path / "out" / "report.md").read_text()
    assert any("base-model column" in n and "s1" in n for n in rep["notes"])


def test_report_without_samples_or_adapter(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root, "only-base", trainer="base", translation=False)
    task = run / "eval" / "base" / "belebele_cs"
    (task / "samples.jsonl").unlink()
    with pytest.raises(HarnessError, match=r"belebele_cs/samples.jsonl is missing: it was changed after the evaluation"):
        build_report([run], tmp_path / "out", n_resamples=50)
    record = json.loads((task / "integrity.json").read_text())
    write_json(task / "integrity.json", {"scores.json": record["scores.json"]})  # a result written without samples
    rep = build_report([run], tmp_path / "out", n_resamples=50)
    assert rep["deltas"] == [] and rep["english_retention"] == []
    cs = next(r for r in rep["tables"][0]["rows"] if r["lang"] == "cs")["cells"]["base"]
    assert cs["low"] is None and cs["score"] is not None
    assert rep["tables"][0]["macro"]["cells"]["base"]["low"] is None  # no interval when a language has none
    assert any("belebele_cs" in n and "samples" in n for n in rep["notes"])
    md = (tmp_path / "out" / "report.md").read_text()
    assert MACRO_LABEL in md and "No comparisons" in md


def test_not_a_run_and_no_evaluation_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError, match="not a run folder") as e:
        build_report([tmp_path], tmp_path / "out")
    assert "\n" not in str(e.value)
    with pytest.raises(HarnessError, match="not a run folder"):
        load_run(tmp_path / "missing")
    run = make_run(tmp_path / "runs", "r", translation=False)
    import shutil

    shutil.rmtree(run / "eval")
    with pytest.raises(HarnessError, match="has no evaluation") as e:
        load_run(run)
    assert "\n" not in str(e.value)
    (run / "eval" / "base" / "t").mkdir(parents=True)
    (run / "eval" / "base" / "t" / "scores.json").write_text("{not json")
    with pytest.raises(HarnessError, match="cannot read scores"):
        load_run(run)


def test_load_run_reads_the_layout(tmp_path):
    run = load_run(make_run(tmp_path / "runs", "r", trainer="sdrrl", langs=("en", "cs")))
    assert run.name == "r" and run.trainer == "sdrrl"
    assert set(run.results) == {"base", "adapter"}
    assert set(run.results["adapter"]) == {"belebele_en", "belebele_cs", "flores200_en-cs", "flores200_cs-en"}
    fl = run.results["adapter"]["flores200_en-cs"]
    assert fl.direction == "en-cs" and fl.metric_names() == ["bleu", "chrf"] and len(fl.samples) == 40
    assert run.results["base"]["belebele_cs"].metric_names() == ["acc"]
    assert run.stages["train"]["steps"] == 80


def test_signature_mismatch_is_noted(tmp_path):
    runs = _three_runs(tmp_path, n=20)
    p = runs[1] / "eval" / "adapter" / "flores200_en-cs" / "scores.json"
    s = json.loads(p.read_text())
    s["metrics"]["bleu"] += 5.0
    write_json(p, s)
    reseal(p.parent)
    rep = build_report(runs, tmp_path / "out", n_resamples=50)
    assert any("flores200_en-cs" in n and "recomputed" in n for n in rep["notes"])
    assert np.isfinite(rep["tables"][1]["rows"][0]["cells"]["adapter:r-sdrrl"]["score"])


def test_unusable_tokenizer_is_a_note_not_a_crash(tmp_path):
    runs = _three_runs(tmp_path, n=20)
    p = runs[1] / "eval" / "adapter" / "flores200_en-cs" / "scores.json"
    s = json.loads(p.read_text())
    s["signatures"]["bleu"] = s["signatures"]["bleu"].replace("tok:13a", "tok:no-such-tokenizer")
    write_json(p, s)
    reseal(p.parent)
    rep = build_report(runs, tmp_path / "out", n_resamples=50)
    assert any("flores200_en-cs" in n and "cannot recompute BLEU" in n for n in rep["notes"])
    row = rep["tables"][1]["rows"][0]
    assert row["task"] == "flores200_en-cs" and row["cells"]["adapter:r-sdrrl"]["low"] is None
    d = next(d for d in rep["deltas"] if d["metric"] == "bleu" and d["group"] == "en→xx" and d["reference"] == "base")
    c = d["rows"][0]["cells"]["adapter:r-sdrrl"]
    assert c["p_value"] is None and c["delta"] == pytest.approx(c["reported_delta"])
    m = d["macro"]["cells"]["adapter:r-sdrrl"]
    assert m["p_value"] is None and m["delta"] is not None  # the mean of the deltas, without an interval
    assert "no-such-tokenizer" in (tmp_path / "out" / "report.md").read_text()  # the signature table shows it
    assert any("flores200_en-cs" in n and "different sacreBLEU signatures" in n for n in rep["notes"])


def test_flores200_tokenizer_offline_is_a_note(tmp_path, monkeypatch):
    pytest.importorskip("harness.evaluation.metrics")
    from harness.evaluation import metrics

    monkeypatch.setattr(metrics, "tokenizer_available", lambda tok: tok != "flores200")
    monkeypatch.setattr(metrics, "unavailable_reason", lambda tok: "no SentencePiece model (test)")
    runs = _three_runs(tmp_path, n=20)
    for run in runs:
        for p in run.glob("eval/*/flores200_en-ja/scores.json"):
            s = json.loads(p.read_text())
            s["signatures"]["bleu"] = s["signatures"]["bleu"].replace("tok:13a", "tok:flores200")
            write_json(p, s)
            reseal(p.parent)
    rep = build_report(runs, tmp_path / "out", n_resamples=50)
    assert any("flores200_en-ja" in n and "no SentencePiece model (test)" in n for n in rep["notes"])


def test_a_run_stopped_inside_its_evaluation_is_reported_as_unfinished(tmp_path, capsys):
    """The report says so first, in its notes, and `harness report` says so in one line (issue 25 item 2)."""
    from harness.app.cli import main
    from harness.core.runstore import read_json

    root = tmp_path / "runs"
    whole, stopped, partial = (make_run(root, n, langs=("en", "cs"), n=4) for n in ("whole", "stopped", "partial"))
    manifest = read_json(stopped / "manifest.json")
    del manifest["stages"]["evaluate"]
    write_json(stopped / "manifest.json", manifest)
    manifest = read_json(partial / "manifest.json")
    manifest["stages"]["evaluate"].update(tasks=4, variants=["base", "adapter"])
    write_json(partial / "manifest.json", manifest)
    import shutil
    shutil.rmtree(partial / "eval" / "adapter" / "flores200_cs-en")  # a forced re-evaluation killed midway

    assert build_report([whole], tmp_path / "w", n_resamples=20)["unfinished"] == []
    rep = build_report([whole, stopped, partial], tmp_path / "out", n_resamples=20)
    assert rep["unfinished"] == [
        "run stopped is unfinished: its evaluate stage did not finish (task results found: 4 adapter, 4 base)",
        "run partial is unfinished: its evaluate stage recorded 4 tasks per variant, found 3 adapter, 4 base"]
    assert rep["notes"][:2] == rep["unfinished"]
    assert "run stopped is unfinished" in (tmp_path / "out" / "report.md").read_text()
    capsys.readouterr()
    assert main(["report", str(stopped), "--out", str(tmp_path / "cli")]) == 0
    said = capsys.readouterr()
    assert "warning: run stopped is unfinished: its evaluate stage did not finish" in said.out + said.err
