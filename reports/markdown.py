"""report.md: the report dict as GitHub Markdown."""

from __future__ import annotations

from typing import Callable

from reports import sections
from reports.fmt import (delta_notes, delta_title, interval, num, seeds_text, significant, system_labels,
                         table_title)
from reports.sections import LeadPart, Section, SignificanceMark


def render_markdown(report: dict) -> str:
    lines = ["# Comparison report", ""]
    lines += _table(*sections.runs_table(report))
    lines += ["", "".join(_markup(part) for part in sections.cells_lead(report["settings"])), ""]
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
    main = num(cell["delta"], scale, signed=True)
    if significant(cell):
        main = f"**{main}**"
    return sep.join([f"{main} {interval(cell, scale, signed=True)}".strip(), *delta_notes(cell, scale)])


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


def _systems(report: dict, labels: dict[str, str]) -> list[str]:
    return _table(*sections.systems_table(report)) + [""]


def _scores(report: dict, labels: dict[str, str]) -> list[str]:
    lines = []
    for table, block in zip(report["tables"], _cells_tables(report["tables"], labels, table_title, score_text)):
        lines += block
        if table["macro"]["excluded"]:
            lines += ["", f"_Macro average leaves out: {', '.join(table['macro']['excluded'])}._"]
        lines += [""] + [f"_{n}_" for n in table.get("notes", [])] + [""]
    return lines


def _deltas(report: dict, labels: dict[str, str]) -> list[str]:
    return [line for block in _cells_tables(report["deltas"], labels, delta_title, delta_text) for line in block + [""]]


def _retention(report: dict, labels: dict[str, str]) -> list[str]:
    if not report["english_retention"]:
        return []
    rows = [[sections.retention_task(entry), entry["system_label"], num(entry["base"], entry["scale"]),
             num(entry["score"], entry["scale"]), delta_text(entry, entry["scale"], sep=" · ")]
            for entry in report["english_retention"]]
    return _table(["task", "system", "base", "system score", "Δ vs base"], rows, "r") + [""]


def _budget(report: dict, labels: dict[str, str]) -> list[str]:
    return _table(*sections.budget_table(report), align="r") + [""]


def _cost(report: dict, labels: dict[str, str]) -> list[str]:
    return _table(*sections.cost_table(report), align="r") + [""]


def _signatures(report: dict, labels: dict[str, str]) -> list[str]:
    rows = [[metric, f"`{signature}`", families] for metric, signature, families in sections.signature_rows(report)]
    return _table(["metric", "signature", "families"], rows) + [""] if rows else []


def _notes(report: dict, labels: dict[str, str]) -> list[str]:
    return [f"- {n}" for n in report["notes"]] + [""]


_BODIES: dict[str, Callable[[dict, dict[str, str]], list[str]]] = {
    sections.SYSTEMS.anchor: _systems, sections.SCORES.anchor: _scores, sections.DELTAS.anchor: _deltas,
    sections.RETENTION.anchor: _retention, sections.BUDGET.anchor: _budget, sections.COST.anchor: _cost,
    sections.SIGNATURES.anchor: _signatures, sections.NOTES.anchor: _notes,
}
