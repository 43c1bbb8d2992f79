"""Comparison report over one or more run folders: report.md (GitHub), report.html, report.json.

The numbers are computed once into a plain dict (reports/compute.py, what report.json holds);
reports/markdown.py and reports/html.py are two renderings of that dict.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.core.errors import HarnessError
from harness.services.heldout import heldout_rows
from harness.core.runstore import write_json, write_text
from harness.evaluation.contextlen import overlong_line
from reports import stats
from reports.compute import compute_report
from reports.html import render_html
from reports.load import load_runs
from reports.markdown import render_markdown
from reports.sections import shown


def build_report(run_dirs: list[Path], out_dir: Path, n_resamples: int = stats.DEFAULT_RESAMPLES,
                 seed: int = 0, min_effect: dict[str, float] | None = None, missing: list[str] | None = None) -> dict:
    """Compare the runs in `run_dirs`; write out_dir/report.{md,html,json}; return the report dict.
    `min_effect`: per metric, the difference below which a comparison counts as underpowered
    (reports.power; default its DEFAULT_MIN_EFFECT). `missing`: planned runs that did not finish."""
    if n_resamples < 1:
        raise HarnessError(f"n_resamples must be at least 1, got {n_resamples}")
    runs = load_runs([Path(d) for d in run_dirs])
    report = compute_report(runs, n_resamples=n_resamples, seed=seed, min_effect=min_effect,
                            heldout=heldout_rows([Path(d) for d in run_dirs]))
    if missing:  # a comparison's members that did not finish: named, never compared silently without them
        report["missing_runs"] = list(missing)
        report["notes"].insert(0, f"Incomplete comparison: {len(missing)} planned run(s) did not finish and are not in "
                                  f"this report: {', '.join(missing)}.")
    unfinished = [run.unfinished for run in runs if run.unfinished]
    report["unfinished"] = unfinished
    report["notes"] = unfinished + _overlong_notes(runs) + report["notes"]  # first: every number below depends on them
    report["sections"] = [s.title for s in shown(report)]  # Notes is shown when the lines above added some
    out_dir = Path(out_dir)
    for run in report["runs"]:  # no path of this machine in a report: run folders relative to the report's
        run["path"] = os.path.relpath(Path(run["path"]).resolve(), out_dir.resolve())
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", render_markdown(report))
    write_text(out_dir / "report.html", render_html(report))
    return report


def _overlong_notes(runs: list) -> list[str]:
    """Tasks whose items did not fit the engine's context window (harness.evaluation.contextlen)."""
    notes = []
    for run in runs:
        for variant, tasks in sorted(run.results.items()):
            for name, result in sorted(tasks.items()):
                n = result.scores.get("overlong_items")
                if isinstance(n, int) and n > 0:
                    window = run.spec.get("max_model_len", "?")
                    notes.append(f"run {run.name}, {variant}: " + overlong_line(name, n, result.n_samples or n, window))
    return notes
