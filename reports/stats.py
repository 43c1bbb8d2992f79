"""Statistics for comparison reports: bootstrap intervals, paired significance tests, item counts.

Everything here resamples *items* (test documents) with replacement, seeded, so a report is
reproducible. Corpus metrics (BLEU, chrF++) are not averages of per-item scores, so for them a
resample recomputes the corpus score: each item's sacreBLEU sufficient statistics are extracted
once, a resample sums them with its multiplicities, and the corpus score is computed from the
sums, which is exactly what sacreBLEU's own `corpus_score` does on the resampled corpus (the
tests check the two agree).

Paired bootstrap p-value (two-sided; Koehn 2004's test made two-sided): with the observed
difference d = score(B) - score(A) on the aligned items and resampled differences d*_1..d*_R
(the same item draw for both systems),
    p = min(1, 2 * (1 + min(#{d*_r <= 0}, #{d*_r >= 0})) / (R + 1))
so p < 0.05 goes with a 95% percentile interval of the difference that excludes 0. Identical
systems give p = 1; a large, consistent difference gives p = 2 / (R + 1).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000  # the two-level bootstrap's p (several seeds) reaches 2 / 2001 = 0.001
CORPUS_METRICS = ("bleu", "chrf")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    n: int  # items resampled
    level: float = 0.95


@dataclass(frozen=True)
class PairedResult:
    """B minus A on aligned items: the difference, its interval and the two-sided p-value."""

    delta: float
    low: float
    high: float
    p_value: float
    n: int  # aligned items
    n_resamples: int


@dataclass(frozen=True)
class McNemarResult:
    """Exact McNemar test: b = A right & B wrong, c = A wrong & B right."""

    b: int
    c: int
    p_value: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ItemChanges:
    improved: int
    regressed: int
    unchanged: int

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- resampling


def task_seed(seed: int, *names: str) -> list[int]:
    """A seed sequence for one (task, ...) so that different tasks draw independent resamples."""
    return [int(seed)] + [zlib.crc32(str(n).encode("utf-8")) for n in names]


def resample_counts(n: int, n_resamples: int = DEFAULT_RESAMPLES, seed: Any = 0) -> np.ndarray:
    """(n_resamples, n) multiplicities: how often each item is drawn in each resample."""
    if n <= 0:
        raise ValueError("cannot resample an empty set of items")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_resamples, n))
    flat = (idx + (np.arange(n_resamples) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n)


def percentile_interval(estimate: float, dist: np.ndarray, n: int, level: float = 0.95) -> Interval:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.asarray(dist, dtype=float), [alpha, 1.0 - alpha])
    return Interval(float(estimate), float(lo), float(hi), int(n), level)


def bootstrap_p_value(dist: np.ndarray) -> float:
    """Two-sided paired-bootstrap p-value from resampled differences, see the module docstring."""
    dist = np.asarray(dist, dtype=float)
    tol = 1e-12  # float noise in "identical" resamples counts as a tie, on both sides
    below = int(np.sum(dist <= tol))
    above = int(np.sum(dist >= -tol))
    return float(min(1.0, 2.0 * (1 + min(below, above)) / (len(dist) + 1)))


# --------------------------------------------------------------------------- corpus metrics


def parse_signature(signature: str | None) -> dict[str, str]:
    """'nrefs:1|case:mixed|tok:13a|...' -> {'nrefs': '1', 'case': 'mixed', 'tok': '13a', ...}."""
    out: dict[str, str] = {}
    for part in (signature or "").split("|"):
        if ":" in part:
            key, value = part.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def make_metric(metric: str, signature: str | None = None, tokenize: str | None = None):
    """A sacreBLEU metric object configured like the one that produced `signature`.

    BLEU: tokenizer from `tok:` (or `tokenize`), `case:lc` -> lowercase, `smooth:`, `eff:`.
    chrF: `nc:`/`nw:` (default chrF++: 6/2), `space:`, `case:`.
    """
    from sacrebleu.metrics import BLEU, CHRF

    sig = parse_signature(signature)
    lowercase = sig.get("case") == "lc"
    if metric == "bleu":
        return BLEU(
            tokenize=tokenize or sig.get("tok") or "13a",
            lowercase=lowercase,
            smooth_method=sig.get("smooth", "exp"),
            effective_order=sig.get("eff") == "yes",
        )
    if metric == "chrf":
        return CHRF(
            char_order=int(sig.get("nc", 6)),
            word_order=int(sig.get("nw", 2)),
            whitespace=sig.get("space") == "yes",
            lowercase=lowercase,
        )
    raise ValueError(f"not a corpus metric: {metric!r} (known: {', '.join(CORPUS_METRICS)})")


class CorpusScorer:
    """Per-item sufficient statistics of a corpus metric, and corpus scores from weighted sums."""

    def __init__(self, metric: str, refs: Sequence[str], hyps: Sequence[str], signature: str | None = None,
                 tokenize: str | None = None):
        if len(refs) != len(hyps):
            raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
        self.metric = metric
        self._m = make_metric(metric, signature, tokenize)
        hyps = ["" if h is None else str(h) for h in hyps]
        refs = ["" if r is None else str(r) for r in refs]
        stats = self._m._extract_corpus_statistics(hyps, [refs])
        self.stats = np.asarray(stats, dtype=np.int64).reshape(len(hyps), -1)

    @classmethod
    def from_stats(cls, metric_obj: Any, metric: str, stats: np.ndarray) -> "CorpusScorer":
        self = cls.__new__(cls)
        self.metric, self._m, self.stats = metric, metric_obj, stats
        return self

    def take(self, indices: Sequence[int]) -> "CorpusScorer":
        """The same metric on a subset (or reordering) of the items."""
        return CorpusScorer.from_stats(self._m, self.metric, self.stats[np.asarray(indices, dtype=int)])

    def __len__(self) -> int:
        return self.stats.shape[0]

    def score_from_sums(self, sums: Iterable) -> float:
        return float(self._m._compute_score_from_stats([int(x) for x in sums]).score)

    def score(self) -> float:
        return self.score_from_sums(self.stats.sum(axis=0))

    def scores_from_sums(self, sums: np.ndarray) -> np.ndarray:
        """The corpus score of each row of summed statistics (vectorised where sacreBLEU's formula allows)."""
        sums = np.rint(np.asarray(sums, dtype=float)).astype(np.int64)
        vectorised = {"bleu": _bleu_scores, "chrf": _chrf_scores}[self.metric](self._m, sums)
        if vectorised is not None:
            return vectorised
        return np.array([self.score_from_sums(row) for row in sums], dtype=float)

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """Corpus score of each resample; `counts` is (R, n) from `resample_counts`."""
        # float matmul (BLAS) is exact here: the sums are integers far below 2**53
        return self.scores_from_sums(np.asarray(counts, dtype=float) @ self.stats.astype(float))


# --------------------------------------------------------------------------- corpus scores, many at once


def _bleu_scores(metric_obj: Any, sums: np.ndarray) -> np.ndarray | None:
    """sacreBLEU's BLEU.compute_bleu on each row of `sums`, vectorised; None for a configuration it
    does not cover (add-k smoothing), which then goes row by row."""
    if metric_obj.smooth_method not in ("exp", "none", "floor"):
        return None
    order = metric_obj.max_ngram_order
    sums = np.asarray(sums, dtype=float)
    sys_len, ref_len = sums[:, 0], sums[:, 1]
    correct, total = sums[:, 2:2 + order], sums[:, 2 + order:2 + 2 * order]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(sys_len < ref_len, np.where(sys_len > 0, np.exp(1 - ref_len / np.maximum(sys_len, 1)), 0.0), 1.0)
        precisions = np.zeros_like(correct)
        smooth = np.ones(len(sums))
        alive = np.ones(len(sums), dtype=bool)  # compute_bleu stops at the first order with no n-grams
        eff = np.full(len(sums), order)
        for n in range(order):
            alive &= total[:, n] > 0
            if metric_obj.effective_order:
                eff = np.where(alive, n + 1, eff)
            zero = correct[:, n] == 0
            safe_total = np.maximum(total[:, n], 1)
            if metric_obj.smooth_method == "exp":
                smooth = np.where(alive & zero, smooth * 2, smooth)
                at_zero = 100.0 / (smooth * safe_total)
            elif metric_obj.smooth_method == "floor":
                at_zero = 100.0 * metric_obj.smooth_value / safe_total
            else:
                at_zero = np.zeros(len(sums))
            precisions[:, n] = np.where(alive, np.where(zero, at_zero, 100.0 * correct[:, n] / safe_total), 0.0)
        logs = np.where(precisions > 0, np.log(np.where(precisions > 0, precisions, 1.0)), -9999999999.0)
        used = np.arange(order)[None, :] < eff[:, None]
        score = bp * np.exp((logs * used).sum(axis=1) / eff)
    return np.where(correct.sum(axis=1) == 0, 0.0, score)


def _chrf_scores(metric_obj: Any, sums: np.ndarray) -> np.ndarray | None:
    """sacreBLEU's CHRF._compute_f_score on each row of `sums`, vectorised (not its eps_smoothing variant)."""
    if metric_obj.eps_smoothing:
        return None
    sums = np.asarray(sums, dtype=float)
    order, factor, eps = metric_obj.order, metric_obj.beta ** 2, 1e-16
    hyp, ref, match = sums[:, 0:3 * order:3], sums[:, 1:3 * order:3], sums[:, 2:3 * order:3]
    prec = np.where(hyp > 0, match / np.maximum(hyp, 1), eps)
    rec = np.where(ref > 0, match / np.maximum(ref, 1), eps)
    counted = (hyp > 0) & (ref > 0)
    eff = counted.sum(axis=1)
    avg_prec = np.where(eff > 0, (prec * counted).sum(axis=1) / np.maximum(eff, 1), 0.0)
    avg_rec = np.where(eff > 0, (rec * counted).sum(axis=1) / np.maximum(eff, 1), 0.0)
    denom = factor * avg_prec + avg_rec
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 100 * (1 + factor) * avg_prec * avg_rec / np.where(denom > 0, denom, 1.0)
    return np.where(avg_prec + avg_rec > 0, score, 0.0)


# --------------------------------------------------------------------------- intervals


def mean_distribution(values: Sequence[float], n_resamples: int = DEFAULT_RESAMPLES, seed: Any = 0,
                      level: float = 0.95, counts: np.ndarray | None = None) -> tuple[Interval, np.ndarray]:
    """Percentile bootstrap interval of the mean of per-item values, and the resampled means;
    `counts` overrides the draw."""
    v = np.asarray(values, dtype=float)
    if counts is None:
        counts = resample_counts(len(v), n_resamples, seed)
    dist = np.asarray(counts, dtype=float) @ v / len(v)
    return percentile_interval(float(v.mean()), dist, len(v), level), dist


# --------------------------------------------------------------------------- paired tests


def align_indices(samples_a: Sequence[dict], samples_b: Sequence[dict],
                  key: str = "doc_hash") -> tuple[list[int], list[int]]:
    """Indices of the items both lists hold, matched on `doc_hash` (repeats matched in order), in A's order."""

    def keyed(samples: Sequence[dict]) -> dict[tuple, int]:
        seen: dict[Any, int] = {}
        out: dict[tuple, int] = {}
        for pos, s in enumerate(samples):
            k = s.get(key)
            if k is None:
                k = ("doc_id", s.get("doc_id"))
            i = seen.get(k, 0)
            seen[k] = i + 1
            out[(k, i)] = pos
        return out

    kb = keyed(samples_b)
    pairs = [(ia, kb[k]) for k, ia in keyed(samples_a).items() if k in kb]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def paired_mean_distribution(values_a: Sequence[float], values_b: Sequence[float],
                             n_resamples: int = DEFAULT_RESAMPLES, seed: Any = 0, level: float = 0.95,
                             counts: np.ndarray | None = None) -> tuple[PairedResult, np.ndarray]:
    """Paired bootstrap on aligned per-item values (mean metric): B - A, two-sided p, and the
    resampled differences; `counts` overrides the draw."""
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired values differ in length: {len(a)} vs {len(b)}")
    diff = b - a
    if counts is None:
        counts = resample_counts(len(diff), n_resamples, seed)
    dist = np.asarray(counts, dtype=float) @ diff / len(diff)
    return _paired_result(float(diff.mean()), dist, len(diff), level), dist


def paired_scorers_distribution(sa: CorpusScorer, sb: CorpusScorer, n_resamples: int = DEFAULT_RESAMPLES,
                                seed: Any = 0, level: float = 0.95,
                                counts: np.ndarray | None = None) -> tuple[PairedResult, np.ndarray]:
    """Paired bootstrap of two aligned corpus scorers (item i of one is item i of the other)."""
    if len(sa) != len(sb):
        raise ValueError(f"paired corpora differ in length: {len(sa)} vs {len(sb)}")
    if counts is None:
        counts = resample_counts(len(sa), n_resamples, seed)
    dist = sb.resampled(counts) - sa.resampled(counts)
    return _paired_result(sb.score() - sa.score(), dist, len(sa), level), dist


def _paired_result(delta: float, dist: np.ndarray, n: int, level: float) -> PairedResult:
    iv = percentile_interval(delta, dist, n, level)
    return PairedResult(float(delta), iv.low, iv.high, bootstrap_p_value(dist), int(n), int(len(dist)))


def mcnemar_exact(correct_a: Sequence[float], correct_b: Sequence[float]) -> McNemarResult:
    """Exact (binomial) McNemar test on paired 0/1 outcomes; p = 1 when there are no discordant pairs."""
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=float) > 0.5
    b = np.asarray(correct_b, dtype=float) > 0.5
    if a.shape != b.shape:
        raise ValueError(f"paired outcomes differ in length: {len(a)} vs {len(b)}")
    n01 = int(np.sum(a & ~b))  # A right, B wrong
    n10 = int(np.sum(~a & b))  # A wrong, B right
    if n01 + n10 == 0:
        return McNemarResult(n01, n10, 1.0)
    p = binomtest(min(n01, n10), n01 + n10, 0.5, alternative="two-sided").pvalue
    return McNemarResult(n01, n10, float(min(1.0, p)))


def is_binary(values: Iterable[float]) -> bool:
    return all(v in (0, 1, 0.0, 1.0, True, False) for v in values)


def item_changes(values_a: Sequence[float], values_b: Sequence[float], tol: float = 1e-12) -> ItemChanges:
    """How many aligned items B scores higher / lower / the same as A."""
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    d = b - a
    return ItemChanges(int(np.sum(d > tol)), int(np.sum(d < -tol)), int(np.sum(np.abs(d) <= tol)))


def macro(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return float(sum(vals) / len(vals)) if vals else float("nan")


# --------------------------------------------------------------------------- permutation tests
#
# The report's paired test (its p-values): a paired permutation test, items the unit. Under "no
# difference", the two systems' outputs on an item are exchangeable, so each item's pair may be
# swapped; the p-value is the share of swap patterns whose |statistic| reaches the observed one
# (two-sided). Only items whose outputs differ change under a swap: with k of them there are 2^k
# patterns, enumerated when k <= EXACT_MAX_ITEMS (an exact test), else DEFAULT_PERMUTATIONS random ones with
# p = (1 + #{|T*| >= |T|}) / (R + 1) (Phipson & Smyth 2010: never 0). For a mean metric this is the
# sign-flip test of the item differences; for BLEU / chrF++ the approximate randomization test
# (Riezler & Maxwell 2005), the corpus score recomputed per pattern. With several seeds the statistic
# is the seed mean of the seed-paired deltas, and a swap exchanges the item's outputs in every seed
# pair at once: the test holds the trained seeds fixed (their variance enters the interval instead).
# The smallest p a pattern set can give is 2 / 2^k (the observed pattern and its mirror image), or
# 1 / (R + 1): a test with no differing item (identical outputs) can only give p = 1.

DEFAULT_PERMUTATIONS = 9999
EXACT_MAX_ITEMS = 16
_CHUNK = 2048  # swap patterns evaluated at once (memory: CHUNK x items)


@dataclass(frozen=True)
class PermutationResult:
    p_value: float
    p_min: float  # the smallest p-value this test could give on these items, whatever the outputs
    differing: int  # items whose outputs differ: the only ones a swap changes
    exact: bool
    n_permutations: int  # swap patterns evaluated (2^k when exact)

    def to_dict(self) -> dict:
        return asdict(self)


def smallest_p(differing: int, exact: bool, n_permutations: int) -> float:
    if differing == 0:
        return 1.0
    floor = 2.0 ** (1 - differing)
    return floor if exact else max(floor, 1.0 / (n_permutations + 1))


def _swap_patterns(k: int, n_permutations: int, seed: Any) -> tuple[Iterator[np.ndarray], int, bool]:
    """Chunks of (rows, k) 0/1 swap patterns: all 2^k when k is small, else `n_permutations` random ones."""
    if k <= EXACT_MAX_ITEMS:
        total = 2 ** k
        bits = np.arange(k)

        def exact() -> Iterator[np.ndarray]:
            for start in range(0, total, _CHUNK):
                codes = np.arange(start, min(start + _CHUNK, total))[:, None]
                yield ((codes >> bits) & 1).astype(float)
        return exact(), total, True
    rng = np.random.default_rng(seed)

    def sampled() -> Iterator[np.ndarray]:
        for start in range(0, n_permutations, _CHUNK):
            yield rng.integers(0, 2, size=(min(_CHUNK, n_permutations - start), k)).astype(float)
    return sampled(), n_permutations, False


def _permutation_p(observed: float, extreme: int, total: int, exact: bool) -> float:
    return float(extreme / total) if exact else float((1 + extreme) / (total + 1))


def _is_extreme(permuted: np.ndarray, observed: float) -> int:
    tol = 1e-9 * max(1.0, abs(observed))  # float noise in the recomputed statistic counts as a tie
    return int(np.sum(np.abs(permuted) >= abs(observed) - tol))


def permutation_test_mean(differences: np.ndarray, n_permutations: int = DEFAULT_PERMUTATIONS,
                          seed: Any = 0) -> PermutationResult:
    """Sign-flip test of a mean metric: `differences` is (seed pairs, items) of B - A on aligned items."""
    d = np.atleast_2d(np.asarray(differences, dtype=float)).mean(axis=0)
    n = len(d)
    nonzero = d[np.abs(d) > 1e-12]
    k = len(nonzero)
    if k == 0:
        return PermutationResult(1.0, 1.0, 0, True, 1)
    observed = float(nonzero.sum() / n)
    patterns, total, exact = _swap_patterns(k, n_permutations, seed)
    extreme = sum(_is_extreme((nonzero * (1.0 - 2.0 * m)).sum(axis=1) / n, observed) for m in patterns)
    return PermutationResult(_permutation_p(observed, extreme, total, exact), smallest_p(k, exact, total), k, exact, total)


def permutation_test_corpus(pairs: Sequence[tuple[CorpusScorer, CorpusScorer]],
                            n_permutations: int = DEFAULT_PERMUTATIONS, seed: Any = 0) -> PermutationResult:
    """Approximate randomization of a corpus metric: `pairs` are (A, B) scorers per seed pair, item i of
    each being the same item; a swap exchanges A's and B's statistics on an item in every pair."""
    if any(len(a) != len(pairs[0][0]) or len(b) != len(a) for a, b in pairs):
        raise ValueError("paired corpora differ in length")
    stacked = np.stack([b.stats - a.stats for a, b in pairs])  # (pairs, items, stats)
    differing = np.flatnonzero(np.any(stacked != 0, axis=(0, 2)))
    k = len(differing)
    if k == 0:
        return PermutationResult(1.0, 1.0, 0, True, 1)
    totals = [(a.stats.sum(axis=0).astype(float), b.stats.sum(axis=0).astype(float)) for a, b in pairs]
    moved = [stacked[j][differing].astype(float) for j in range(len(pairs))]

    def statistic(m: np.ndarray) -> np.ndarray:
        deltas = [b.scores_from_sums(tb - m @ dj) - a.scores_from_sums(ta + m @ dj)
                  for (a, b), (ta, tb), dj in zip(pairs, totals, moved)]
        return np.mean(deltas, axis=0)

    observed = float(statistic(np.zeros((1, k)))[0])
    patterns, total, exact = _swap_patterns(k, n_permutations, seed)
    extreme = sum(_is_extreme(statistic(m), observed) for m in patterns)
    return PermutationResult(_permutation_p(observed, extreme, total, exact), smallest_p(k, exact, total), k, exact, total)


# --------------------------------------------------------------------------- exact bounds for 0/1 metrics


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial share k / n."""
    from scipy.stats import beta

    alpha = 1.0 - level
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def discordance_interval(improved: int, regressed: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """An interval for a paired 0/1 difference whose items all move one way (or none moves), where the
    bootstrap has no spread: the exact interval of the moved share, with the direction's sign; with no
    item moved, either direction (± its upper bound)."""
    moved = improved + regressed
    low, high = clopper_pearson(moved, n, level)
    if moved == 0:
        return -high, high
    return (low, high) if improved else (-high, -low)


def smallest_significant_items(alpha: float = 0.05) -> int:
    """The fewest differing items with which a paired permutation test can reach p < alpha (2 / 2^k < alpha)."""
    return int(math.floor(1 + math.log2(1 / alpha))) + 1
