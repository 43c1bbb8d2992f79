"""Text formatting shared by the Markdown and HTML renderings: numbers, intervals, durations, labels."""

from __future__ import annotations

import html
import math
from typing import Any

from harness.core.langs import LANGUAGES, iso_code
from reports import stats

MACRO_LABEL = "macro avg (over languages)"
METRIC_NAMES = {"acc": "accuracy", "acc_norm": "accuracy (norm.)", "bleu": "BLEU", "chrf": "chrF++", "comet": "COMET"}
SIGNIFICANCE = 0.05


def esc(value: Any) -> str:
    """HTML-escaped text of any value (attributes included)."""
    return html.escape(str(value), quote=True)


def lang_label(code: str) -> str:
    lang = LANGUAGES.get(iso_code(code))
    return f"{lang.name} ({code})" if lang else code


def is_english(code: str) -> bool:
    return iso_code(code) in ("en", "eng")


def metric_label(metric: str, signature: str | None = None) -> str:
    if metric == "chrf" and signature:
        word_order = stats.parse_signature(signature).get("nw")
        if word_order is not None and word_order != "2":
            return "chrF" if word_order == "0" else f"chrF (nw={word_order})"
    return METRIC_NAMES.get(metric, metric)


def num(value: float | None, scale: float = 1.0, signed: bool = False, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    scaled = value * scale
    for shown in range(digits, digits + 3):  # a near-zero value keeps its sign: more digits, not a bare 0.0
        if abs(scaled) >= 0.5 * 10**-shown:
            text = f"{scaled:+.{shown}f}" if signed else f"{scaled:.{shown}f}"
            return text.replace("-", "−")
    return f"{0:.{digits}f}"


def p_text(p: float | None) -> str:
    """'=0.012', '<0.001' or '=—', to follow 'p' or 'McN p'."""
    if p is None:
        return "=—"
    if p < 0.001:
        return "<0.001"
    return f"={p:.3f}"


def interval(cell: dict, scale: float, signed: bool = False) -> str:
    if cell.get("low") is None:
        return "[no interval: identical outputs]" if str(cell.get("interval_method", "")).startswith("none") else ""
    return f"[{num(cell['low'], scale, signed)}, {num(cell['high'], scale, signed)}]"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) else "—"


def table_title(table: dict) -> str:
    group = f" · {table['group']}" if table["group"] else ""
    unit = " (%)" if table["scale"] == 100.0 else ""
    return f"{table['family']}{group} · {table['metric_label']}{unit}"


def delta_title(delta: dict) -> str:
    return f"{table_title(delta)} — vs {delta['reference_label']}"


def system_labels(report: dict) -> dict[str, str]:
    return {s["key"]: s["label"] for s in report["systems"]}


def significant(cell: dict | None) -> bool:
    """Significant after the multiple-comparison adjustment (the raw p only where no adjustment was made)."""
    if not cell:
        return False
    p = cell["p_adjusted"] if "p_adjusted" in cell else cell.get("p_value")
    return p is not None and p < SIGNIFICANCE


SCREENED = "not testable"  # left out of the correction: its smallest attainable p could not be significant
UNDERPOWERED = "°"  # follows a delta that is not significant and whose smallest detectable difference exceeds the minimum effect


def power_mark(cell: dict | None) -> str:
    """° on a non-significant delta the test could not have told from a difference of the minimum effect
    (a significant one needs no such warning: report.json still holds `underpowered` for every cell)."""
    return UNDERPOWERED if cell and cell.get("underpowered") and not significant(cell) else ""


def seeds_text(cell: dict, scale: float) -> str:
    """'± 1.2 sd, 3 seeds' for a seed mean; '' for one run."""
    if not cell.get("seeds"):
        return ""
    spread = f"± {num(cell['spread'], scale)} sd, " if cell.get("spread") is not None else ""
    return f"{spread}{cell['seeds']} seeds"


def delta_notes(cell: dict, scale: float) -> list[str]:
    """The test results and item counts under a delta, shared by the Markdown and HTML cells."""
    notes = [seeds_text(cell, scale)] if cell.get("seeds") else []
    tests = []
    if cell.get("p_value") is not None:
        tests.append(f"p{p_text(cell['p_value'])}")
    if cell.get("p_adjusted") is not None:
        tests.append(f"adj p{p_text(cell['p_adjusted'])}")
    elif cell.get("screened_out"):
        tests.append(SCREENED)
    if cell.get("mcnemar"):
        tests.append(f"McN p{p_text(cell['mcnemar']['p_value'])}")
    if tests:
        notes.append(" · ".join(tests))
    if cell.get("changes"):
        changes = cell["changes"]
        notes.append(f"{changes['improved']}↑ {changes['regressed']}↓ {changes['unchanged']}=")
    if cell.get("mdd") is not None:
        notes.append(f"MDD {num(cell['mdd'], scale)}")
    elif cell.get("underpowered"):
        notes.append("MDD unknown (no spread)")
    return notes
