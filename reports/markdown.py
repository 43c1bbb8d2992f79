"""report.md: the report dict as GitHub Markdown."""

from __future__ import annotations

from typing import Callable

from reports import sections
from reports.fmt import (delta_notes, delta_title, interval, num, power_mark, seeds_text, significant,
                         system_labels, table_title)
from reports.curves import curves_markdown
from reports.explorer import explorer_markdown
from reports.sections import LeadPart, Section, SignificanceMark


def render_markdown(report: dict) -> str:
    lines = ["# Comparison report", ""]
    labels = system_labels(report)
    for section in sections.shown(report):
        lines += [f"## {section.title}", ""] + _section_body(section, report, labels)
    return "\n".join(lines)


def _markup(part: LeadPart) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, SignificanceMark):
        return "**bold**"
    return f"**{part.text}**" if part.kind == "strong" else f"*{part.text}*"


def _section_body(section: Section, report: dict, labels: dict[str, str]) -> list[str]:
    lines = [section.lead, ""] if section.lead else []
    body = _BODIES[section.anchor](report, labels)
    lines += [f"_{section.empty}_", ""] if section.empty and not body else body
    if section.footnote:
        lines += [f"_{section.footnote}_", ""]
    return lines


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _table(header: list[str], rows: list[list[str]], align: str = "l") -> list[str]:
    rule = "|" + "|".join([":---"] + ["---:" if align == "r" else ":---"] * (len(header) - 1)) + "|"
    return [_row(header), rule] + [_row(r) for r in rows]


def score_text(cell: dict | None, scale: float) -> str:
    if not cell:
        return "—"
    seeds = seeds_text(cell, scale)
    return f"{num(cell['score'], scale)} {interval(cell, scale)}".strip() + (f" ({seeds})" if seeds else "")


def delta_text(cell: dict | None, scale: float, sep: str = "<br>") -> str:
    if not cell:
        return "—"
    return sep.join([f"{_delta_main(cell, scale)} {interval(cell, scale, signed=True)}".strip(), *delta_notes(cell, scale)])


def _delta_main(cell: dict, scale: float) -> str:
    main = num(cell["delta"], scale, signed=True)
    return (f"**{main}**" if significant(cell) else main) + power_mark(cell)


def short_delta(cell: dict | None, scale: float) -> str:
    """A folded table's delta: the number, bold when significant after correction, ° when underpowered."""
    return _delta_main(cell, scale) if cell and cell.get("delta") is not None else "—"


def short_score(cell: dict | None, scale: float) -> str:
    return num(cell["score"], scale) if cell else "—"


def headline_delta(cell: dict | None, scale: float) -> str:
    if not cell or cell.get("delta") is None:
        return "—"
    seeds = f" ({seeds_text(cell, scale)})" if cell.get("seeds") else ""
    return f"{_delta_main(cell, scale)} {interval(cell, scale, signed=True)}".strip() + seeds


def _cells_tables(tables: list[dict], labels: dict[str, str], title: Callable[[dict], str],
                  cell_text: Callable[[dict | None, float], str]) -> list[list[str]]:
    """Per score or delta table: its title and its rows (the macro row in bold)."""
    out = []
    for table in tables:
        rows = [[f"**{label}**" if is_macro else label] + [cell_text(cells.get(k), table["scale"])
                                                         for k in table["systems"]]
                for label, cells, is_macro in sections.labelled_rows(table)]
        out.append([f"### {title(table)}", ""] + _table(["language"] + [labels[k] for k in table["systems"]], rows, "r"))
    return out


def _headline(report: dict, labels: dict[str, str]) -> list[str]:
    if not report["headline"]:
        return []
    header, rows = sections.headline_table(report)
    texts = [[c if isinstance(c, str) else headline_delta(*c) for c in row] for row in rows]
    lines = [sections.headline_lead(report), ""] + _table(header, texts, "r") + [""]
    lines += [f"- {entry['sentence']}" for entry in report["headline"]] + [""]
    return lines + [f"_{c}_" for c in report.get("caveats", [])] + ([""] if report.get("caveats") else [])


def _systems(report: dict, labels: dict[str, str]) -> list[str]:
    lead = "".join(_markup(part) for part in sections.cells_lead(report["settings"]))
    return _table(*sections.runs_table(report)) + [""] + _table(*sections.systems_table(report)) + ["", lead, ""]


def _folded(folded: sections.Folded, cell_text: Callable[[dict | None, float], str], level: str) -> list[str]:
    rows = [[f"**{x}**" if is_macro else x for x in labels] + [cell_text(c, scale) for c, scale in cells]
            for labels, cells, is_macro in folded.rows]
    notes = [f"_{' '.join(folded.notes)}_", ""] if folded.notes else []
    return [f"{level} {folded.title}", ""] + _table(folded.header, rows, "r") + [""] + notes


def _secondary(report: dict, labels: dict[str, str]) -> list[str]:
    lines = []
    for folded in sections.folded_scores(report, labels):
        lines += _folded(folded, short_score, "###")
    for folded in sections.folded_deltas(report, labels):
        lines += _folded(folded, short_delta, "###")
    return lines


def _scores(report: dict, labels: dict[str, str]) -> list[str]:
    lines = []
    tables = sections.primary(report["tables"])
    for table, block in zip(tables, _cells_tables(tables, labels, table_title, score_text)):
        excluded = [f"Macro average leaves out: {', '.join(table['macro']['excluded'])}."] if table["macro"]["excluded"] else []
        lines += block + ["", "_" + " ".join(excluded + table.get("notes", [])) + "_", ""]
    return lines


def _deltas(report: dict, labels: dict[str, str]) -> list[str]:
    tables = sections.primary(report["deltas"])
    return [line for block in _cells_tables(tables, labels, delta_title, delta_text) for line in block + [""]]


def _retention(report: dict, labels: dict[str, str]) -> list[str]:
    rows = [[sections.retention_task(entry), entry["system_label"], num(entry["base"], entry["scale"]),
             num(entry["score"], entry["scale"]), delta_text(entry, entry["scale"], sep=" · ")]
            for entry in sections.primary_retention(report)]
    if not rows:
        return []
    return _table(["task", "system", "base", "system score", "Δ vs base"], rows, "r") + [""]


def _budget(report: dict, labels: dict[str, str]) -> list[str]:
    return _table(*sections.budget_table(report), align="r") + [""]


def _heldout(report: dict, labels: dict[str, str]) -> list[str]:
    return _table(*sections.heldout_table(report), align="r") + [""]


def _cost(report: dict, labels: dict[str, str]) -> list[str]:
    return _table(*sections.cost_table(report), align="r") + [""]


def _signatures(report: dict, labels: dict[str, str]) -> list[str]:
    rows = [[metric, f"`{signature}`", families] for metric, signature, families in sections.signature_rows(report)]
    return _table(["metric", "signature", "families"], rows) + [""] if rows else []


def _notes(report: dict, labels: dict[str, str]) -> list[str]:
    return [f"- {n}" for n in report["notes"]] + [""]


_BODIES: dict[str, Callable[[dict, dict[str, str]], list[str]]] = {
    sections.HEADLINE.anchor: _headline, sections.SYSTEMS.anchor: _systems, sections.SCORES.anchor: _scores,
    sections.DELTAS.anchor: _deltas, sections.RETENTION.anchor: _retention, sections.SECONDARY.anchor: _secondary, sections.BUDGET.anchor: _budget,
    sections.HELDOUT.anchor: _heldout, sections.COST.anchor: _cost,
    sections.SIGNATURES.anchor: _signatures, sections.NOTES.anchor: _notes,
    sections.EXPLORER.anchor: explorer_markdown, sections.CURVES.anchor: lambda report, labels: curves_markdown(report),
}
