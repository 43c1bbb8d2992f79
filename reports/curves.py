"""Training curves for the report: each trained run's loss per optimizer step and its held-out loss.

`training_curves(runs)` reads what the run folders already hold (the train stage's per-step losses in
manifest.json, the base and adapter held-out losses in eval/heldout.json) into report.json's "curves";
`curve_svg(curve)` draws one as a small inline SVG, the same way reports/forest.py draws its plots: the
training loss as a line over steps, the held-out loss of the base model (before training, at step 0) and
of the adapter (at the last step) as two marked points joined by a dashed line.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.runstore import RunPaths, read_json
from reports.fmt import esc
from reports.forest import PALETTE, _nice_ticks
from reports.load import Run

WIDTH, HEIGHT = 360, 190
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 22, 40


def _heldout(run_dir: Path) -> dict[str, float] | None:
    """The token-weighted mean held-out loss of base and adapter over the languages; None without the file."""
    path = RunPaths(run_dir).heldout_scores
    if not path.exists():
        return None
    langs = (read_json(path).get("langs") or {}).values()
    tokens = sum(v["tokens"] for v in langs)
    if not tokens:
        return None
    return {variant: round(sum(v[f"{variant}_loss"] * v["tokens"] for v in langs) / tokens, 6) for variant in ("base", "adapter")}


def training_curves(runs: list[Run]) -> list[dict]:
    """Per trained run with recorded losses: {run, trainer, seed, loss: [per step], heldout: {base, adapter} | None}."""
    curves = []
    for run in runs:
        losses = (run.stages.get("train") or {}).get("losses")
        if not losses:
            continue
        curves.append({"run": run.name, "trainer": run.trainer, "seed": run.spec.get("seed"),
                       "loss": [float(x) for x in losses], "heldout": _heldout(run.path)})
    return curves


def curve_svg(curve: dict, colour_index: int = 0) -> str:
    """One run's training loss over steps, with its held-out loss before (base) and after (adapter) training."""
    losses = curve["loss"]
    heldout = curve.get("heldout") or {}
    values = losses + [v for v in heldout.values() if v is not None]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or 0.5
    lo, hi = lo - pad, hi + pad
    steps = max(len(losses), 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(step: float) -> float:
        return LEFT + step / steps * plot_w

    def y(value: float) -> float:
        return TOP + (hi - value) / (hi - lo) * plot_h

    colour = PALETTE[colour_index % len(PALETTE)]
    title = f"{curve['run']} ({curve['trainer']}, seed {curve['seed']})"
    out = [f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="curve" '
           f'data-run="{esc(curve["run"])}" aria-label="{esc("training loss of " + title)}">',
           f'<text x="{LEFT}" y="14" font-size="12" fill="#1f2328">{esc(title)}</text>']
    for t in _nice_ticks(lo, hi, 4):
        out.append(f'<line x1="{LEFT}" y1="{y(t):.1f}" x2="{LEFT + plot_w}" y2="{y(t):.1f}" stroke="#eaeef2"/>'
                   f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" font-size="10" text-anchor="end" fill="#59636e">{t:g}</text>')
    for t in _nice_ticks(0, steps, 4):
        out.append(f'<text x="{x(t):.1f}" y="{TOP + plot_h + 14}" font-size="10" text-anchor="middle" fill="#59636e">{t:g}</text>')
    points = " ".join(f"{x(i + 1):.1f},{y(v):.1f}" for i, v in enumerate(losses))
    out.append(f'<polyline class="train-loss" points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
    if len(losses) == 1:
        out.append(f'<circle cx="{x(1):.1f}" cy="{y(losses[0]):.1f}" r="2.5" fill="{colour}"/>')
    if heldout.get("base") is not None and heldout.get("adapter") is not None:
        bx, by, ax, ay = x(0), y(heldout["base"]), x(steps), y(heldout["adapter"])
        out.append(f'<g class="heldout" data-base="{heldout["base"]:.6g}" data-adapter="{heldout["adapter"]:.6g}">'
                   f'<title>held-out loss: base {heldout["base"]:.4f}, adapter {heldout["adapter"]:.4f}</title>'
                   f'<line x1="{bx:.1f}" y1="{by:.1f}" x2="{ax:.1f}" y2="{ay:.1f}" stroke="#1f2328" stroke-dasharray="4 3"/>'
                   f'<rect x="{bx - 3:.1f}" y="{by - 3:.1f}" width="6" height="6" fill="#1f2328"/>'
                   f'<rect x="{ax - 3:.1f}" y="{ay - 3:.1f}" width="6" height="6" fill="#1f2328"/></g>')
    out.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 8}" font-size="11" text-anchor="middle" fill="#1f2328">'
               f'optimizer step; line: training loss, squares: held-out loss (base, adapter)</text>')
    out.append("</svg>")
    return "".join(out)


def curves_html(report: dict) -> list[str]:
    """The report's curves as small multiples, one plot per trained run."""
    curves = report.get("curves") or []
    return [f'<div class="tw">{"".join(curve_svg(c, i) for i, c in enumerate(curves))}</div>'] if curves else []


def curves_markdown(report: dict) -> list[str]:
    """Markdown has no plots: each run's first and final training loss and its held-out losses."""
    curves = report.get("curves") or []
    if not curves:
        return []
    lines = ["| run | trainer | steps | first loss | final loss | held-out base | held-out adapter |",
             "|---|---|--:|--:|--:|--:|--:|"]
    for c in curves:
        h = c.get("heldout") or {}
        held = [f"{h[v]:.4f}" if h.get(v) is not None else "—" for v in ("base", "adapter")]
        lines.append(f"| {c['run']} | {c['trainer']} | {len(c['loss'])} | {c['loss'][0]:.4f} | {c['loss'][-1]:.4f} | "
                     f"{held[0]} | {held[1]} |")
    return lines + ["", "_The loss per step is plotted in report.html and listed in report.json (\"curves\")._", ""]
