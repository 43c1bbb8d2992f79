"""Experiment tracking through accelerate's trackers (`harness run --report-to tensorboard,wandb,...`).

One tracker run per harness run (a comparison: one per member), named after the run, with the run's
settings as hyperparameters. What is logged, and at which step:

  train/loss, train/lr          every optimizer step
  train/tokens_per_s            every step after the first: prompt and answer tokens over the step's time (under
                                accelerate launch, the main process's own tokens)
  heldout/loss_base, heldout/loss_adapter   after evaluation, at the last step (the learning signal; also
                                            per language: heldout/<lang>/loss_base, ...)
  eval/<variant>/<task>/<metric>            each task's primary score, at the last step

Files stay in the run folder: runs/<name>/tracking/ (TensorBoard's event files under tensorboard/<name>/,
MLflow's file store under mlruns/ unless MLFLOW_TRACKING_URI says otherwise, W&B's run under wandb/,
offline with WANDB_MODE=offline). The trackers are accelerate's own classes (accelerate.tracking), so
their behaviour is theirs; nothing here is a tracker of our own.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError, shown, unknown

NONE = "none"
# --report-to name -> the package its accelerate tracker imports
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "trackio": "trackio"}
REPORT_TO = (*TRACKER_PACKAGES, NONE)
PROJECT = "sdrrl-harness"  # the W&B project, MLflow experiment and trackio project runs land in (our default)


def parse_report_to(text: str | None) -> tuple[str, ...]:
    """--report-to A,B as tracker names, each installed; () for none. One line for a bad value, before any model."""
    if text is None:
        return ()
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise HarnessError(f"--report-to {shown(text)} names no tracker; valid: {', '.join(REPORT_TO)}")
    for name in names:
        if name not in REPORT_TO:
            raise unknown("tracker for --report-to", name, REPORT_TO)
    if NONE in names:
        if len(names) > 1:
            raise HarnessError(f"--report-to {shown(text)}: 'none' cannot be combined with a tracker")
        return ()
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise HarnessError(f"--report-to names {', '.join(repeated)} more than once")
    for name in names:
        package = TRACKER_PACKAGES[name]
        if importlib.util.find_spec(package) is None:
            raise HarnessError(f"--report-to {name} needs the {package} package, which is not installed: "
                               f"pip install {package} (or the project's extra: pip install -e '.[tracking]')")
    return tuple(names)


def hyperparameters(spec: dict[str, Any]) -> dict[str, Any]:
    """A run spec flattened into what every tracker accepts: str, int, float or bool values; trainer
    settings as setting/<name>."""
    flat: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "trainer_config" and isinstance(value, dict):
            flat.update({f"setting/{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return {k: _plain(v) for k, v in sorted(flat.items())}


def _plain(value: Any) -> str | int | float | bool:
    if isinstance(value, (bool, int, float, str)):
        return value
    if value is None:
        return "none"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def _trackers(names: tuple[str, ...], run_name: str, folder: Path) -> list[Any]:
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, TrackioTracker, WandBTracker

    made: list[Any] = []
    for name in names:
        if name == "tensorboard":
            made.append(TensorBoardTracker(run_name, folder / "tensorboard"))
        elif name == "wandb":
            (folder / "wandb").mkdir(parents=True, exist_ok=True)
            made.append(WandBTracker(PROJECT, name=run_name, dir=str(folder / "wandb")))
        elif name == "mlflow":
            if "MLFLOW_TRACKING_URI" not in os.environ:
                import mlflow

                # MLflow 3 keeps its file store only on request; the run folder is where a run's files live
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
                mlflow.set_tracking_uri((folder / "mlruns").resolve().as_uri())
            made.append(MLflowTracker(PROJECT, logging_dir=str(folder / "mlflow-artifacts"), run_name=run_name))
        elif name == "trackio":
            made.append(TrackioTracker(PROJECT, name=run_name))
    return made


@dataclass
class RunTracker:
    """The tracker runs of one harness run; `on_step` is what the training loop calls after each step."""

    trackers: list[Any]
    last_step: int = 0
    _step_started: float | None = field(default=None, repr=False)

    def log(self, values: dict[str, float | int | str], step: int | None = None) -> None:
        for tracker in self.trackers:
            tracker.log(values, step=step)

    def on_step(self, info: dict) -> None:
        """{step, loss, lr, input_tokens, time} from trainers.lora.run_loop -> train/ scalars."""
        values = {"train/loss": float(info["loss"]), "train/lr": float(info["lr"])}
        if self._step_started is not None and info["time"] > self._step_started:
            values["train/tokens_per_s"] = float(info["input_tokens"]) / (info["time"] - self._step_started)
        self._step_started = info["time"]
        self.last_step = int(info["step"])
        self.log(values, step=self.last_step)

    def log_results(self, heldout: dict[str, Any] | None, scores: dict[str, dict[str, dict]], steps: int | None) -> None:
        """The held-out losses (harness.services.heldout's file: per language, and their token-weighted
        mean) and every task's primary score, at the run's last training step."""
        values: dict[str, float] = {}
        langs = (heldout or {}).get("langs") or {}
        tokens = sum(v["tokens"] for v in langs.values())
        for variant in ("base", "adapter"):
            for lang, v in langs.items():
                values[f"heldout/{lang}/loss_{variant}"] = float(v[f"{variant}_loss"])
            if tokens:
                values[f"heldout/loss_{variant}"] = sum(v[f"{variant}_loss"] * v["tokens"] for v in langs.values()) / tokens
        for variant, by_task in scores.items():
            for task, result in by_task.items():
                metric = result.get("primary_metric")
                value = (result.get("metrics") or {}).get(metric)
                if isinstance(value, (int, float)):
                    values[f"eval/{variant}/{task}/{metric}"] = float(value)
        if values:
            self.log(values, step=steps or self.last_step or 0)

    def finish(self) -> None:
        for tracker in self.trackers:
            tracker.finish()


def start_tracking(names: tuple[str, ...], run_name: str, run_dir: Path, spec: dict[str, Any]) -> RunTracker | None:
    """Tracker runs for `names` under run_dir/tracking, the spec stored as hyperparameters; None for none."""
    if not names:
        return None
    from accelerate import PartialState

    PartialState()  # accelerate's trackers log on the main process, which its state knows
    folder = Path(run_dir) / "tracking"
    folder.mkdir(parents=True, exist_ok=True)
    trackers = _trackers(names, run_name, folder)
    params = hyperparameters(spec)
    for tracker in trackers:
        tracker.start()
        tracker.store_init_configuration(params)
    return RunTracker(trackers)
