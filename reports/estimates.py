"""Bootstrap estimates for the report's cells: a system's score on a task, and its delta against a reference.

Every (task, metric) draws its item resamples once, shared by all systems, so the distributions of
two systems, of the seeds of one system, and of the languages of a macro average line up resample
by resample. Scorers and distributions are cached per (system, result, metric): the score tables
and every delta table reuse them. What cannot be estimated becomes a note, not an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reports import stats
from reports.fmt import metric_label
from reports.load import TaskResult
from reports.systems import System, seed_pairs, seed_spread

Distribution = np.ndarray | None  # bootstrap replicates of an estimate; None when there are none


class Estimates:
    def __init__(self, n_resamples: int, seed: int, n_permutations: int = stats.DEFAULT_PERMUTATIONS):
        self.n_resamples = n_resamples
        self.n_permutations = n_permutations
        self.seed = seed
        self._seed_draws: dict[int, np.ndarray] = {}
        self.notes: list[str] = []
        self._distributions: dict[tuple, tuple[Distribution, float | None]] = {}
        self._scorers: dict[tuple, Any] = {}
        self._counts: dict[tuple, np.ndarray] = {}

    def counts(self, n: int, *names: str) -> np.ndarray:
        """Resample multiplicities for n items, one draw per task (every metric and system resamples the
        same items); kept compact (uint16), handed out as floats for the matrix products."""
        key = (n,) + names
        if key not in self._counts:
            draw = stats.resample_counts(n, self.n_resamples, stats.task_seed(self.seed, *names))
            self._counts[key] = draw.astype(np.uint16)
        return self._counts[key].astype(float)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # one system ------------------------------------------------------------------------------

    def scorer(self, system: System, result: TaskResult, metric: str) -> stats.CorpusScorer | None:
        """A CorpusScorer over the result's samples, or None (with a note) when it cannot be built."""
        key = (system.key, str(result.path), metric)
        if key not in self._scorers:
            self._scorers[key] = self._build_scorer(system, result, metric)
        return self._scorers[key]

    def _build_scorer(self, system: System, result: TaskResult, metric: str) -> stats.CorpusScorer | None:
        samples = result.samples
        where = f"{result.task} / {system.label}"
        if not samples:
            self.note(f"{where}: no samples.jsonl, so no interval or paired test.")
            return None
        if any("prediction" not in s or "reference" not in s for s in samples):
            self.note(f"{where}: samples lack reference/prediction, so no {metric_label(metric)} interval.")
            return None
        signature = result.signatures.get(metric)
        try:
            _check_tokenizer(signature)
            return stats.CorpusScorer(metric, [s["reference"] for s in samples], [s["prediction"] for s in samples],
                                      signature)
        except Exception as exc:  # e.g. a tokenizer whose model cannot be fetched offline
            self.note(f"{where}: cannot recompute {metric_label(metric)} "
                      f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}).")
            return None

    def item_values(self, system: System, result: TaskResult, metric: str) -> list[float] | None:
        values = result.item_values(metric)
        if values is None:
            what = "no samples.jsonl" if not result.samples else f"samples carry no per-item {metric!r}"
            self.note(f"{result.task} / {system.label}: {what}, so no interval or paired test.")
        return values

    def distribution(self, system: System, result: TaskResult, metric: str) -> tuple[Distribution, float | None]:
        """Bootstrap distribution of the system's score on this task, and the recomputed score."""
        key = (system.key, str(result.path), metric)
        if key not in self._distributions:
            if metric in stats.CORPUS_METRICS:
                self._distributions[key] = self._corpus_distribution(system, result, metric)
            else:
                self._distributions[key] = self._mean_distribution(system, result, metric)
        return self._distributions[key]

    def _corpus_distribution(self, system: System, result: TaskResult, metric: str) -> tuple[Distribution, float | None]:
        scorer = self.scorer(system, result, metric)
        if scorer is None or not len(scorer):
            return None, None
        value = scorer.score()
        reported = result.metrics.get(metric)
        if isinstance(reported, (int, float)) and abs(reported - value) > 0.05:
            self.note(f"{result.task} / {system.label}: {metric_label(metric)} recomputed from samples "
                      f"is {value:.2f}, scores.json says {reported:.2f} (check the signature).")
        return scorer.resampled(self.counts(len(scorer), result.task)), value

    def _mean_distribution(self, system: System, result: TaskResult, metric: str) -> tuple[Distribution, float | None]:
        values = self.item_values(system, result, metric)
        if not values:
            return None, None
        interval, dist = stats.mean_distribution(values, counts=self.counts(len(values), result.task))
        return dist, interval.estimate

    def cell(self, system: System, task: str, metric: str) -> tuple[dict, Distribution]:
        """The system's score on the task: with several seeds, the seed mean, whose bootstrap distribution
        resamples seeds, then items (`hierarchical`)."""
        results = [r for r in system.results(task) if isinstance(r.metrics.get(metric), (int, float))]
        scores = [float(r.metrics[metric]) for r in results]
        distributions = [self.distribution(system, r, metric)[0] for r in results]
        score = float(np.mean(scores))
        out: dict[str, Any] = {"score": score, "low": None, "high": None, "n": results[0].n_samples}
        if len(results) > 1:
            out.update(seeds=len(results), spread=seed_spread(scores))
        mean = self.hierarchical(distributions)
        if mean is not None:
            iv = stats.percentile_interval(score, mean, len(results[0].samples))
            out.update(low=iv.low, high=iv.high, n=iv.n)
            values = [r.item_values(metric) for r in results]
            if iv.high - iv.low <= ZERO_WIDTH and all(v and stats.is_binary(v) for v in values):
                right, items = sum(int(sum(v)) for v in values), sum(len(v) for v in values)
                out["low"], out["high"] = stats.clopper_pearson(right, items)
                out["interval_method"] = EXACT_SCORE
        return out, mean

    # seeds -------------------------------------------------------------------------------------

    def seed_draw(self, replicates: int) -> np.ndarray:
        """(R, replicates) seed indices drawn with replacement, one draw per replicate count, shared by
        every cell (a seed is one training run for all tasks and languages, so a macro average resamples
        it once)."""
        if replicates not in self._seed_draws:
            rng = np.random.default_rng(stats.task_seed(self.seed, "seeds", str(replicates)))
            self._seed_draws[replicates] = rng.integers(0, replicates, size=(self.n_resamples, replicates))
        return self._seed_draws[replicates]

    def hierarchical(self, distributions: list[Distribution]) -> Distribution:
        """The two-level bootstrap of a seed mean: per replicate, draw the seeds with replacement, then
        take their item-resampled estimates (the items are drawn once per task, shared by the seeds);
        one seed: its item bootstrap."""
        if not distributions or any(d is None for d in distributions):
            return None
        if len(distributions) == 1:
            return distributions[0]
        stacked = np.vstack(distributions)  # (seeds, R)
        draw = self.seed_draw(len(distributions))
        return stacked[draw, np.arange(stacked.shape[1])[:, None]].mean(axis=1)

    # against a reference ---------------------------------------------------------------------

    def paired(self, reference: System, system: System, task: str, metric: str) -> tuple[dict | None, Distribution]:
        """Delta of `system` against `reference`, paired on items and, with several seeds, on seeds: the
        mean of the seed-paired deltas; its interval from the two-level bootstrap (seeds, then items),
        its p-value from the paired permutation test (stats.permutation_test_*)."""
        pairs = seed_pairs(reference, system, task)
        found = [self.paired_one(reference, ref_result, system, result, metric) for ref_result, result in pairs]
        if not found or any(cell is None for cell, _, _ in found):
            return None, None
        cells = [cell for cell, _, _ in found]
        if len(found) == 1:
            out = dict(cells[0])
        else:
            deltas = [cell["delta"] for cell in cells]
            out = {"delta": float(np.mean(deltas)), "low": None, "high": None, "p_value": None,
                   "n": cells[0]["n"], "mcnemar": None, "changes": None, "seeds": len(found),
                   "spread": seed_spread(deltas), "reported_delta": None, "se": None,
                   "seed_deltas": {str(_seed_of(system, task, b)): d for (_, b), d in zip(pairs, deltas)}}
        out["binary"] = all(cell["binary"] for cell in cells)
        moved = [cell["changes"] for cell in cells]
        if all(moved):
            # moved counts over every seed pair; `items`: the distinct items (seeds re-measure the same ones)
            out["items_moved"] = {"improved": sum(c["improved"] for c in moved), "regressed": sum(c["regressed"] for c in moved),
                                  "of": sum(cell["n"] for cell in cells), "items": cells[0]["n"]}
        dist = self.hierarchical([d for _, d, _ in found])
        if dist is not None:
            iv = stats.percentile_interval(out["delta"], dist, 0)
            out.update(low=iv.low, high=iv.high, se=spread_of(dist))
            bound_zero_width(out)
        out.update(self.test(task, metric, [t for _, _, t in found], dist))
        if len(found) > 1 and dist is not None and not out["test"].get("bootstrap"):
            # Seed variance enters the test too: significant only when the permutation test (seeds held
            # fixed) and the two-level bootstrap (seeds resampled) both reject, an intersection-union test.
            p_seeds = stats.bootstrap_p_value(dist)
            out["test"] = {**out["test"], "p_permutation": out["p_value"], "p_seeds": p_seeds,
                           "p_min": max(out["test"]["p_min"], 2.0 / (len(dist) + 1))}
            out["p_value"] = max(out["p_value"], p_seeds)
        return out, dist

    def test(self, task: str, metric: str, inputs: list[Any], dist: Distribution) -> dict[str, Any]:
        """The permutation test over the seed pairs' aligned items; the bootstrap p (with a note) when
        the seed pairs do not hold the same items."""
        lengths = {len(t[0]) if isinstance(t, tuple) else len(t) for t in inputs}
        seed = stats.task_seed(self.seed, "permutation", task, metric)
        if len(lengths) == 1:
            if isinstance(inputs[0], tuple):
                result = stats.permutation_test_corpus(inputs, self.n_permutations, seed)
            else:
                result = stats.permutation_test_mean(np.vstack(inputs), self.n_permutations, seed)
            return {"p_value": result.p_value, "test": result.to_dict()}
        self.note(f"{task}: the seed pairs hold different items, so its {metric_label(metric)} p-values are "
                  "paired-bootstrap ones, not permutation tests.")
        p = stats.bootstrap_p_value(dist) if dist is not None else None
        return {"p_value": p, "test": {"p_value": p, "p_min": 2.0 / (self.n_resamples + 1), "bootstrap": True}}

    def paired_one(self, reference: System, ref_result: TaskResult, system: System, result: TaskResult,
                   metric: str) -> tuple[dict | None, Distribution, Any]:
        """One seed pair: the paired bootstrap over the items both results hold, and the permutation
        test's input (the item differences, or the two aligned corpus scorers)."""
        if not ref_result.samples or not result.samples:
            return None, None, None
        ref_items, items = stats.align_indices(ref_result.samples, result.samples)
        task = ref_result.task
        if not ref_items:
            self.note(f"{task}: {reference.label} and {system.label} share no items (doc_hash), so no paired test.")
            return None, None, None
        if len(ref_items) < max(len(ref_result.samples), len(result.samples)):
            self.note(f"{task}: {reference.label} vs {system.label} paired on the {len(ref_items)} items both have "
                      f"({len(ref_result.samples)} and {len(result.samples)}).")
        counts = self.counts(len(ref_items), "paired", task)
        out: dict[str, Any] = {"mcnemar": None, "changes": None, "binary": False}
        if metric in stats.CORPUS_METRICS:
            ref_scorer, scorer = self.scorer(reference, ref_result, metric), self.scorer(system, result, metric)
            if ref_scorer is None or scorer is None:
                return None, None, None
            test_input: Any = (ref_scorer.take(ref_items), scorer.take(items))
            paired, dist = stats.paired_scorers_distribution(*test_input, counts=counts)
        else:
            ref_values, values = ref_result.item_values(metric), result.item_values(metric)
            if ref_values is None or values is None:
                return None, None, None
            ref_values, values = [ref_values[i] for i in ref_items], [values[j] for j in items]
            paired, dist = stats.paired_mean_distribution(ref_values, values, counts=counts)
            test_input = np.asarray(values, dtype=float) - np.asarray(ref_values, dtype=float)
            out["changes"] = stats.item_changes(ref_values, values).to_dict()
            if stats.is_binary(ref_values) and stats.is_binary(values):
                out["mcnemar"] = stats.mcnemar_exact(ref_values, values).to_dict()
                out["binary"] = True
        reported_ref, reported = ref_result.metrics.get(metric), result.metrics.get(metric)
        out.update(delta=paired.delta, low=paired.low, high=paired.high, p_value=paired.p_value, n=paired.n,
                   se=spread_of(dist), reported_delta=(reported - reported_ref) if None not in (reported_ref, reported) else None)
        return out, dist, test_input


ZERO_WIDTH = 1e-12  # an interval this narrow came from a bootstrap with no spread, not from precision
EXACT_SCORE = "exact (Clopper-Pearson): every item resample gave the same score"
EXACT_DELTA = ("exact (Clopper-Pearson) bound on the share of items that changed: every item resample gave the "
               "same difference")
NO_INTERVAL = "none: the outputs are the same, so the item bootstrap has no spread and cannot bound a difference"


def bound_zero_width(cell: dict) -> None:
    """A delta interval of width 0 (identical outputs, or every item moved the same way) claims a
    precision the items do not have: for a 0/1 metric it becomes the exact interval of the items that
    changed (stats.discordance_interval); otherwise there is no interval."""
    if cell.get("low") is None or cell["high"] - cell["low"] > ZERO_WIDTH:
        return
    moved = cell.get("items_moved")
    if cell.get("binary") and moved:
        items = moved.get("items", moved["of"])
        per_item = items / moved["of"]  # with several seeds, the moved counts per seed pair on average
        cell["low"], cell["high"] = stats.discordance_interval(round(moved["improved"] * per_item),
                                                               round(moved["regressed"] * per_item), items)
        cell["interval_method"] = EXACT_DELTA
    else:
        cell["low"] = cell["high"] = None
        cell["interval_method"] = NO_INTERVAL


def spread_of(distribution: Distribution) -> float | None:
    """The bootstrap standard error: the standard deviation of the resampled estimates."""
    if distribution is None or len(distribution) < 2:
        return None
    return float(np.std(distribution, ddof=1))


def _seed_of(system: System, task: str, result: TaskResult) -> Any:
    return next((r.spec.get("seed") for r in system.runs if r.variant(system.variant).get(task) is result), None)


def mean_distribution(distributions: list[Distribution]) -> Distribution:
    """The replicate-wise mean of aligned distributions; None unless every one is there."""
    if not distributions or any(d is None for d in distributions):
        return None
    return np.mean(np.vstack(distributions), axis=0)


def _check_tokenizer(signature: str | None) -> None:
    """Raise when the signature's BLEU tokenizer needs a SentencePiece model that is not obtainable here
    (harness.evaluation.metrics decides, with its download timeout and offline switches), instead of letting
    sacreBLEU try to download it."""
    tok = stats.parse_signature(signature).get("tok")
    if not tok:
        return
    from harness.evaluation import metrics

    if metrics.needs_model_file(tok) and not metrics.tokenizer_available(tok):
        raise RuntimeError(metrics.unavailable_reason(tok) or f"tokenizer {tok} unavailable")
