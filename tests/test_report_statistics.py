"""Issue 28 items 1-3: no false precision from identical outputs, a correction that can find a strong
effect (exact / permutation tests, Tarone-Gilbert screening of discrete tests), seed variance in the
intervals (reports/stats.py, reports/multiple.py, reports/power.py, reports/estimates.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, false_discovery_control

from reports import multiple, stats
from reports.build import build_report
from reports.fmt import significant
from run_fixtures import make_run

KEY = "adapter:sdrrl"


def _cells(report: dict, reference: str = "base", role: str = "primary") -> list[dict]:
    return [c for d in report["deltas"] if d["reference"] == reference and d["role"] == role
            for r in d["rows"] for c in r["cells"].values()]


# --------------------------------------------------------------------------- item 1


def test_identical_predictions_claim_no_zero_width_interval_and_no_zero_mdd(tmp_path):
    """8 items, the adapter answering exactly as the base model: the bootstrap has no spread, which is
    no precision at all (the old report said "95% CI 0.0 to 0.0" and "MDD 0.0" with no mark)."""
    run = make_run(tmp_path / "runs", "sdrrl", n=8, adapter_acc=0.5, adapter_quality=0.5, families=("belebele",),
                   instruct=True)
    report = build_report([run], tmp_path / "out", n_resamples=200)
    cells = _cells(report) + _cells(report, role="secondary")
    assert cells and all(c["delta"] == 0 for c in cells)
    for cell in cells:
        assert cell["low"] is None or cell["high"] - cell["low"] > 0.3, cell  # never width 0
        assert cell["mdd"] is None or cell["mdd"] >= 6 / 8, cell  # 6 items of 8 is the least a test can see
        assert cell["underpowered"] is True
    acc = next(c for d in report["deltas"] if d["family"] == "belebele" for r in d["rows"] if r["lang"] == "cs"
               for c in r["cells"].values())
    # the exact bound: no item of 8 changed, so the changed share is below 1 - 0.025^(1/8) (Clopper-Pearson)
    assert acc["high"] == pytest.approx(1 - 0.025 ** (1 / 8)) and acc["low"] == pytest.approx(-acc["high"])
    assert acc["mdd"] == pytest.approx(6 / 8)
    bleu = next(c for d in report["deltas"] if d["metric"] == "bleu" for r in d["rows"] for c in r["cells"].values())
    assert bleu["low"] is None and bleu["mdd"] is None and bleu["underpowered"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "[0.0, 0.0]" not in md and "[+0.0, +0.0]" not in md and "MDD 0.0" not in md
    assert "no interval: identical outputs" in md and "MDD unknown (no spread)" in md
    assert "0.0 to 0.0" not in md


def test_a_zero_width_score_interval_of_a_0_1_metric_becomes_clopper_pearson(tmp_path):
    run = make_run(tmp_path / "runs", "sdrrl", n=8, base_acc=0.0, adapter_acc=0.0, translation=False)
    report = build_report([run], tmp_path / "out", n_resamples=100)
    cell = report["tables"][0]["rows"][0]["cells"]["base"]
    assert cell["score"] == 0.0 and (cell["low"], cell["high"]) == pytest.approx(stats.clopper_pearson(0, 8))
    assert cell["high"] == pytest.approx(1 - 0.025 ** (1 / 8))


# --------------------------------------------------------------------------- item 2


def test_exact_sign_flip_test_is_the_exact_sign_test_on_a_known_case():
    # 9 items better, 1 worse, 10 unchanged: the exact sign-flip test of 0/1 differences is the two-sided
    # binomial sign test on the 10 changed items, p = 2 * P(X <= 1 | 10, 1/2) = 22 / 1024
    diff = np.array([1.0] * 9 + [-1.0] + [0.0] * 10)
    result = stats.permutation_test_mean(diff)
    assert result.exact and result.differing == 10 and result.n_permutations == 1024
    assert result.p_value == pytest.approx(22 / 1024) == pytest.approx(binomtest(1, 10, 0.5).pvalue)
    assert result.p_min == pytest.approx(2 / 1024)
    assert stats.permutation_test_mean(np.zeros(8)).p_value == 1.0 and stats.permutation_test_mean(np.zeros(8)).p_min == 1.0
    # many changed items: random swaps, never p = 0, and far below a 26-test family's 0.05 / 26
    strong = stats.permutation_test_mean(np.array([1.0] * 30 + [0.0] * 10), n_permutations=9999)
    assert not strong.exact and strong.p_value == pytest.approx(1 / 10000) and strong.p_value < 0.05 / 26


def test_approximate_randomization_of_bleu_is_exact_on_few_items_and_agrees_with_sacrebleu():
    refs = ["the green house is small", "a river runs under the bridge", "we walk to the city",
            "the letter is on the table", "music in the morning"]
    a = stats.CorpusScorer("bleu", refs, ["the house green small", "a river under bridge", "we walk to city",
                                          "letter on table", "music morning"])
    b = stats.CorpusScorer("bleu", refs, list(refs))
    result = stats.permutation_test_corpus([(a, b)])
    assert result.exact and result.differing == 5 and result.n_permutations == 32
    # by hand: every one of the 32 swap patterns, the corpus BLEU recomputed by sacreBLEU itself
    from sacrebleu.metrics import BLEU

    hyps_a, hyps_b = ["the house green small", "a river under bridge", "we walk to city", "letter on table",
                      "music morning"], list(refs)
    observed = BLEU().corpus_score(hyps_b, [refs]).score - BLEU().corpus_score(hyps_a, [refs]).score
    extreme = 0
    for code in range(32):
        swap = [(code >> i) & 1 for i in range(5)]
        sa = [hb if s else ha for ha, hb, s in zip(hyps_a, hyps_b, swap)]
        sb = [ha if s else hb for ha, hb, s in zip(hyps_a, hyps_b, swap)]
        extreme += abs(BLEU().corpus_score(sb, [refs]).score - BLEU().corpus_score(sa, [refs]).score) >= abs(observed) - 1e-9
    assert result.p_value == pytest.approx(extreme / 32)


@pytest.mark.parametrize("metric,settings", [("bleu", {}), ("bleu", {"tokenize": "char"}), ("chrf", {})])
def test_vectorised_corpus_scores_equal_sacrebleus_own(metric, settings):
    rng = np.random.default_rng(0)
    words = "a b c d e f g h".split()
    refs = [" ".join(rng.choice(words, rng.integers(1, 8))) for _ in range(25)]
    hyps = [" ".join(rng.choice(words, rng.integers(0, 8))) for _ in range(25)]
    scorer = stats.CorpusScorer(metric, refs, hyps, **settings)
    sums = stats.resample_counts(25, 300, 1) @ scorer.stats
    assert scorer.scores_from_sums(sums) == pytest.approx([scorer.score_from_sums(row) for row in sums], abs=1e-9)


def test_tarone_gilbert_screening_on_a_hand_computed_family():
    # 26 tests: one strong effect, 8 ordinary ones, 17 identical-output tests that can only give p = 1.
    p_values = [0.0001] + [0.3] * 8 + [1.0] * 17
    p_min = [0.0001] + [0.0001] * 8 + [1.0] * 17
    keep = multiple.testable(p_min)
    assert keep == [True] * 9 + [False] * 17  # the 17 could not reach p <= 0.05 whatever their data
    kept = [p for p, k in zip(p_values, keep) if k]
    assert multiple.adjust(kept)[0] == pytest.approx(0.0001 * 9)
    # without the screen BH over all 26 gives 0.0026; with the old bootstrap floor (2 / 1001) 0.052 > 0.05
    assert false_discovery_control([2 / 1001] + p_values[1:])[0] == pytest.approx(26 * 2 / 1001)
    assert 26 * 2 / 1001 > 0.05
    # a test with 3 differing items (p_min 0.25) cannot reach 0.05; one with 8 (p_min 2 / 256) can, and stays,
    # however many strong tests share its family (Gilbert's alpha / K screen would drop it among 20 others)
    assert multiple.testable([0.001, 0.25]) == [True, False]
    assert multiple.testable([2 / 256] + [1e-4] * 20) == [True] * 21


def _one_strong_effect(tmp_path: Path) -> list[Path]:
    """Two trained systems over 13 languages (26 tests against the base model, as in the issue): one
    strong effect (sdrrl on Czech), every other adapter answer is the base model's."""
    langs = ("en", "fr", "cs", "da", "uk", "bg", "fi", "hu", "no", "id", "ja", "ko", "pt")
    root = tmp_path / "runs"
    return [make_run(root, "sdrrl", trainer="sdrrl", langs=langs, n=40, translation=False, adapter_acc={"cs": 0.95}),
            make_run(root, "english_sft", trainer="english_sft", langs=langs, n=40, translation=False, adapter_acc=0.5)]


def test_a_single_strong_effect_in_a_26_test_family_reaches_significance(tmp_path):
    report = build_report(_one_strong_effect(tmp_path), tmp_path / "out", n_resamples=1000)
    cells = _cells(report)
    assert len(cells) == 26
    strong = next(r["cells"][KEY] for d in report["deltas"] if d["family"] == "belebele" and d["reference"] == "base"
                  for r in d["rows"] if r["lang"] == "cs")
    assert strong["delta"] > 0.3 and significant(strong) and strong["p_adjusted"] < 0.05
    assert strong["p_value"] < 0.001  # not floored at 2 / (R + 1)
    assert strong["test"]["p_min"] < 0.05 / 26
    screened = [c for c in cells if c["screened_out"]]
    assert len(screened) == 25 and all(c["p_adjusted"] is None and not significant(c) for c in screened)
    assert report["settings"]["multiple_comparisons"]["family_sizes"]["base · primary"] == {"tests": 26, "testable": 1}
    assert "Tarone" in report["settings"]["multiple_comparisons"]["method"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "not testable" in md and "Tarone" in md


# --------------------------------------------------------------------------- item 3


def test_seed_variance_widens_the_interval_and_every_delta_column_shows_the_spread(tmp_path):
    """Seed 0 helps a lot, seed 1 not at all: the item bootstrap of the seed mean would exclude 0; the
    two-level bootstrap (seeds, then items) does not, and the English column shows the seeds too."""
    root = tmp_path / "runs"
    runs = [make_run(root, f"sdrrl-s{seed}", trainer="sdrrl", seed=seed, n=40, translation=False,
                     adapter_acc=acc) for seed, acc in ((0, 0.9), (1, 0.5))]
    report = build_report(runs, tmp_path / "out", n_resamples=1000)
    key = "adapter:sdrrl-s0"
    cs = next(r["cells"][key] for d in report["deltas"] for r in d["rows"] if r["lang"] == "cs")
    per_seed = sorted(cs["seed_deltas"].values())
    assert per_seed[0] == 0.0 and per_seed[1] > 0.3 and cs["seeds"] == 2
    assert cs["low"] <= per_seed[0] + 1e-9  # the seed that did nothing is inside the interval
    assert cs["high"] >= per_seed[1] - 0.1
    # and in the test: the seeds held fixed, the items alone say "different"; the seeds resampled do not
    assert cs["test"]["p_permutation"] < 0.01 and cs["test"]["p_seeds"] > 0.05
    assert cs["p_value"] == max(cs["test"]["p_permutation"], cs["test"]["p_seeds"]) and not significant(cs)
    entry = report["headline"][0]
    assert entry["english"]["seeds"] == 2 and entry["english"]["spread"] is not None
    md = (tmp_path / "out" / "report.md").read_text()
    head = md[md.index("## Headline"):md.index("## Systems")]
    table_lines = [line for line in head.splitlines() if line.startswith("| belebele")]
    assert table_lines and all(line.count("2 seeds") == 2 for line in table_lines)  # macro Δ and English Δ
    retention = md[md.index("## English retention"):]
    assert "2 seeds" in retention.split("##")[1]
    assert "seeds, then items" in json.dumps(report["settings"])
