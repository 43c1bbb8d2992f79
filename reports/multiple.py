"""Multiple-comparison control over a report's paired tests (Benjamini-Hochberg, through scipy).

A report runs many paired tests (languages x metrics x systems x references), so a handful of raw
p < 0.05 is expected by chance alone. The tests are adjusted in families:

  family = one reference (the base model, or translate_sft) and one role, within one report:
    "primary"    every per-language test (English included) of the task families' primary metrics
                 (accuracy, BLEU, ...), over all systems and all primary tables;
    "secondary"  the same for the other metrics (chrF++, COMET, language fidelity, output hygiene),
                 their macro-average rows included;
    "macro"      the macro-average tests of the primary tables (one per system and table): the headline's.

Within a family the paired-bootstrap p-values are adjusted by Benjamini-Hochberg
(`scipy.stats.false_discovery_control`, method "bh": the false discovery rate is held at 5%);
a cell's `p_adjusted` sits beside its raw `p_value`, and the bold marks and the headline's counts
use `p_adjusted`. A cell without a paired test (no samples) is in no family.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

METHOD = "Benjamini-Hochberg (scipy.stats.false_discovery_control, method='bh')"
FAMILY = ("one family per reference and role within one report: all per-language paired tests of the primary "
          "metrics (English included, all systems); all tests of the secondary metrics; the primary macro-average tests")


def adjust(p_values: list[float]) -> list[float]:
    """BH-adjusted p-values, in the order given."""
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    adjusted = false_discovery_control(np.asarray(p_values, dtype=float), method="bh")
    return [float(min(1.0, p)) for p in np.atleast_1d(adjusted)]


def _cells(delta: dict, macro: bool) -> Iterator[dict]:
    if macro:
        yield from (c for c in delta["macro"]["cells"].values() if c)
        return
    for row in delta["rows"]:
        yield from (c for c in row["cells"].values() if c)


def family_key(delta: dict, macro: bool) -> tuple[str, str]:
    if delta.get("role") != "primary":
        return delta["reference"], "secondary"
    return delta["reference"], "macro" if macro else "primary"


def adjust_deltas(deltas: list[dict]) -> dict[str, int]:
    """Set `p_adjusted` on every tested cell of the delta tables, in place; the size of each family."""
    families: dict[tuple[str, str], list[dict]] = {}
    for delta in deltas:
        for macro in (False, True):
            tested = [c for c in _cells(delta, macro) if c.get("p_value") is not None]
            families.setdefault(family_key(delta, macro), []).extend(tested)
    for cells in families.values():
        for cell, p in zip(cells, adjust([c["p_value"] for c in cells])):
            cell["p_adjusted"] = p
    return {f"{ref} · {role}": len(cells) for (ref, role), cells in families.items()}
