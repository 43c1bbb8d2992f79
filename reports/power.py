"""When the data cannot answer: the smallest difference a paired test could detect at its item count.

Per delta cell, from the bootstrap spread of the paired difference (SE = the standard deviation of
its resampled differences):

    MDD = (z_{1 - alpha/2} + z_{power}) x SE = (1.960 + 0.842) x SE = 2.80 x SE

the difference a two-sided test at alpha = 0.05 detects with 80% power under a normal approximation.
It uses the nominal alpha, so after the multiple-comparison adjustment (reports/multiple.py) the
detectable difference is larger still. A comparison is *underpowered* when its MDD exceeds the
minimum effect the user cares about (`--min-effect metric=value`, in the metric's own units:
accuracy as a fraction, BLEU in points), by default `DEFAULT_MIN_EFFECT` (our defaults).
"""

from __future__ import annotations

from typing import Iterator

from harness.core.errors import HarnessError

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
          f"(α = {ALPHA}, power = {POWER:.0%}, normal approximation, nominal α)"


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


def annotate(deltas: list[dict], min_effect: dict[str, float]) -> None:
    """Set `mdd` and `underpowered` on every delta cell, in place (None where there is no spread)."""
    factor = multiplier()
    for delta in deltas:
        threshold = min_effect.get(delta["metric"])
        delta["min_effect"] = threshold
        for cell in _cells(delta):
            se = cell.get("se")
            cell["mdd"] = factor * se if se is not None else None
            cell["underpowered"] = (cell["mdd"] > threshold) if cell["mdd"] is not None and threshold else None
