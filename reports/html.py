"""report.html: the report dict as one self-contained page (inline CSS, SVG forest plots and heatmaps)."""

from __future__ import annotations

import re
from typing import Callable

from reports import sections
from reports.fmt import (SIGNIFICANCE, delta_notes, delta_title, esc, interval, num, p_text, power_mark,
                         seeds_text, significant, system_labels, table_title)
from reports.curves import curves_html
from reports.explorer import explorer_html
from reports.forest import color_range, forest_svg, units
from reports.sections import LeadPart, Section, SignificanceMark

_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif;
  font-size: 14px; line-height: 1.5; color: #1f2328; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 24px 64px; }
h1 { font-size: 2em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; margin-top: 0; }
h2 { font-size: 1.5em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
p.lead, p.small { color: #59636e; } p.small { font-size: 12px; }
.tw { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d1d9e0; padding: 5px 11px; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; text-align: center; }
td.num { text-align: right; white-space: nowrap; }
td.lbl { text-align: left; white-space: nowrap; }
tr:nth-child(even) td { background: #f6f8fa; }
tr.macro td { font-weight: 600; border-top: 2px solid #9198a1; background: #eef1f4; }
.ci { color: #59636e; font-size: 12px; }
.st { display: block; color: #59636e; font-size: 12px; }
td.pos { background: #dafbe1 !important; } td.neg { background: #ffebe9 !important; }
.sig { font-weight: 700; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
  background: #eff1f3; padding: 2px 5px; border-radius: 4px; }
ul.notes li { color: #59636e; }
ul.verdict li { margin: 4px 0; } p.caveat { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; border-radius: 6px; }
details { margin: 10px 0; } summary { cursor: pointer; font-weight: 600; } .up { color: #9a6700; }
nav { background: #f6f8fa; border: 1px solid #d1d9e0; border-radius: 6px; padding: 8px 16px; margin: 16px 0; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
#item-explorer details.fold summary { font-weight: 400; } #item-explorer .xt { white-space: pre-wrap; }
svg text { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
"""

Row = tuple[list[str], str]  # already-escaped <td> elements, and the <tr>'s class ("" for none)
_CODE = re.compile(r"`([^`]+)`")


def prose(text: str) -> str:
    """Escaped text whose `backticked` spans (commands, options) become <code>, as Markdown shows them."""
    return _CODE.sub(r"<code>\1</code>", esc(text))


def render_html(report: dict) -> str:
    blocks = ["<h1>Comparison report</h1>",
              "<nav>" + "".join(f'<a href="#{s.anchor}">{esc(s.nav)}</a>' for s in sections.shown(report)) + "</nav>"]
    labels = system_labels(report)
    for section in sections.shown(report):
        blocks += _section_blocks(section, report, labels)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>Comparison report: {esc(', '.join(r['name'] for r in report['runs']))}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(blocks) + "\n</main>\n</body>\n</html>\n")


def _markup(part: LeadPart) -> str:
    if isinstance(part, str):
        return prose(part)
    if isinstance(part, SignificanceMark):
        return "highlighted"
    return f"<b>{esc(part.text)}</b>" if part.kind == "strong" else f"<i>{esc(part.text)}</i>"


def _section_blocks(section: Section, report: dict, labels: dict[str, str]) -> list[str]:
    heading = f'<h2 id="{section.anchor}">{esc(section.title)}</h2>'
    if section is sections.NOTES:  # the list follows its heading on the same line, as it always has
        return [heading + '<ul class="notes">' + "".join(f"<li>{prose(n)}</li>" for n in report["notes"]) + "</ul>"]
    blocks = [heading] + ([f'<p class="lead">{prose(section.lead)}</p>'] if section.lead else [])
    body = _BODIES[section.anchor](report, labels)
    blocks += [f'<p class="small">{prose(section.empty)}</p>'] if section.empty and not body else body
    if section.footnote:
        blocks.append(f'<p class="small">{prose(section.footnote)}</p>')
    return blocks


def _table(header: list[str], rows: list[Row]) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join((f'<tr class="{cls}">' if cls else "<tr>") + "".join(cells) + "</tr>" for cells, cls in rows)
    return f'<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _text_table(header: list[str], rows: list[list[str]], labels_first: int = 2) -> str:
    """A table of plain texts: the first `labels_first` columns are labels, the others numbers."""
    return _table(header, [([f'<td class="{"lbl" if i < labels_first else "num"}">{esc(x)}</td>'
                             for i, x in enumerate(row)], "") for row in rows])


def _label_table(header: list[str], rows: list[list[str]]) -> str:
    return _text_table(header, rows, labels_first=len(header))


def td_score(cell: dict | None, scale: float) -> str:
    if not cell:
        return '<td class="num">—</td>'
    ci = interval(cell, scale)
    seeds = seeds_text(cell, scale)
    return (f'<td class="num">{esc(num(cell["score"], scale))}' + (f' <span class="ci">{esc(ci)}</span>' if ci else "")
            + (f'<span class="st">{esc(seeds)}</span>' if seeds else "") + "</td>")


def _delta_main(cell: dict, scale: float) -> tuple[str, str]:
    """The delta's markup and its cell's class: highlighted when significant after correction."""
    main = esc(num(cell["delta"], scale, signed=True))
    cls = "num"
    if significant(cell):
        cls += " pos" if cell["delta"] > 0 else " neg"
        main = f'<span class="sig">{main}</span>'
    mark = power_mark(cell)
    return main + (f'<span class="up" title="underpowered">{mark}</span>' if mark else ""), cls


def td_delta(cell: dict | None, scale: float, notes: bool = True) -> str:
    if not cell or cell.get("delta") is None:
        return '<td class="num">—</td>'
    main, cls = _delta_main(cell, scale)
    ci = interval(cell, scale, signed=True)
    parts = [main + (f' <span class="ci">{esc(ci)}</span>' if ci else "")]
    if notes:
        parts += [f'<span class="st">{esc(note)}</span>' for note in delta_notes(cell, scale)]
    elif cell.get("seeds"):
        parts.append(f'<span class="st">{esc(seeds_text(cell, scale))}</span>')
    return f'<td class="{cls}">' + "".join(parts) + "</td>"


def td_short_delta(cell: dict | None, scale: float) -> str:
    """A folded table's delta: the number, its figures in the tooltip."""
    if not cell or cell.get("delta") is None:
        return '<td class="num">—</td>'
    main, cls = _delta_main(cell, scale)
    tip = " · ".join([interval(cell, scale, signed=True), *delta_notes(cell, scale)]).strip(" ·")
    return f'<td class="{cls}" title="{esc(tip)}">{main}</td>'


def td_short_score(cell: dict | None, scale: float) -> str:
    if not cell:
        return '<td class="num">—</td>'
    return f'<td class="num" title="{esc(interval(cell, scale))}">{esc(num(cell["score"], scale))}</td>'


def _cells_table(table: dict, labels: dict[str, str], td: Callable[[dict | None, float], str]) -> str:
    rows = [([f'<td class="lbl">{esc(label)}</td>'] + [td(cells.get(k), table["scale"]) for k in table["systems"]],
             "macro" if is_macro else "") for label, cells, is_macro in sections.labelled_rows(table)]
    return _table(["language"] + [labels[k] for k in table["systems"]], rows)


def heat_colour(value: float, vmax: float) -> str:
    """Diverging scale: red (negative) - white - blue (positive)."""
    t = max(-1.0, min(1.0, value / vmax)) if vmax > 0 else 0.0
    negative, positive, white = (207, 34, 46), (9, 105, 218), (255, 255, 255)
    end = positive if t >= 0 else negative
    alpha = abs(t) * 0.85
    red, green, blue = (round(white[i] + (end[i] - white[i]) * alpha) for i in range(3))
    return f"#{red:02x}{green:02x}{blue:02x}"


def _heat_cell(x: float, y: float, width: int, height: int, cell: dict | None, scale: float, vmax: float,
               tip_prefix: str) -> str:
    if not cell or cell.get("delta") is None:
        return f'<rect x="{x}" y="{y}" width="{width}" height="{height}" fill="#f6f8fa" stroke="#ffffff"/>'
    value = cell["delta"] * scale
    text = num(cell["delta"], scale, signed=True) + ("*" if significant(cell) else "")
    ink = "#ffffff" if abs(value) / vmax > 0.55 else "#1f2328"  # white on strong colour
    tip = f"{tip_prefix}: Δ {text}, p{p_text(cell.get('p_value'))}, adj p{p_text(cell.get('p_adjusted'))}"
    return (f'<g><title>{esc(tip)}</title><rect x="{x}" y="{y}" width="{width}" height="{height}" '
            f'fill="{heat_colour(value, vmax)}" stroke="#ffffff"/><text x="{x + width / 2:.1f}" '
            f'y="{y + height / 2 + 4:.1f}" font-size="11" text-anchor="middle" fill="{ink}">{esc(text)}</text></g>')


def heatmap_svg(delta: dict, labels: dict[str, str]) -> str:
    """Inline SVG: systems x languages, colour = delta against the reference, * = significant."""
    columns = [(r["lang"], r["cells"]) for r in delta["rows"]] + [("avg", delta["macro"]["cells"])]
    systems = delta["systems"]
    vmax = color_range(delta["metric"])  # fixed per metric, in displayed units: small deltas stay pale
    cell_w, cell_h = 58, 30
    left = 12 + 7 * max([len(labels[k]) for k in systems] + [4])
    top, bottom = 26, 26
    legend = (f"colour: Δ vs {delta['reference_label']} in {units(delta['scale'], delta['metric_label'])} "
              f"(±{num(vmax, 1.0)} and beyond at full colour) · "
              f"* significant after correction (adj p < {SIGNIFICANCE})")
    width = max(left + cell_w * len(columns) + 10, 16 + int(6.3 * len(legend)))
    height = top + cell_h * len(systems) + bottom
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc("delta heatmap " + table_title(delta))}">']
    for j, (lang, _) in enumerate(columns):
        weight = ' font-weight="700"' if lang == "avg" else ""
        parts.append(f'<text x="{left + j * cell_w + cell_w / 2:.1f}" y="{top - 8}" font-size="12" '
                     f'text-anchor="middle" fill="#1f2328"{weight}>{esc(lang)}</text>')
    for i, key in enumerate(systems):
        y = top + i * cell_h
        parts.append(f'<text x="{left - 8}" y="{y + cell_h / 2 + 4:.1f}" font-size="12" text-anchor="end" '
                     f'fill="#1f2328">{esc(labels[key])}</text>')
        parts += [_heat_cell(left + j * cell_w, y, cell_w, cell_h, cells.get(key), delta["scale"], vmax,
                             f"{labels[key]} · {lang}") for j, (lang, cells) in enumerate(columns)]
    parts.append(f'<text x="8" y="{top + cell_h * len(systems) + 18}" font-size="11" fill="#59636e">{esc(legend)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _headline(report: dict, labels: dict[str, str]) -> list[str]:
    if not report["headline"]:
        return []
    header, rows = sections.headline_table(report)
    cells = [([f'<td class="lbl">{esc(c)}</td>' if isinstance(c, str) else td_delta(*c, notes=False) for c in row], "")
             for row in rows]
    sentences = "".join(f"<li>{prose(entry['sentence'])}</li>" for entry in report["headline"])
    return ([f'<p class="lead">{prose(sections.headline_lead(report))}</p>', _table(header, cells),
             f'<ul class="verdict">{sentences}</ul>']
            + [f'<p class="caveat">{prose(c)}</p>' for c in report.get("caveats", [])])


def _systems(report: dict, labels: dict[str, str]) -> list[str]:
    lead = '<p class="lead">' + "".join(_markup(part) for part in sections.cells_lead(report["settings"])) + "</p>"
    return [_label_table(*sections.runs_table(report)), _label_table(*sections.systems_table(report)), lead]


def _folded(folded: sections.Folded, td: Callable[[dict | None, float], str]) -> str:
    rows = [([f'<td class="lbl">{esc(x)}</td>' for x in names] + [td(c, scale) for c, scale in cells],
             "macro" if is_macro else "") for names, cells, is_macro in folded.rows]
    notes = "".join(f'<p class="small">{prose(n)}</p>' for n in folded.notes)
    return (f"<details><summary>{esc(folded.title)}</summary>" + _table(folded.header, rows) + notes + "</details>")


def _secondary(report: dict, labels: dict[str, str]) -> list[str]:
    return ([_folded(f, td_short_score) for f in sections.folded_scores(report, labels)]
            + [_folded(f, td_short_delta) for f in sections.folded_deltas(report, labels)])


def _scores(report: dict, labels: dict[str, str]) -> list[str]:
    blocks = []
    for table in sections.primary(report["tables"]):
        blocks += [f"<h3>{esc(table_title(table))}</h3>", _cells_table(table, labels, td_score)]
        if table["macro"]["excluded"]:
            blocks.append(f'<p class="small">Macro average leaves out: {esc(", ".join(table["macro"]["excluded"]))}.</p>')
        blocks += [f'<p class="small">{prose(n)}</p>' for n in table.get("notes", [])]
    return blocks


def _deltas(report: dict, labels: dict[str, str]) -> list[str]:
    blocks = []
    for delta in sections.primary(report["deltas"]):
        blocks += [f"<h3>{esc(delta_title(delta))}</h3>", f'<div class="tw">{forest_svg(delta, labels)}</div>',
                   f'<div class="tw">{heatmap_svg(delta, labels)}</div>', _cells_table(delta, labels, td_delta)]
    return blocks


def _retention(report: dict, labels: dict[str, str]) -> list[str]:
    rows = [([f'<td class="lbl">{esc(sections.retention_task(entry))}</td>',
              f'<td class="lbl">{esc(entry["system_label"])}</td>',
              f'<td class="num">{esc(num(entry["base"], entry["scale"]))}</td>',
              f'<td class="num">{esc(num(entry["score"], entry["scale"]))}</td>', td_delta(entry, entry["scale"])], "")
            for entry in sections.primary_retention(report)]
    if not rows:
        return []
    return [_table(["task", "system", "base", "system score", "Δ vs base"], rows)]


def _budget(report: dict, labels: dict[str, str]) -> list[str]:
    return [_text_table(*sections.budget_table(report))]


def _heldout(report: dict, labels: dict[str, str]) -> list[str]:
    return [_text_table(*sections.heldout_table(report))]


def _cost(report: dict, labels: dict[str, str]) -> list[str]:
    return [_text_table(*sections.cost_table(report))]


def _signatures(report: dict, labels: dict[str, str]) -> list[str]:
    rows = [([f'<td class="lbl">{esc(metric)}</td>', f'<td class="lbl"><code>{esc(signature)}</code></td>',
              f'<td class="lbl">{esc(families)}</td>'], "") for metric, signature, families in sections.signature_rows(report)]
    return [_table(["metric", "signature", "families"], rows)] if rows else []


_BODIES: dict[str, Callable[[dict, dict[str, str]], list[str]]] = {
    sections.HEADLINE.anchor: _headline, sections.SYSTEMS.anchor: _systems, sections.SCORES.anchor: _scores,
    sections.DELTAS.anchor: _deltas, sections.RETENTION.anchor: _retention, sections.SECONDARY.anchor: _secondary, sections.BUDGET.anchor: _budget,
    sections.HELDOUT.anchor: _heldout, sections.COST.anchor: _cost,
    sections.SIGNATURES.anchor: _signatures,
    sections.EXPLORER.anchor: explorer_html, sections.CURVES.anchor: lambda report, labels: curves_html(report),
}
