"""Baselines: record a run's cells (reports/cells.py) with their measured noise; check a later run.

A baseline file (JSON, one per (suite, model, trainer), kept in baselines/):
    {"format", "suite", "model", "trainer", "engine", "run", "command",
     "noise": {"runs": [...], "spread": {kind: largest max-min over the runs}, "worst_cell": {kind: key},
               "hash_changes": items whose output hash differed between the runs},
     "tolerance_rule": {"multiple", "floor": {kind: ...}, "overrides": {kind: ...}, "heldout_margin"},
     "tolerance": {kind: allowed |value - baseline|},
     "cells": {key: {"kind", "value", ["n_samples"], ["min"]}}}

Tolerance of a kind = max(multiple x measured spread, floor), unless set by hand (overrides). The
check fails on a move in EITHER direction beyond tolerance: on fixed seed and data an unexplained
improvement is a change as much as a drop. It also fails on a missing cell, a changed item count,
a changed output hash (only when the noise runs never saw one change), and a held-out loss drop
below its recorded minimum (`heldout_margin` x the recorded drop: training must still take).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import HarnessError, shown
from harness.core.runstore import write_json
from reports.cells import HASH_KIND, Cell, run_cells

FORMAT = "sdrrl-harness baseline v2"
DEFAULT_MULTIPLE = 3.0  # our default: tolerance = 3 x the largest spread seen over the noise reruns
# Floors for a kind whose noise measured exactly zero (deterministic on this machine). Our defaults:
# any flipped item moves an accuracy; log-likelihoods are written rounded to 1e-6, and vLLM and HF
# agree to ~3e-5 (README); losses and chrF are compared far below any real change.
FLOORS = {"gold_ll": 1e-3, "chosen_ll": 1e-3, "item_chrf": 0.01, "bleu": 0.01, "chrf": 0.01,
          "heldout_loss": 1e-4, "heldout_drop": 1e-4, "train_loss": 1e-4}
DEFAULT_FLOOR = 1e-6
HELDOUT_MARGIN = 0.5  # our default: the adapter must keep at least half of the recorded held-out loss drop
_EPS = 1e-12
IDENTITY = ("suite", "model", "trainer")  # what a baseline is of; not the engine: the engines agree (README)


@dataclass
class Move:
    """One cell outside its tolerance (or changed, for --update)."""

    key: str
    value: float | str | None  # None: missing in the run
    baseline: float | str | None
    tolerance: float | None
    why: str = ""

    @property
    def deviation(self) -> float | None:
        if isinstance(self.value, (int, float)) and isinstance(self.baseline, (int, float)):
            return float(self.value) - float(self.baseline)
        return None

    @property
    def units(self) -> float | None:
        """|deviation| in tolerance units; None for hashes and missing cells."""
        d = self.deviation
        return None if d is None or not self.tolerance else abs(d) / self.tolerance


@dataclass
class CheckResult:
    ok: bool
    moves: list[Move] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0


def _fmt(v: float | str | None) -> str:
    if v is None:
        return "missing"
    if isinstance(v, str):
        return v[:12]
    return f"{v:.6g}"


def moves_table(moves: list[Move], limit: int = 60, names: tuple[str, str] = ("value", "baseline")) -> str:
    """Plain-text table: cell, value, baseline, deviation, tolerance, |deviation|/tolerance, why."""
    header = ("cell", *names, "deviation", "tolerance", "x tol", "why")
    rows = [(m.key, _fmt(m.value), _fmt(m.baseline), "" if m.deviation is None else f"{m.deviation:+.4g}",
             "" if m.tolerance is None else f"{m.tolerance:.3g}", "" if m.units is None else f"{m.units:.1f}", m.why)
            for m in sorted(moves, key=lambda m: -(m.units if m.units is not None else float("inf")))[:limit]]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    if len(moves) > limit:
        lines.append(f"... and {len(moves) - limit} more")
    groups: dict[str, int] = {}
    for m in moves:
        prefix = "/".join(m.key.split("/")[:2])
        groups[prefix] = groups.get(prefix, 0) + 1
    lines.append("moved cells by group: " + ", ".join(f"{g} {n}" for g, n in sorted(groups.items())))
    return "\n".join(lines)


# --------------------------------------------------------------------------- recording


def measure_noise(runs: list[tuple[str, str | None, dict[str, Cell]]]) -> dict:
    """Spread per kind over reruns of one command: the largest max-min of a cell present in all of them."""
    spread: dict[str, float] = {}
    worst: dict[str, str] = {}
    hash_changes = 0
    common = set.intersection(*(set(cells) for _, _, cells in runs))
    for key in sorted(common):
        values = [cells[key].value for _, _, cells in runs]
        kind = runs[0][2][key].kind
        if kind == HASH_KIND:
            hash_changes += len(set(values)) > 1
            continue
        width = max(values) - min(values)
        spread.setdefault(kind, 0.0)
        if width > spread[kind]:  # worst_cell: only where some cell moved at all
            spread[kind], worst[kind] = round(width, 9), key
    return {"runs": [{"run": name, "device": device} for name, device, _ in runs], "n_runs": len(runs),
            "spread": spread, "worst_cell": worst, "hash_changes": hash_changes}


def tolerances(noise: dict, kinds: set[str], multiple: float, overrides: dict[str, float]) -> dict[str, float]:
    tol = {}
    for kind in sorted(kinds - {HASH_KIND}):
        measured = multiple * noise["spread"].get(kind, 0.0)
        tol[kind] = float(overrides.get(kind, max(measured, FLOORS.get(kind, DEFAULT_FLOOR))))
    return tol


def _finite(value: object, low: float = 0.0, low_allowed: bool = True) -> bool:
    """A real number (not a bool, NaN or infinity) at or above `low` (above it, when not `low_allowed`).
    A NaN or infinite tolerance makes every comparison pass; a negative one, every comparison fail."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    return value >= low if low_allowed else value > low


def _check_overrides(tolerance: dict | None) -> dict[str, float]:
    for k, v in (tolerance or {}).items():
        if not _finite(v):
            raise HarnessError(f"bad tolerance for {k!r}: {v!r} (want a finite number >= 0)")
    return {k: float(v) for k, v in (tolerance or {}).items()}


def _cell_json(cell: Cell, tol: dict[str, float]) -> dict:
    out: dict = {"kind": cell.kind, "value": cell.value}
    if cell.n_samples is not None:
        out["n_samples"] = cell.n_samples
    if cell.kind == "heldout_drop" and isinstance(cell.value, float) and cell.value > 0:
        out["min"] = round(HELDOUT_MARGIN * cell.value, 6)
    return out


def record_baseline(run_dir: Path, out_path: Path, noise_runs: list[Path] = (), multiple: float = DEFAULT_MULTIPLE,
                    tolerance: dict | None = None, command: str | None = None) -> dict:
    """Write `run_dir`'s cells as a baseline at `out_path`, tolerances from the spread over
    `run_dir` and `noise_runs` (reruns of the same command); return what was written."""
    overrides = _check_overrides(tolerance)
    if not _finite(multiple, low_allowed=False):
        raise HarnessError(f"bad value for --noise-multiple: {multiple!r}; expected a finite number > 0 (our default {DEFAULT_MULTIPLE:g})")
    run, cells = run_cells(Path(run_dir))
    loaded = [(str(run_dir), run.stages.get("train", {}).get("device"), cells)]
    for path in noise_runs:
        other, other_cells = run_cells(Path(path))
        if other.spec.get("trainer_config") != run.spec.get("trainer_config") or other.spec.get("model") != run.spec.get("model"):
            raise HarnessError(f"noise run {str(path)!r} was not run with the same settings as {str(run_dir)!r}")
        loaded.append((str(path), other.stages.get("train", {}).get("device"), other_cells))
    noise = measure_noise(loaded)
    tol = tolerances(noise, {c.kind for c in cells.values()}, float(multiple), overrides)
    baseline = {
        "format": FORMAT, **{k: run.spec.get(k) for k in ("suite", "model", "trainer", "engine")},
        "run": run.name, "command": command, "noise": noise,
        "tolerance_rule": {"multiple": float(multiple), "floor": {**FLOORS, "default": DEFAULT_FLOOR},
                           "overrides": overrides, "heldout_margin": HELDOUT_MARGIN},
        "tolerance": tol,
        "cells": {key: _cell_json(cell, tol) for key, cell in sorted(cells.items())},
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
    if data.get("format") != FORMAT:
        raise HarnessError(f"bad baseline file {path}: format {data.get('format')!r}, want {FORMAT!r} "
                           "(re-record it with harness baseline)")
    cells = data.get("cells")
    if not isinstance(cells, dict) or not cells:
        raise HarnessError(f"bad baseline file {path}: no 'cells' object")
    tol = data.get("tolerance", {})
    if not isinstance(tol, dict):
        raise HarnessError(f"bad baseline file {path}: 'tolerance' must map cell kinds to numbers")
    for kind, value in tol.items():
        if not _finite(value):
            raise HarnessError(f"bad baseline file {path}: tolerance of {kind!r} is {shown(value)}; expected a finite number >= 0")
    for key, cell in cells.items():
        if key.count("/") < 2:
            raise HarnessError(f"bad baseline file {path}: cell {key!r} is not <variant>/<task>/<metric> or longer")
        if not isinstance(cell, dict) or not isinstance(cell.get("kind"), str) or "value" not in cell:
            raise HarnessError(f"bad baseline file {path}: cell {key!r} needs 'kind' and 'value'")
        if cell["kind"] == HASH_KIND:
            if not isinstance(cell["value"], str):
                raise HarnessError(f"bad baseline file {path}: cell {key!r} has value {shown(cell['value'])}; expected an output hash (a string)")
            continue
        if not _finite(cell["value"], low=-math.inf):
            raise HarnessError(f"bad baseline file {path}: cell {key!r} has value {shown(cell['value'])}; expected a finite number")
        if cell["kind"] not in tol:
            raise HarnessError(f"bad baseline file {path}: no tolerance for kind {cell['kind']!r} (cell {key!r})")
        if cell.get("n_samples") is not None and (isinstance(cell["n_samples"], bool) or not isinstance(cell["n_samples"], int) or cell["n_samples"] < 0):
            raise HarnessError(f"bad baseline file {path}: cell {key!r} has n_samples {shown(cell['n_samples'])}; expected an integer >= 0")
        if cell.get("min") is not None and not _finite(cell["min"], low=-math.inf):
            raise HarnessError(f"bad baseline file {path}: cell {key!r} has min {shown(cell['min'])}; expected a finite number")
    _check_rule(data, path)
    return data


def _check_rule(data: dict, path: Path) -> None:
    """What `check --update` computes new tolerances from: the rule's multiple and the measured spread."""
    rule, noise = data.get("tolerance_rule"), data.get("noise")
    if rule is not None:
        if not isinstance(rule, dict) or not _finite(rule.get("multiple"), low_allowed=False):
            shown_multiple = shown(rule.get("multiple")) if isinstance(rule, dict) else shown(rule)
            raise HarnessError(f"bad baseline file {path}: tolerance_rule multiple is {shown_multiple}; expected a finite number > 0")
        overrides = rule.get("overrides") or {}
        bad = [k for k, v in overrides.items() if not _finite(v)] if isinstance(overrides, dict) else ["(not an object)"]
        if bad:
            raise HarnessError(f"bad baseline file {path}: tolerance_rule overrides {', '.join(map(repr, bad))}: expected finite numbers >= 0")
    if noise is not None:
        spread = noise.get("spread") if isinstance(noise, dict) else None
        if not isinstance(spread, dict) or any(not _finite(v) for v in spread.values()):
            raise HarnessError(f"bad baseline file {path}: noise spread must map cell kinds to finite numbers >= 0")
        if not isinstance(noise.get("hash_changes", 0), int) or isinstance(noise.get("hash_changes"), bool):
            raise HarnessError(f"bad baseline file {path}: noise hash_changes is {shown(noise.get('hash_changes'))}; expected an integer")


# --------------------------------------------------------------------------- checking


def check_same_kind(baseline: dict, spec: dict, baseline_path: Path, run_dir: Path) -> None:
    """A baseline holds one (suite, model, trainer)'s cells: against another run's they say nothing
    (cells of the other suite read as missing, the rest are another model's scores)."""
    wrong = [(name, baseline.get(name), spec.get(name)) for name in IDENTITY
             if baseline.get(name) is not None and spec.get(name) is not None and str(baseline[name]) != str(spec[name])]
    if wrong:
        raise HarnessError(f"baseline {str(baseline_path)!r} was recorded for {', '.join(f'{n} {w!r}' for n, w, _ in wrong)}; "
                           f"run {str(run_dir)!r} has {', '.join(f'{n} {g!r}' for n, _, g in wrong)}: check it against "
                           "its own baseline, or record one (harness baseline)")


def _compare(key: str, want: dict, got: Cell | None, tol: dict, strict_hash: bool, result: CheckResult) -> None:
    kind = want["kind"]
    if got is None:
        result.moves.append(Move(key, None, want["value"], tol.get(kind), "missing"))
        return
    if kind == HASH_KIND:
        if got.value != want["value"]:
            if strict_hash:
                result.moves.append(Move(key, got.value, want["value"], None, "output changed"))
            else:
                result.notes.append(f"{key}: output changed (output hashes also changed between the noise runs)")
        return
    allowed = float(tol[kind])
    if want.get("n_samples") is not None and got.n_samples is not None and int(want["n_samples"]) != int(got.n_samples):
        result.problems.append(f"{key}: n_samples changed {want['n_samples']} -> {got.n_samples}")
    if abs(float(got.value) - float(want["value"])) > allowed + _EPS:
        result.moves.append(Move(key, got.value, want["value"], allowed, "moved beyond tolerance"))
    elif want.get("min") is not None and float(got.value) < float(want["min"]):
        result.moves.append(Move(key, got.value, want["value"], allowed, f"below the required {want['min']:.4g}"))


def check_run(run_dir: Path, baseline_path: Path) -> CheckResult:
    """Compare a run with a baseline file: every cell must stay within its kind's tolerance, either way."""
    baseline = load_baseline(baseline_path)
    run, have = run_cells(Path(run_dir))
    tol = baseline["tolerance"]
    strict_hash = baseline.get("noise", {}).get("hash_changes", 0) == 0
    check_same_kind(baseline, run.spec, Path(baseline_path), Path(run_dir))
    result = CheckResult(ok=True)
    want, got = baseline.get("engine"), run.spec.get("engine")
    if want is not None and got is not None and str(want) != str(got):  # the engines agree (README): a note only
        result.notes.append(f"baseline was recorded with engine {want!r}, this run has {got!r}")
    for key, want in baseline["cells"].items():
        result.checked += 1
        _compare(key, want, have.get(key), tol, strict_hash, result)
    extra = sorted(set(have) - set(baseline["cells"]))
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        result.notes.append(f"{len(extra)} cell(s) not in the baseline: {shown}")
    result.ok = not result.moves and not result.problems
    return result


def update_baseline(run_dir: Path, baseline_path: Path) -> list[Move]:
    """Rewrite the baseline's cells from `run_dir` on purpose, keeping its noise and tolerance rule;
    return every cell whose value changed (old -> new)."""
    old = load_baseline(baseline_path)
    missing = [name for name in ("noise", "tolerance_rule") if not isinstance(old.get(name), dict)]
    if missing:
        raise HarnessError(f"baseline file {baseline_path} has no {' or '.join(map(repr, missing))}, which --update keeps; "
                           "record it again with harness baseline")
    run, have = run_cells(Path(run_dir))
    check_same_kind(old, run.spec, Path(baseline_path), Path(run_dir))
    changed = [Move(k, have[k].value if k in have else None, c["value"], old["tolerance"].get(c["kind"]), "updated")
               for k, c in old["cells"].items() if k not in have or have[k].value != c["value"]]
    changed += [Move(k, have[k].value, None, old["tolerance"].get(have[k].kind), "new cell")
                for k in sorted(set(have) - set(old["cells"]))]
    tol = {**old["tolerance"], **tolerances(old["noise"], {c.kind for c in have.values()} - set(old["tolerance"]),
                                             old["tolerance_rule"]["multiple"], old["tolerance_rule"].get("overrides", {}))}
    new = {**old, "run": Path(run_dir).name, "tolerance": tol,
           "cells": {key: _cell_json(cell, tol) for key, cell in sorted(have.items())}}
    write_json(Path(baseline_path), new)
    return changed
