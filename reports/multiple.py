"""Multiple-comparison control over a report's paired tests (Benjamini-Hochberg, through scipy).

A report runs many paired tests (languages x metrics x systems x references), so a handful of raw
p < 0.05 is expected by chance alone. The tests are adjusted in families:

  family = one reference (the base model, or translate_sft) and one role, within one report:
    "primary"    every per-language test (English included) of the task families' primary metrics
                 (accuracy, BLEU, ...), over all systems and all primary tables;
    "secondary"  the same for the other metrics (chrF++, COMET, language fidelity, output hygiene),
                 their macro-average rows included;
    "macro"      the macro-average tests of the primary tables (one per system and table): the headline's.

The tests are discrete: a permutation test on k differing items cannot give p below 2 / 2^k, and
one on identical outputs (k = 0) only p = 1. Such a test can never be rejected, yet counted in the
family it makes every other test's threshold stricter. So a family is first screened, after Tarone
(1990), whose idea Gilbert (2005) carried over to the false discovery rate: with p_min the smallest
p-value each test could give (reports/stats.py), a test with p_min > alpha could not be rejected by
Benjamini-Hochberg at level alpha in any family (no BH threshold exceeds alpha), so it is left out
("not testable") and only the others form the family. (Gilbert's own screen, the smallest K with at
most K tests of p_min <= alpha / K, also drops tests that plain BH could reject; this one never makes
a test lose significance.) Within the family the p-values are adjusted by Benjamini-Hochberg
(`scipy.stats.false_discovery_control`, method "bh": the false discovery rate is held at alpha =
5%); a screened-out test gets `p_adjusted` None and `screened_out` True (never significant).
A cell's `p_adjusted` sits beside its raw `p_value`, and the bold marks
and the headline's counts use `p_adjusted`. A cell without a paired test (no samples) is in no family.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

METHOD = ("Benjamini-Hochberg (scipy.stats.false_discovery_control, method='bh') over the testable tests: "
          "Tarone (1990) / Gilbert (2005) screening of discrete tests")
SCREENING = ("tests that could not reach significance whatever the data (smallest attainable p above alpha, after "
             "Tarone 1990 and Gilbert 2005; e.g. identical outputs, whose p can only be 1) are left out of the family "
             "before the Benjamini-Hochberg adjustment and are never significant")
ALPHA = 0.05
FAMILY = ("one family per reference and role within one report: all per-language paired tests of the primary "
          "metrics (English included, all systems); all tests of the secondary metrics; the primary macro-average tests")


def adjust(p_values: list[float]) -> list[float]:
    """BH-adjusted p-values, in the order given."""
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    adjusted = false_discovery_control(np.asarray(p_values, dtype=float), method="bh")
    return [float(min(1.0, p)) for p in np.atleast_1d(adjusted)]


def testable(p_min: list[float], alpha: float = ALPHA) -> list[bool]:
    """The screen: a test whose smallest attainable p exceeds alpha can never be rejected, so it leaves the family."""
    return [p <= alpha for p in p_min]


def _cells(delta: dict, macro: bool) -> Iterator[dict]:
    if macro:
        yield from (c for c in delta["macro"]["cells"].values() if c)
        return
    for row in delta["rows"]:
        yield from (c for c in row["cells"].values() if c)


def family_key(delta: dict, macro: bool) -> tuple[str, str]:
    """(the reference as the report labels it, the role): a reference with several seeds is one system."""
    reference = delta.get("reference_label") or delta["reference"]
    if delta.get("role") != "primary":
        return reference, "secondary"
    return reference, "macro" if macro else "primary"


def _p_min(cell: dict) -> float:
    test = cell.get("test") or {}
    return float(test["p_min"]) if test.get("p_min") is not None else 0.0  # unknown: always testable


def adjust_deltas(deltas: list[dict]) -> dict[str, dict[str, int]]:
    """Set `p_adjusted` (and `screened_out`) on every tested cell of the delta tables, in place; per
    family its tests and how many of them were testable."""
    families: dict[tuple[str, str], list[dict]] = {}
    for delta in deltas:
        for macro in (False, True):
            tested = [c for c in _cells(delta, macro) if c.get("p_value") is not None]
            families.setdefault(family_key(delta, macro), []).extend(tested)
    sizes = {}
    for (ref, role), cells in families.items():
        keep = testable([_p_min(c) for c in cells])
        kept = [c for c, k in zip(cells, keep) if k]
        for cell, p in zip(kept, adjust([c["p_value"] for c in kept])):
            cell["p_adjusted"], cell["screened_out"] = p, False
        for cell in (c for c, k in zip(cells, keep) if not k):
            cell["p_adjusted"], cell["screened_out"] = None, True
        sizes[f"{ref} · {role}"] = {"tests": len(cells), "testable": len(kept)}
    return sizes
