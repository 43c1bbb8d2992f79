"""The untouched base model: no data, no training; evaluated as it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.trainer_api import Trainer, TrainContext


@dataclass
class BaseConfig:
    """No settings."""


class BaseModelTrainer(Trainer):
    name = "base"
    description = "the base model as it is (no training)"
    Config = BaseConfig
    trains = False

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        return []

    def train(self, ctx: TrainContext, records: list[dict], adapter_dir: Path) -> dict:
        raise HarnessError("trainer 'base' does not train; it evaluates the base model as it is")
