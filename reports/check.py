"""Baselines: record a run's scores as a reference file, and check a later run against it.

A baseline file (JSON, one per (suite, model), kept in baselines/):
    {"suite", "model", "trainer", "engine",
     "tolerance": {"acc": 0.0, "bleu": 0.0, "chrf": 0.0},   # absolute points a score may drop
     "cells": {"<variant>/<task>/<metric>": {"score", "n_samples", "sample_hash"}}}
`sample_hash` is the sha256 over the ordered (doc_hash, prediction) pairs: when it differs but
the score is within tolerance the check passes with a note (outputs changed, quality did not).
A metric missing from `tolerance` uses tolerance["default"] if present, else 0.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.runstore import write_json
from reports.load import Run, TaskResult, load_run

FORMAT = "sdrrl-harness baseline v1"
DEFAULT_TOLERANCE = {"acc": 0.0, "bleu": 0.0, "chrf": 0.0}
_EPS = 1e-9


@dataclass
class CheckResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0  # baseline cells looked at

    def summary(self) -> str:
        head = (f"check passed: {self.checked} cells within tolerance" if self.ok
                else f"check FAILED: {len(self.problems)} problem(s) in {self.checked} cells")
        return "\n".join([head] + [f"  FAIL {p}" for p in self.problems] + [f"  note {n}" for n in self.notes])


def sample_hash(samples: list[dict] | None) -> str | None:
    """sha256 over the (doc_hash, prediction) pairs in doc_id order; None without samples."""
    if samples is None:
        return None
    ordered = sorted(samples, key=lambda s: (s.get("doc_id") is None, s.get("doc_id", 0)))
    pairs = [[s.get("doc_hash"), s.get("prediction")] for s in ordered]
    blob = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def _cells(run: Run) -> dict[str, tuple[float, int | None, TaskResult]]:
    out: dict[str, tuple[float, int | None, TaskResult]] = {}
    for variant, tasks in sorted(run.results.items()):
        for task, res in sorted(tasks.items()):
            for metric in res.metric_names():
                value = res.metrics[metric]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                    continue
                out[f"{variant}/{task}/{metric}"] = (float(value), res.n_samples, res)
    return out


def record_baseline(run_dir: Path, out_path: Path, tolerance: dict | None = None) -> dict:
    """Write the run's scores as a baseline file at `out_path`; return what was written."""
    tol = dict(DEFAULT_TOLERANCE if tolerance is None else tolerance)
    for k, v in tol.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise HarnessError(f"bad tolerance for {k!r}: {v!r} (want a number of points >= 0)")
    run = load_run(Path(run_dir))
    hashes: dict[int, str | None] = {}
    cells = {}
    for key, (score, n, res) in _cells(run).items():
        if id(res) not in hashes:
            hashes[id(res)] = sample_hash(res.samples)
        cells[key] = {"score": score, "n_samples": n, "sample_hash": hashes[id(res)]}
    baseline = {
        "format": FORMAT,
        "suite": run.spec.get("suite"),
        "model": run.spec.get("model"),
        "trainer": run.spec.get("trainer"),
        "engine": run.spec.get("engine"),
        "run": run.name,
        "tolerance": {k: float(v) for k, v in tol.items()},
        "cells": cells,
    }
    write_json(Path(out_path), baseline)
    return baseline


def load_baseline(path: Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"baseline file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise HarnessError(f"bad baseline file {path}: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise HarnessError(f"bad baseline file {path}: not a JSON object")
    cells = data.get("cells")
    if not isinstance(cells, dict) or not cells:
        raise HarnessError(f"bad baseline file {path}: no 'cells' object")
    tol = data.get("tolerance", {})
    if not isinstance(tol, dict) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in tol.values()):
        raise HarnessError(f"bad baseline file {path}: 'tolerance' must map metric names to numbers")
    for key, cell in cells.items():
        if key.count("/") < 2:
            raise HarnessError(f"bad baseline file {path}: cell {key!r} is not <variant>/<task>/<metric>")
        if not isinstance(cell, dict) or isinstance(cell.get("score"), bool) \
                or not isinstance(cell.get("score"), (int, float)):
            raise HarnessError(f"bad baseline file {path}: cell {key!r} has no numeric 'score'")
    return data


def _tolerance(tol: dict, metric: str) -> float:
    return float(tol.get(metric, tol.get("default", 0.0)))


def check_run(run_dir: Path, baseline_path: Path) -> CheckResult:
    """Compare a run with a baseline file: fail on a score below baseline - tolerance, a missing cell
    or a changed sample count; higher scores are fine."""
    baseline = load_baseline(baseline_path)
    run = load_run(Path(run_dir))
    tol = baseline.get("tolerance", {})
    have = _cells(run)
    result = CheckResult(ok=True)
    for field_name in ("suite", "model", "trainer", "engine"):
        want, got = baseline.get(field_name), run.spec.get(field_name)
        if want is not None and got is not None and str(want) != str(got):
            result.notes.append(f"baseline was recorded with {field_name} {want!r}, this run has {got!r}")
    hashes: dict[int, str | None] = {}
    for key, cell in baseline["cells"].items():
        result.checked += 1
        metric = key.rsplit("/", 1)[1]
        if key not in have:
            result.problems.append(f"{key}: missing (baseline {cell['score']:.4g})")
            continue
        score, n, res = have[key]
        want_n = cell.get("n_samples")
        if want_n is not None and n is not None and int(want_n) != int(n):
            result.problems.append(f"{key}: n_samples changed {want_n} -> {n}")
        allowed = _tolerance(tol, metric)
        floor = float(cell["score"]) - allowed
        if score < floor - _EPS:
            result.problems.append(f"{key}: {score:.4g} < baseline {cell['score']:.4g} - tolerance {allowed:g} "
                                   f"(drop {cell['score'] - score:.4g})")
            continue
        want_hash = cell.get("sample_hash")
        if want_hash:
            if id(res) not in hashes:
                hashes[id(res)] = sample_hash(res.samples)
            got_hash = hashes[id(res)]
            if got_hash is None:
                result.notes.append(f"{key}: no samples.jsonl to compare outputs with")
            elif got_hash != want_hash:
                result.notes.append(f"{key}: outputs differ from the baseline's; score {score:.4g} "
                                    f"vs baseline {cell['score']:.4g} is within tolerance")
    extra = sorted(set(have) - set(baseline["cells"]))
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        result.notes.append(f"{len(extra)} cell(s) not in the baseline: {shown}")
    result.ok = not result.problems
    return result
