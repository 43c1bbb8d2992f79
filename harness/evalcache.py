"""What identifies one task's evaluation (its key), and the cache of finished evaluations shared by runs.

Base-model scores are the same for every trainer, so a run finds a task the same model, adapter,
task files, data and settings already went through (by any run) in the shared cache by its key.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness import comet, genmetrics, metrics
from harness.engines.routing import route
from harness.models import cache_root
from harness.runstore import read_json, read_jsonl, sha256_json, task_samples, task_scores
from harness.tasks import TaskInfo, tasks_dir

EVAL_FORMAT = 2  # bump when scores.json / samples.jsonl change shape: old caches are then ignored


def eval_key(req, task: TaskInfo, model_fp: str, adapter_fp: str | None) -> str:
    """The key of `task` evaluated as `req` (a harness.evaluate.EvalRequest) asks."""
    served = route(req.engine, task.kind, adapter_fp is not None, req.settings.adapter_serving)  # `auto` and its pick share entries
    return sha256_json(
        {
            "model": model_fp,
            "adapter": adapter_fp,
            "engine": served.engine,
            "adapter_served_as": served.serving,
            "task_code": _task_code_hash(task),
            "data_dir": str(req.data_dir) if req.data_dir else None,
            "limit": req.limit,
            "max_model_len": req.settings.max_model_len,
            "max_gen_toks": req.settings.max_gen_toks,
            "format": EVAL_FORMAT,
            "genmetrics": genmetrics.VERSION if task.kind == "generation" else None,
            "comet": comet.settings_key(comet.from_env()) if task.kind == "generation" else None,
        }
    )


def _task_code_hash(task: TaskInfo) -> str:
    """The task's YAML, its family's templates and utils, the shared task modules and the sacreBLEU helpers."""
    folder = task.yaml_path.parent
    shared = sorted([*tasks_dir().glob("*.py"), Path(metrics.__file__)], key=lambda f: f.name)  # order as when metrics.py lived in tasks/
    files = [task.yaml_path, *sorted(folder.glob("_*")), *sorted(folder.glob("*.py")), *shared]
    return sha256_json([(f.name, f.read_text(encoding="utf-8")) for f in files if f.is_file()])


def shared_cache_dir() -> Path:
    """Finished task evaluations, shared between runs (base-model scores are the same for every trainer)."""
    return Path(os.environ.get("SDRRL_EVAL_CACHE", cache_root() / "evals"))


def from_shared_cache(key: str) -> tuple[dict, list[dict]] | None:
    entry = shared_cache_dir() / key
    if not task_scores(entry).exists():
        return None
    return read_json(task_scores(entry)), read_jsonl(task_samples(entry))
