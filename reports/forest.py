"""Pictures of deltas for the HTML report, in the metric's own units.

`forest_svg`: per language (and the macro average), each system's delta against the reference
as a point with its 95% interval, on one horizontal axis in the metric's units (accuracy points,
BLEU points), zero marked. `color_range`: the heatmap's full-colour delta, fixed per metric in
the same units, so a 0.04 BLEU change stays pale instead of filling the scale.
"""

from __future__ import annotations

import math

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


def forest_svg(d: dict, labels: dict[str, str]) -> str:
    """d: one delta table of the report (rows of {label, cells: {system: {delta, low, high}}}, macro)."""
    scale = d["scale"]
    rows = [(r["label"], r["cells"]) for r in d["rows"]] + [("macro avg", d["macro"]["cells"])]
    systems = d["systems"]
    points = [(c["delta"] * scale, (c.get("low") if c.get("low") is not None else c["delta"]) * scale,
               (c.get("high") if c.get("high") is not None else c["delta"]) * scale)
              for _, cells in rows for k in systems if (c := cells.get(k)) and c.get("delta") is not None]
    if not points:
        return ""
    lo = min([0.0] + [p[1] for p in points])
    hi = max([0.0] + [p[2] for p in points])
    pad = (hi - lo) * 0.08 or 1.0
    lo, hi = lo - pad, hi + pad
    left, right, top, band = 150, 30, 30, 14 * max(1, len(systems)) + 10
    plot_w = 460
    height = top + band * len(rows) + 60
    width = left + plot_w + right + 170
    x = lambda v: left + (v - lo) / (hi - lo) * plot_w  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{esc("forest plot of deltas vs " + d["reference_label"])}" class="forest">']
    for t in _nice_ticks(lo, hi):
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 6}" x2="{x(t):.1f}" y2="{top + band * len(rows)}" stroke="#eaeef2"/>'
                   f'<text x="{x(t):.1f}" y="{top + band * len(rows) + 16}" font-size="11" text-anchor="middle" '
                   f'fill="#59636e">{t:+g}</text>')
    out.append(f'<line x1="{x(0):.1f}" y1="{top - 6}" x2="{x(0):.1f}" y2="{top + band * len(rows)}" stroke="#1f2328" '
               f'stroke-width="1.2" class="zero"/>')
    for i, (label, cells) in enumerate(rows):
        y0 = top + i * band
        weight = ' font-weight="700"' if label == "macro avg" else ""
        out.append(f'<text x="{left - 10}" y="{y0 + band / 2 + 4:.1f}" font-size="12" text-anchor="end" '
                   f'fill="#1f2328"{weight}>{esc(label)}</text>')
        for j, k in enumerate(systems):
            c = cells.get(k)
            if not c or c.get("delta") is None:
                continue
            v = c["delta"] * scale
            low = (c["low"] if c.get("low") is not None else c["delta"]) * scale
            high = (c["high"] if c.get("high") is not None else c["delta"]) * scale
            y = y0 + 8 + j * 14
            colour = PALETTE[j % len(PALETTE)]
            tip = f"{labels[k]} · {label}: Δ {v:+.2f} [{low:+.2f}, {high:+.2f}]"
            out.append(f'<g class="pt" data-system="{esc(labels[k])}" data-lang="{esc(label)}" data-delta="{v:.6g}" '
                       f'data-low="{low:.6g}" data-high="{high:.6g}"><title>{esc(tip)}</title>'
                       f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{colour}" stroke-width="2"/>'
                       f'<circle cx="{x(v):.1f}" cy="{y}" r="4" fill="{colour}"/></g>')
    axis_y = top + band * len(rows) + 36
    out.append(f'<text x="{left + plot_w / 2:.0f}" y="{axis_y}" font-size="12" text-anchor="middle" fill="#1f2328">'
               f'Δ {esc(d["metric_label"])} vs {esc(d["reference_label"])}, {esc(units(scale, d["metric_label"]))}; '
               f'bars: 95% interval</text>')
    for j, k in enumerate(systems):
        ly = top + 4 + j * 18
        out.append(f'<circle cx="{left + plot_w + 40}" cy="{ly}" r="4" fill="{PALETTE[j % len(PALETTE)]}"/>'
                   f'<text x="{left + plot_w + 50}" y="{ly + 4}" font-size="11" fill="#1f2328">{esc(labels[k])}</text>')
    out.append("</svg>")
    return "".join(out)
