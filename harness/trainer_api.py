"""The trainer plugin interface and its registry (entry-point group `sdrrl_harness.trainers`).

A trainer turns a base model into an adapter in two steps the harness runs as separate,
cached stages: `build_dataset` (stage `data`) and `train` (stage `train`). A trainer with
`trains = False` (the untouched base model) skips both.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError, unknown
from harness.langs import Language

ENTRY_POINT_GROUP = "sdrrl_harness.trainers"


@dataclass
class TrainContext:
    """What a trainer may read: the base model, the languages it trains for, and where to work."""

    model_dir: Path  # the resolved base model (an HF folder)
    target_langs: list[Language]  # the suite's languages other than English
    work_dir: Path  # runs/<name>/data/work: caches (translations, self-distilled answers)
    engine: str = "vllm"  # how the trainer runs the model when it generates
    seed: int = 0
    checkpoint_dir: Path | None = None  # where training keeps resumable checkpoints; None: none
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer(ABC):
    """Subclass, set `name`, `description` and `Config` (a dataclass of named knobs with defaults)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type]
    trains: ClassVar[bool] = True

    def __init__(self, config: Any):
        self.config = config

    @abstractmethod
    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        """Training records: {"id", "group", "kind", "lang", "messages": [{"role", "content"}, ...]}.

        Records sharing a `group` are variants of one source example and are batched together.
        """

    @abstractmethod
    def train(self, ctx: TrainContext, records: list[dict], adapter_dir: Path) -> dict:
        """Train a LoRA adapter on `records`, save it (safetensors) into `adapter_dir`, return stats."""


def load_trainers() -> dict[str, type[Trainer]]:
    found: dict[str, type[Trainer]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Trainer)):
            raise HarnessError(f"entry point {ep.name!r} ({ep.value}) is not a harness Trainer subclass")
        found[ep.name] = cls
    return found


def get_trainer_class(name: str) -> type[Trainer]:
    trainers = load_trainers()
    if name not in trainers:
        raise unknown("trainer", name, list(trainers))
    return trainers[name]


def _coerce(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {value!r}")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, (list, tuple)):
        return [v for v in value.split(",") if v]
    return value


def build_config(cls: type[Trainer], overrides: dict[str, Any]) -> Any:
    """The trainer's Config with `overrides` (strings from the CLI, or typed values from YAML) applied."""
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    config = cls.Config()
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise unknown(f"setting for trainer {cls.name!r}:", key, list(fields))
        default = getattr(config, key)
        try:
            values[key] = _coerce(raw, default) if isinstance(raw, str) and not isinstance(default, str) else raw
        except ValueError as exc:
            raise HarnessError(f"bad value for {cls.name}.{key}: {exc}") from None
    return dataclasses.replace(config, **values)
