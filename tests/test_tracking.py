"""--report-to (issue 27 item 1): accelerate's trackers get the training curve, the held-out loss and the
final scores, with the run's settings as hyperparameters; what they wrote is read back from disk.

TensorBoard's event files are read with tensorboard's own EventAccumulator, MLflow's file store with
MLflow's client; W&B's offline run (a binary protobuf log its Go core writes, with no Python reader in
wandb 0.31) is checked for the metric and setting names in its records."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.core.errors import HarnessError
from harness.core.runstore import read_json
from harness.services import tracking

SPEC = {"name": "tiny", "trainer": "sdrrl", "seed": 0, "languages": ["en", "cs"], "limit": None,
        "trainer_config": {"lora_rank": 8, "learning_rate": 0.0002}}
HELDOUT = {"langs": {"en": {"n_records": 2, "tokens": 30, "base_loss": 3.0, "adapter_loss": 2.0},
                     "cs": {"n_records": 1, "tokens": 10, "base_loss": 4.0, "adapter_loss": 3.0}}}
SCORES = {"adapter": {"belebele_cs": {"primary_metric": "acc", "metrics": {"acc": 0.75}}}}


def _scalars(event_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(event_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _track(tmp_path: Path, names: tuple[str, ...]) -> None:
    tracker = tracking.start_tracking(names, "tiny", tmp_path / "run", SPEC)
    for step, loss in enumerate([2.5, 2.0, 1.5], start=1):
        tracker.on_step({"step": step, "loss": loss, "lr": 1e-4 * step, "answer_tokens": 10, "input_tokens": 40,
                         "time": 100.0 + 2 * step})
    tracker.log_results(HELDOUT, SCORES, steps=3)
    tracker.finish()


def test_tensorboard_event_files_hold_the_curve_the_heldout_loss_and_the_scores(tmp_path):
    _track(tmp_path, ("tensorboard",))
    scalars = _scalars(tmp_path / "run" / "tracking" / "tensorboard" / "tiny")
    assert scalars["train/loss"] == [(1, 2.5), (2, 2.0), (3, 1.5)]
    assert [step for step, _ in scalars["train/lr"]] == [1, 2, 3]
    assert scalars["train/tokens_per_s"] == [(2, 20.0), (3, 20.0)]  # 40 tokens in 2 s; the first step's start is not seen
    assert scalars["heldout/loss_base"] == [(3, 3.25)] and scalars["heldout/loss_adapter"] == [(3, 2.25)]  # token-weighted
    assert scalars["heldout/cs/loss_adapter"] == [(3, 3.0)]
    assert scalars["eval/adapter/belebele_cs/acc"] == [(3, 0.75)]
    hparams = next((tmp_path / "run" / "tracking" / "tensorboard" / "tiny").rglob("hparams.yml")).read_text()
    assert "setting/lora_rank: 8" in hparams and "languages: en,cs" in hparams


def test_mlflow_file_store_and_wandb_offline_get_the_same(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _track(tmp_path, ("mlflow", "wandb"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "run" / "tracking" / "mlruns").as_uri())
    run = client.search_runs([client.get_experiment_by_name(tracking.PROJECT).experiment_id])[0]
    assert run.info.run_name == "tiny" and run.data.params["setting/lora_rank"] == "8"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")] == [(1, 2.5), (2, 2.0), (3, 1.5)]
    assert run.data.metrics["eval/adapter/belebele_cs/acc"] == 0.75
    log = next((tmp_path / "run" / "tracking" / "wandb").rglob("*.wandb")).read_bytes()
    assert b"train/loss" in log and b"heldout/loss_adapter" in log and b"setting/lora_rank" in log


def test_report_to_is_checked_before_anything_runs(monkeypatch):
    assert tracking.parse_report_to(None) == () and tracking.parse_report_to("none") == ()
    assert tracking.parse_report_to("tensorboard, mlflow") == ("tensorboard", "mlflow")
    with pytest.raises(HarnessError, match=r"unknown tracker for --report-to 'tensorbord'; valid: .*tensorboard"):
        tracking.parse_report_to("tensorbord")
    with pytest.raises(HarnessError, match="'none' cannot be combined"):
        tracking.parse_report_to("none,wandb")
    monkeypatch.setitem(tracking.TRACKER_PACKAGES, "trackio", "no_such_package_for_trackio")
    with pytest.raises(HarnessError, match="--report-to trackio needs the no_such_package_for_trackio package"):
        tracking.parse_report_to("trackio")


def test_an_unknown_tracker_stops_the_run_in_one_line_before_any_model(capsys):
    assert main(["run", "--trainer", "sdrrl", "--model", "no-such-model-folder", "--report-to", "tensorboard,comet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'comet'" in err and "tensorboard" in err


@pytest.mark.slow
def test_a_smoke_run_with_report_to_tensorboard_leaves_the_loss_per_step(tiny_llama, tmp_path, eval_cache):
    runs = tmp_path / "runs"
    assert main(["run", "--trainer", "english_sft", "--model", str(tiny_llama), "--suite", "smoke", "--langs", "en,cs",
                 "--tasks", "belebele_cs", "--runs-dir", str(runs), "--name", "tracked", "--limit", "2",
                 "--max-model-len", "512", "--set", "num_instructions=6", "--set", "max_steps=3",
                 "--report-to", "tensorboard"]) == 0
    run = runs / "tracked"
    losses = read_json(run / "manifest.json")["stages"]["train"]["losses"]
    scalars = _scalars(run / "tracking" / "tensorboard" / "tracked")
    assert [step for step, _ in scalars["train/loss"]] == [1, 2, 3]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx(losses, abs=1e-4)  # event files hold float32
    assert set(scalars) >= {"train/lr", "heldout/loss_base", "heldout/loss_adapter", "eval/adapter/belebele_cs/acc"}
    assert os.path.getsize(next((run / "tracking" / "tensorboard" / "tracked").glob("events.out.tfevents.*"))) > 0
