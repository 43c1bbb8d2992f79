"""Read run folders (runs/<name>/) into plain objects the report and the check work on.

A run folder (laid out by harness.core.runstore.RunPaths) holds spec.yaml, manifest.json and
eval/<variant>/<task>/{scores.json,samples.jsonl}, where variant is "base" (the untouched base
model) or "adapter" (the run's trained adapter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import HarnessError
from harness.core.runstore import RunPaths, read_json, task_samples, task_scores
from harness.evaluation.evalcache import entry_damage


@dataclass
class TaskResult:
    """One evaluated task for one variant of one run."""

    task: str
    variant: str
    family: str
    lang: str
    kind: str
    primary_metric: str
    metrics: dict[str, float]
    n_samples: int | None
    signatures: dict[str, str]
    metadata: dict[str, Any]
    scores: dict[str, Any]  # the whole scores.json
    path: Path  # eval/<variant>/<task>/
    samples: list[dict] | None = None  # samples.jsonl, None when the file is missing

    @property
    def direction(self) -> str | None:
        return (self.metadata or {}).get("direction")

    def metric_names(self) -> list[str]:
        """Score metrics (not their *_stderr companions), primary metric first."""
        names = [k for k, v in self.metrics.items() if not k.endswith("_stderr") and isinstance(v, (int, float))]
        names.sort(key=lambda k: (k != self.primary_metric,))
        return names

    def item_values(self, metric: str) -> list[float] | None:
        """Per-item values of a mean metric, in sample order; None when the samples do not carry it."""
        if not self.samples:
            return None
        out = []
        for s in self.samples:
            v = (s.get("metrics") or {}).get(metric)
            if v is None:
                return None
            out.append(float(v))
        return out


@dataclass
class Run:
    name: str
    path: Path
    spec: dict[str, Any]
    stages: dict[str, dict]  # manifest.json "stages"
    results: dict[str, dict[str, TaskResult]] = field(default_factory=dict)  # variant -> task -> result

    @property
    def trainer(self) -> str:
        return str(self.spec.get("trainer", "?"))

    @property
    def model(self) -> str:
        return str(self.spec.get("model", "?"))

    def variant(self, name: str) -> dict[str, TaskResult]:
        return self.results.get(name, {})

    @property
    def unfinished(self) -> str | None:
        """Why this run's evaluation is not whole (stopped inside it, or partly redone), in words; None when it is."""
        done = self.stages.get("evaluate")
        found = ", ".join(f"{len(tasks)} {variant}" for variant, tasks in sorted(self.results.items()))
        if not isinstance(done, dict):
            return f"run {self.name} is unfinished: its evaluate stage did not finish (task results found: {found})"
        want = done.get("tasks")
        short = [v for v in done.get("variants") or [] if isinstance(want, int) and len(self.variant(v)) < want]
        if short:
            return (f"run {self.name} is unfinished: its evaluate stage recorded {want} tasks per variant, "
                    f"found {found}")
        return None


def _read_json(path: Path, what: str) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read {what} {path}: {exc}") from None


def _read_samples(path: Path) -> list[dict] | None:
    if not path.exists():
        return None
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    rows.append(json.loads(line))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"cannot read samples {path} (line {lineno}): {exc}") from None
    return rows


def load_task(task_dir: Path, variant: str, with_samples: bool = True) -> TaskResult:
    scores_path = task_scores(task_dir)
    s = _read_json(scores_path, "scores")
    if not isinstance(s, dict) or not isinstance(s.get("metrics"), dict):
        raise HarnessError(f"bad scores file {scores_path}: no 'metrics' object")
    damage = entry_damage(task_dir, samples_required=False)
    if damage:
        raise HarnessError(f"{damage}: it was changed after the evaluation wrote it, so its scores cannot be trusted; "
                           "rerun `harness run` on the run (it evaluates that task again)")
    primary = s.get("primary_metric") or next(iter(s["metrics"]), "")
    if primary not in s["metrics"]:
        raise HarnessError(f"bad scores file {scores_path}: primary metric {primary!r} not in its metrics")
    return TaskResult(
        task=str(s.get("task") or task_dir.name),
        variant=str(s.get("variant") or variant),
        family=str(s.get("family") or str(s.get("task") or task_dir.name).split("_")[0]),
        lang=str(s.get("lang") or "?"),
        kind=str(s.get("kind") or ""),
        primary_metric=primary,
        metrics=s["metrics"],
        n_samples=s.get("n_samples"),
        signatures=s.get("signatures") or {},
        metadata=s.get("metadata") or {},
        scores=s,
        path=task_dir,
        samples=_read_samples(task_samples(task_dir)) if with_samples else None,
    )


def check_exists(run_dir: Path) -> None:
    if not Path(run_dir).is_dir():
        raise HarnessError(f"not a run folder: {run_dir} (no such directory)")


def load_run(run_dir: Path, with_samples: bool = True) -> Run:
    """Read one run folder; HarnessError if it is not a run folder or has no evaluation."""
    paths = RunPaths(Path(run_dir))
    run_dir, spec_path = paths.root, paths.spec
    check_exists(run_dir)
    if not spec_path.exists():
        raise HarnessError(f"not a run folder: {run_dir} (no spec.yaml)")
    try:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HarnessError(f"cannot read {spec_path}: {' '.join(str(exc).split())}") from None
    if not isinstance(spec, dict):
        raise HarnessError(f"bad run spec {spec_path}: not a mapping")
    stages = _read_json(paths.manifest, "manifest").get("stages", {}) if paths.manifest.exists() else {}
    run = Run(name=str(spec.get("name") or run_dir.name), path=run_dir, spec=spec, stages=stages or {})
    eval_dir = paths.eval_root
    for variant_dir in sorted(p for p in eval_dir.iterdir() if p.is_dir()) if eval_dir.is_dir() else []:
        tasks = {}
        for task_dir in sorted(p for p in variant_dir.iterdir() if task_scores(p).exists()):
            result = load_task(task_dir, variant_dir.name, with_samples)
            tasks[result.task] = result
        if tasks:
            run.results[variant_dir.name] = tasks
    if not run.results:
        raise HarnessError(f"run {run.name} has no evaluation ({eval_dir}/<variant>/<task>/scores.json); "
                           "run its evaluate stage first")
    return run


def load_runs(run_dirs: list[Path], with_samples: bool = True) -> list[Run]:
    if not run_dirs:
        raise HarnessError("no run folders given")
    runs = [load_run(Path(d), with_samples) for d in run_dirs]
    seen: dict[Path, str] = {}
    for r in runs:
        key = r.path.resolve()
        if key in seen:
            raise HarnessError(f"run folder given twice: {r.path}")
        seen[key] = r.name
    return runs
