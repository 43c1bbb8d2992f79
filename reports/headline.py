"""The report's answer, first: per task family's primary metric and per trained system, the macro delta
against each reference with its interval, how many languages moved significantly after correction,
English retention, and one sentence that says no more than those figures do.

Computed from the report's own tables (reports/compute.py), after the multiple-comparison
adjustment (reports/multiple.py) and the power marks (reports/power.py).
"""

from __future__ import annotations

from typing import Any

from reports.fmt import SIGNIFICANCE, num

DEGENERATE = "degenerate"  # harness.evaluation.genmetrics: echoes of the prompt and repetitive text


def _key(table: dict) -> tuple[str, str, str]:
    return table["family"], table["group"], table["metric"]


def _significant(cell: dict | None) -> bool:
    return bool(cell) and cell.get("p_adjusted") is not None and cell["p_adjusted"] < SIGNIFICANCE


def _comparison(delta: dict, key: str) -> dict | None:
    macro = delta["macro"]["cells"].get(key)
    if macro is None:
        return None
    rows = [r for r in delta["rows"] if r["lang"] in delta["macro"]["langs"]]
    cells = [r["cells"][key] for r in rows if r["cells"].get(key)]
    tested = [c for c in cells if c.get("p_adjusted") is not None]
    fields = ("delta", "low", "high", "p_value", "p_adjusted", "mdd", "underpowered", "seeds", "spread", "seed_deltas",
              "interval_method")
    return {"reference": delta["reference"], "reference_label": delta["reference_label"],
            **{f: macro.get(f) for f in fields}, "significant": _significant(macro),
            "languages": len(rows), "tested": len(tested),
            "improved": sum(_significant(c) and c["delta"] > 0 for c in tested),
            "regressed": sum(_significant(c) and c["delta"] < 0 for c in tested),
            "underpowered_languages": sum(bool(c.get("underpowered")) for c in cells)}


def _english(retention: list[dict], table: dict, key: str) -> dict | None:
    entry = next((e for e in retention if (e["family"], e["group"], e["metric"]) == _key(table) and e["system"] == key), None)
    if entry is None:
        return None
    fields = ("delta", "low", "high", "p_value", "p_adjusted", "underpowered", "seeds", "spread", "interval_method")
    return {f: entry.get(f) for f in fields} | {
        "significant": _significant(entry)}


def _degenerate(tables: list[dict], table: dict, key: str) -> dict | None:
    """The system's share of degenerate outputs over the macro's languages, beside the base model's."""
    other = next((t for t in tables if (t["family"], t["group"], t["metric"]) == (table["family"], table["group"], DEGENERATE)), None)
    cell = other["macro"]["cells"].get(key) if other else None
    if not cell or cell.get("score") is None:
        return None
    base = other["macro"]["cells"].get("base") or {}
    return {"share": cell["score"], "base": base.get("score"), "languages": other["macro"]["langs"]}


def headline(tables: list[dict], deltas: list[dict], retention: list[dict], labels: dict[str, str],
             adapters: set[str]) -> list[dict]:
    """One entry per primary table and trained system."""
    out = []
    for table in (t for t in tables if t["role"] == "primary"):
        for key in (k for k in table["systems"] if k in adapters):
            found = [d for d in deltas if _key(d) == _key(table) and key in d["systems"]]
            comparisons = [c for d in found if (c := _comparison(d, key)) is not None]
            if not comparisons:
                continue
            entry: dict[str, Any] = {
                "family": table["family"], "group": table["group"], "metric": table["metric"],
                "metric_label": table["metric_label"], "scale": table["scale"], "system": key,
                "system_label": labels[key], "languages": table["macro"]["langs"], "comparisons": comparisons,
                "english": _english(retention, table, key), "degenerate": _degenerate(tables, table, key)}
            entry["sentence"] = sentence(entry)
            out.append(entry)
    return out


# --------------------------------------------------------------------------- the sentence


def _unit(entry: dict) -> str:
    return "points" if entry["scale"] == 100.0 else f"{entry['metric_label']} points"


def _ci(cell: dict, scale: float) -> str:
    if cell.get("low") is None:
        return "no interval" + (": identical outputs" if str(cell.get("interval_method", "")).startswith("none") else "")
    return f"95% CI {num(cell['low'], scale, signed=True)} to {num(cell['high'], scale, signed=True)}"


def _versus(c: dict, entry: dict, first: bool) -> str:
    scale, unit = entry["scale"], _unit(entry)
    what = "the base model" if c["reference"] == "base" else c["reference_label"]
    subject = entry["system_label"] if first else "against " + what + " it"
    size = f"{num(abs(c['delta']), scale)} {unit}"
    seeds = f", mean of {c['seeds']} seeds, sd {num(c['spread'], scale)}" if c.get("seeds") else ""
    if c["significant"]:
        verb = "is above" if c["delta"] > 0 else "is below"
        text = f"{subject} {verb} {what} by {size} on average ({_ci(c, scale)}{seeds}; significant after correction)"
    else:
        text = (f"{subject} is not distinguishable from {what} at this item count (macro Δ "
                f"{num(c['delta'], scale, signed=True)} {unit}, {_ci(c, scale)}{seeds})")
        if c.get("underpowered") and c.get("mdd") is not None:
            text += f"; a difference under about {num(c['mdd'], scale)} {unit} could not be detected"
        elif c.get("underpowered"):
            text += "; the outputs are identical, so these items cannot bound a difference"
    return text + "; " + _languages(c)


def _languages(c: dict) -> str:
    n = c["languages"]
    if not c["improved"] and not c["regressed"]:
        return f"per language (after correction) none of {n} differs"
    return f"per language (after correction) {c['improved']} of {n} improved, {c['regressed']} regressed"


def sentence(entry: dict) -> str:
    """One plain sentence from the entry's figures: significant only after correction, never more."""
    task = f"{entry['family']}{' ' + entry['group'] if entry['group'] else ''} {entry['metric_label']}"
    parts = [_versus(c, entry, i == 0) for i, c in enumerate(entry["comparisons"])]
    text = f"On {task}, " + "; ".join(parts)
    english = entry.get("english")
    if english:
        scale = entry["scale"]
        verdict = "significant after correction" if english["significant"] else "not significant"
        text += (f"; English moves {num(english['delta'], scale, signed=True)} {_unit(entry)} "
                 f"({_ci(english, scale)}, {verdict})")
    degenerate = entry.get("degenerate")
    if degenerate and entry["metric"] == "lang_match":
        base = degenerate.get("base")
        versus = f" (the base model's: {num(base, 100.0)}%)" if base is not None else ""
        text += (f"; in {', '.join(degenerate['languages'])}, {num(degenerate['share'], 100.0)}% of its outputs echo "
                 f"the prompt or repeat themselves{versus}, so being in the right language is not the same as answering")
    return text + "."
