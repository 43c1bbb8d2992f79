"""What each run cost: wall time per stage, training size, device and GPU hours (from manifest.json).

The train stage records the device ("NVIDIA H100 80GB HBM3 x2" or "cpu x1 (2 threads)") and the
number of processes (one per GPU); the other stages that run the model ran on the same machine.
"""

from __future__ import annotations

from typing import Any

from harness.core.runstore import STAGES
from reports.load import Run

GPU_STAGES = tuple(s for s in STAGES if s not in ("plan", "report"))  # the stages that run the model


def stage_rank(stage: str) -> int:
    """A stage's place in a run; stages the harness does not know go last."""
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def is_gpu(device: Any) -> bool:
    """Training records the device as the GPU's name ("NVIDIA H100 80GB HBM3 x1") or "cpu x1 (...)"."""
    name = str(device or "").strip().lower()
    return bool(name) and not name.startswith("cpu")


def gpu_hours(stages: dict[str, dict], gpus: int) -> float | None:
    """Wall time x GPUs over the stages that run the model; None when none recorded a wall time."""
    hours = None
    for name in sorted(stages, key=stage_rank):
        if name in GPU_STAGES and isinstance(stages[name].get("wall_s"), (int, float)):
            hours = (hours or 0.0) + stages[name]["wall_s"] * float(gpus) / 3600.0
    return hours


def reused(run: Run) -> dict[str, dict]:
    """Per variant, the task results this run took from the shared evaluation cache, and their original time."""
    out: dict[str, dict] = {}
    for variant, results in run.results.items():
        cached = [r.scores for r in results.values() if r.scores.get("reused_from_cache")]
        if cached:
            out[variant] = {"tasks": len(cached), "wall_s": round(sum(float(s.get("wall_s") or 0.0) for s in cached), 3)}
    return out


def own_walls(run: Run, reuse: dict[str, dict]) -> dict[str, dict]:
    """The stages' manifest entries with the evaluate wall made this run's own work. A manifest that
    records `reused_wall_s` already left the reused results out; an older one counted their original
    time (the larger of the session's time and the tasks' summed times): that sum is taken off again,
    never below the time of the tasks this run evaluated itself."""
    stages = {name: dict(entry) for name, entry in run.stages.items()}
    evaluate = stages.get("evaluate")
    reused_s = sum(r["wall_s"] for r in reuse.values())
    if evaluate and reused_s and "reused_wall_s" not in evaluate and isinstance(evaluate.get("wall_s"), (int, float)):
        own_tasks = sum(float(r.scores.get("wall_s") or 0.0) for results in run.results.values()
                        for r in results.values() if not r.scores.get("reused_from_cache"))
        evaluate["wall_s"] = round(max(evaluate["wall_s"] - reused_s, own_tasks), 3)
    return stages


def run_cost(run: Run) -> dict:
    reuse = reused(run)
    stages = own_walls(run, reuse)
    train = stages.get("train", {})
    device = train.get("device")
    gpus = train.get("num_processes") or 1
    names = sorted(stages, key=stage_rank)
    walls = [stages[n].get("wall_s") for n in names if isinstance(stages[n].get("wall_s"), (int, float))]
    return {
        "run": run.name, "trainer": run.trainer,
        "wall_s": {n: stages[n].get("wall_s") for n in names},
        "total_wall_s": sum(walls) if walls else None,
        "records": (stages.get("data") or {}).get("records"),
        "train_tokens": train.get("train_tokens"),
        "steps": train.get("steps"),
        "device": device,
        "gpus": gpus if is_gpu(device) else None,
        "gpu_hours": gpu_hours(stages, gpus) if is_gpu(device) else None,
        "reused": reuse,
    }
