"""When the data cannot answer: the smallest difference a paired test could detect at its item count.

Per delta cell, from the bootstrap spread of the paired difference (SE = the standard deviation of
its resampled differences):

    MDD = (z_{1 - alpha/2} + z_{power}) x SE = (1.960 + 0.842) x SE = 2.80 x SE

the difference a two-sided test at alpha = 0.05 detects with 80% power under a normal approximation.
A bootstrap spread of 0 (identical outputs) says nothing about precision, so the MDD is never below
what the item count can resolve: for a 0/1 metric, the paired permutation test needs at least
k = stats.smallest_significant_items() = 6 items moved one way to reach p < 0.05 (2 / 2^k < 0.05),
so no difference under k / n (n items; pooled over the languages of a macro average) can be
detected at all. For other metrics without spread the MDD is unknown (None) and the cell counts as
underpowered. It uses the nominal alpha, so after the multiple-comparison adjustment (reports/multiple.py) the
detectable difference is larger still. A comparison is *underpowered* when its MDD exceeds the
minimum effect the user cares about (`--min-effect metric=value`, in the metric's own units:
accuracy as a fraction, BLEU in points), by default `DEFAULT_MIN_EFFECT` (our defaults).
"""

from __future__ import annotations

from typing import Iterator

from harness.core.errors import HarnessError
from reports.stats import smallest_significant_items

ALPHA, POWER = 0.05, 0.80
# Differences worth detecting, in each metric's stored units: our defaults, not a standard.
DEFAULT_MIN_EFFECT = {
    "acc": 0.05, "acc_norm": 0.05, "bleu": 1.0, "chrf": 1.0, "comet": 0.01, "lang_match": 0.05,
    "degenerate": 0.05, "empty": 0.05, "preamble": 0.05, "cut_at_limit": 0.05, "answer_words": 5.0,
    "judge_win": 0.05, "judge_consistent": 0.05, "judge_invalid": 0.05,
}


def multiplier(alpha: float = ALPHA, power: float = POWER) -> float:
    from scipy.stats import norm

    return float(norm.ppf(1 - alpha / 2) + norm.ppf(power))


FORMULA = f"MDD = (z(1-α/2) + z(power)) × SE = {multiplier():.2f} × bootstrap SE of the paired difference " \
          f"(α = {ALPHA}, power = {POWER:.0%}, normal approximation, nominal α), never below what the items can " \
          f"resolve (0/1 metrics: {smallest_significant_items(ALPHA)} items moved of n, the fewest a permutation test needs for p < {ALPHA}); " \
          f"unknown where identical outputs leave no spread"


def parse_min_effect(items: list[str] | None) -> dict[str, float]:
    """'acc=0.03' or 'acc=0.03,bleu=0.5' (repeatable) -> the defaults with those replaced."""
    out = dict(DEFAULT_MIN_EFFECT)
    for item in items or []:
        for part in (p.strip() for p in item.split(",") if p.strip()):
            metric, eq, value = part.partition("=")
            metric = metric.strip()
            if metric not in DEFAULT_MIN_EFFECT:
                raise HarnessError(f"bad --min-effect {part!r}: unknown metric {metric!r}; "
                                   f"valid: {', '.join(sorted(DEFAULT_MIN_EFFECT))}")
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if not eq or not 0 < number < float("inf"):
                raise HarnessError(f"bad --min-effect {part!r}: expected {metric}=<finite number > 0>, "
                                   f"e.g. {metric}={DEFAULT_MIN_EFFECT[metric]:g}")
            out[metric] = number
    return out


def _cells(delta: dict) -> Iterator[dict]:
    for row in delta["rows"]:
        yield from (c for c in row["cells"].values() if c)
    yield from (c for c in delta["macro"]["cells"].values() if c)


def resolution(cell: dict) -> float | None:
    """The smallest difference the cell's items can show as significant: for a 0/1 metric, k / n (see the
    module docstring); None for other metrics."""
    moved = cell.get("items_moved") or {}
    items = moved.get("items") or moved.get("of") or cell.get("n")  # distinct items: seeds re-measure the same ones
    if not cell.get("binary") or not items:
        return None
    return min(1.0, smallest_significant_items(ALPHA) / items)


def mdd(cell: dict) -> float | None:
    """2.80 x the bootstrap SE, never below the item count's resolution; None when neither is known or
    the spread is 0 without a resolution."""
    se, floor = cell.get("se"), resolution(cell)
    if se is None:
        return floor
    if se <= 0 and floor is None:
        return None
    return max(multiplier() * se, floor or 0.0)


def annotate(deltas: list[dict], min_effect: dict[str, float]) -> None:
    """Set `mdd` and `underpowered` on every delta cell, in place: a cell whose MDD is unknown because its
    outputs are identical counts as underpowered (its data cannot bound a difference)."""
    for delta in deltas:
        threshold = min_effect.get(delta["metric"])
        delta["min_effect"] = threshold
        for cell in _cells(delta):
            cell["mdd"] = mdd(cell)
            if cell["mdd"] is not None:
                cell["underpowered"] = bool(cell["mdd"] > threshold) if threshold else None
            else:
                cell["underpowered"] = True if cell.get("se") == 0 else None
