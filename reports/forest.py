"""Pictures of deltas for the HTML report, in the metric's own units.

`forest_svg`: per language (and the macro average), each system's delta against the reference
as a point with its 95% interval, on one horizontal axis in the metric's units (accuracy points,
BLEU points), zero marked. `color_range`: the heatmap's full-colour delta, fixed per metric in
the same units, so a 0.04 BLEU change stays pale instead of filling the scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reports.fmt import esc

# Deltas (in displayed units) shown at full colour in the heatmap; others scale linearly.
FULL_COLOUR = {"acc": 10.0, "acc_norm": 10.0, "bleu": 5.0, "chrf": 5.0, "comet": 5.0}
DEFAULT_FULL_COLOUR = 5.0
PALETTE = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700", "#1b7c83", "#bc4c00", "#57606a")


def color_range(metric: str) -> float:
    return FULL_COLOUR.get(metric, DEFAULT_FULL_COLOUR)


def units(scale: float, metric_label: str) -> str:
    return "points (%)" if scale == 100.0 else f"{metric_label} points"


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    step = 10 ** math.floor(math.log10(span / n)) if span > 0 else 1.0
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= n:
            step *= mult
            break
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


@dataclass(frozen=True)
class _Axis:
    """The horizontal delta axis: [lo, hi] in displayed units drawn over `width` pixels from `left`."""

    lo: float
    hi: float
    left: int
    width: int

    def x(self, value: float) -> float:
        return self.left + (value - self.lo) / (self.hi - self.lo) * self.width


def _span(cell: dict, scale: float) -> tuple[float, float, float]:
    """(delta, low, high) in displayed units; a delta without an interval spans only itself."""
    low = cell["low"] if cell.get("low") is not None else cell["delta"]
    high = cell["high"] if cell.get("high") is not None else cell["delta"]
    return cell["delta"] * scale, low * scale, high * scale


def forest_svg(delta: dict, labels: dict[str, str]) -> str:
    """The forest plot of one delta table of the report (rows of {label, cells: {system: {delta, low, high}}})."""
    scale = delta["scale"]
    rows = [(r["label"], r["cells"]) for r in delta["rows"]] + [("macro avg", delta["macro"]["cells"])]
    systems = delta["systems"]
    spans = [_span(cell, scale) for _, cells in rows for k in systems
             if (cell := cells.get(k)) and cell.get("delta") is not None]
    if not spans:
        return ""
    lo = min([0.0] + [s[1] for s in spans])
    hi = max([0.0] + [s[2] for s in spans])
    pad = (hi - lo) * 0.08 or 1.0
    axis = _Axis(lo - pad, hi + pad, left=150, width=460)
    top, band = 30, 14 * max(1, len(systems)) + 10
    bottom = top + band * len(rows)
    width, height = axis.left + axis.width + 30 + 170, bottom + 60
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{esc("forest plot of deltas vs " + delta["reference_label"])}" class="forest">']
    out += _grid(axis, top, bottom)
    for i, (label, cells) in enumerate(rows):
        out += _row(axis, top + i * band, band, label, [(labels[k], cells.get(k)) for k in systems], scale)
    out.append(f'<text x="{axis.left + axis.width / 2:.0f}" y="{bottom + 36}" font-size="12" text-anchor="middle" '
               f'fill="#1f2328">Δ {esc(delta["metric_label"])} vs {esc(delta["reference_label"])}, '
               f'{esc(units(scale, delta["metric_label"]))}; bars: 95% interval</text>')
    for j, k in enumerate(systems):
        legend_y, legend_x = top + 4 + j * 18, axis.left + axis.width + 40
        out.append(f'<circle cx="{legend_x}" cy="{legend_y}" r="4" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{legend_x + 10}" y="{legend_y + 4}" font-size="11" fill="#1f2328">{esc(labels[k])}</text>')
    out.append("</svg>")
    return "".join(out)


def _grid(axis: _Axis, top: int, bottom: int) -> list[str]:
    """Tick lines with their values under the plot, and the zero line."""
    out = [f'<line x1="{axis.x(t):.1f}" y1="{top - 6}" x2="{axis.x(t):.1f}" y2="{bottom}" stroke="#eaeef2"/>'
           f'<text x="{axis.x(t):.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle" '
           f'fill="#59636e">{t:+g}</text>' for t in _nice_ticks(axis.lo, axis.hi)]
    out.append(f'<line x1="{axis.x(0):.1f}" y1="{top - 6}" x2="{axis.x(0):.1f}" y2="{bottom}" stroke="#1f2328" '
               f'stroke-width="1.2" class="zero"/>')
    return out


def _row(axis: _Axis, y0: int, band: int, label: str, cells: list[tuple[str, dict | None]], scale: float) -> list[str]:
    """One language: its label, and each system's delta as a point on its interval bar."""
    weight = ' font-weight="700"' if label == "macro avg" else ""
    out = [f'<text x="{axis.left - 10}" y="{y0 + band / 2 + 4:.1f}" font-size="12" text-anchor="end" '
           f'fill="#1f2328"{weight}>{esc(label)}</text>']
    for j, (system, cell) in enumerate(cells):
        if not cell or cell.get("delta") is None:
            continue
        value, low, high = _span(cell, scale)
        y = y0 + 8 + j * 14
        colour = PALETTE[j % len(PALETTE)]
        tip = f"{system} · {label}: Δ {value:+.2f} [{low:+.2f}, {high:+.2f}]"
        out.append(f'<g class="pt" data-system="{esc(system)}" data-lang="{esc(label)}" data-delta="{value:.6g}" '
                   f'data-low="{low:.6g}" data-high="{high:.6g}"><title>{esc(tip)}</title>'
                   f'<line x1="{axis.x(low):.1f}" y1="{y}" x2="{axis.x(high):.1f}" y2="{y}" stroke="{colour}" '
                   f'stroke-width="2"/><circle cx="{axis.x(value):.1f}" cy="{y}" r="4" fill="{colour}"/></g>')
    return out
