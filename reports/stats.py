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
from typing import Any, Iterable, Sequence

import numpy as np

DEFAULT_RESAMPLES = 1000
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

    def resampled(self, counts: np.ndarray) -> np.ndarray:
        """Corpus score of each resample; `counts` is (R, n) from `resample_counts`."""
        # float matmul (BLAS) is exact here: the sums are integers far below 2**53
        sums = np.rint(np.asarray(counts, dtype=float) @ self.stats.astype(float)).astype(np.int64)
        return np.array([self.score_from_sums(row) for row in sums], dtype=float)


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
