"""What each run cost: wall time per stage, training size, device and GPU hours (from manifest.json)."""

from __future__ import annotations

from typing import Any

from harness.runstore import STAGES
from reports.load import Run

GPU_STAGES = ("data", "train", "evaluate", "eval")  # stages that run the model


def stage_rank(stage: str) -> int:
    """A stage's place in a run; stages the harness does not know go last."""
    return STAGES.index(stage) if stage in STAGES else len(STAGES)


def is_gpu(device: Any) -> bool:
    """Training records the device as the GPU's name ("NVIDIA H100 80GB HBM3 x1") or "cpu x1 (...)"."""
    name = str(device or "").strip().lower()
    return bool(name) and not name.startswith("cpu")


def gpu_hours(stages: dict[str, dict], run_device: Any, run_gpus: int) -> float | None:
    hours = None
    for name in sorted(stages, key=stage_rank):
        if name not in GPU_STAGES:
            continue
        entry = stages[name]
        device = entry.get("device") or run_device
        if is_gpu(device) and isinstance(entry.get("wall_s"), (int, float)):
            gpus = entry.get("gpus") or entry.get("num_processes") or run_gpus
            hours = (hours or 0.0) + entry["wall_s"] * float(gpus) / 3600.0
    return hours


def run_cost(run: Run) -> dict:
    stages = run.stages
    train = stages.get("train", {})
    evaluate = stages.get("evaluate") or stages.get("eval") or {}
    run_device = train.get("device") or run.spec.get("device")
    run_gpus = train.get("gpus") or train.get("num_processes") or run.spec.get("gpus") or 1
    names = sorted(stages, key=stage_rank)
    walls = [stages[n].get("wall_s") for n in names if isinstance(stages[n].get("wall_s"), (int, float))]
    return {
        "run": run.name, "trainer": run.trainer,
        "wall_s": {n: stages[n].get("wall_s") for n in names},
        "total_wall_s": sum(walls) if walls else None,
        "records": (stages.get("data") or {}).get("records"),
        "train_tokens": train.get("train_tokens"),
        "steps": train.get("steps"),
        "generated_tokens": evaluate.get("generated_tokens"),
        "device": run_device,
        "gpus": run_gpus if is_gpu(run_device) else None,
        "gpu_hours": gpu_hours(stages, run_device, run_gpus),
    }
