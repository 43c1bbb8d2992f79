"""The trainer plugin interface and its registry (entry-point group `sdrrl_harness.trainers`).

A trainer turns a base model into an adapter in two steps the harness runs as separate,
cached stages: `build_dataset` (stage `data`) and `train` (stage `train`). A trainer with
`trains = False` (the untouched base model) skips both.

A trainer's settings (`Config`) are a dataclass whose fields are settings, or concerns: dataclasses
whose fields are settings (trainers/config.py). Users, run specs and presets name every setting
flat (`lora_rank`, not `train.lora_rank`); `setting_names`, `settings_of` and `build_config` give
that flat view, routing each name to the concern that declares it.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from harness.engines import EngineSettings
from harness.core.entrypoints import load_plugin_classes
from harness.core.errors import HarnessError, shown, unknown
from harness.core.langs import Language
from harness.core.rules import DECIMAL_FLOAT, DECIMAL_INT, FALSE_WORDS, TRUE_WORDS, describe

ENTRY_POINT_GROUP = "sdrrl_harness.trainers"


@dataclass
class TrainContext:
    """What a trainer may read: the base model, the run's languages, where to work, how to generate."""

    model_dir: Path  # the resolved base model (an HF folder)
    languages: list[Language]  # the run's languages; a trainer's targets are these minus its source language
    work_dir: Path  # runs/<name>/data/work: caches (translations, self-distilled answers)
    engine: str = "auto"  # how the trainer runs the model when it generates
    seed: int = 0
    settings: EngineSettings = field(default_factory=EngineSettings)  # the run's: seed, max_model_len
    checkpoint_dir: Path | None = None  # where training keeps resumable checkpoints; None: none
    # called after every optimizer step with {step, loss, lr, answer_tokens, input_tokens, time}
    # (trainers.lora.train_lora's on_step): the run's trackers (--report-to) listen here
    on_step: Callable[[dict], None] | None = None

    def targets(self, source: str) -> list[Language]:
        return [lang for lang in self.languages if lang.code != source]


class Trainer(ABC):
    """Subclass, set `name`, `description` and `Config` (a dataclass of named knobs with defaults)."""

    name: ClassVar[str]
    description: ClassVar[str]
    Config: ClassVar[type]
    trains: ClassVar[bool] = True
    # Named setting presets that each switch one part of the method off (`<trainer>+<name>` in a
    # comparison; see harness.app.compare). A value "@<trainer>" copies that trainer's setting.
    ablations: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, config: Any):
        self.config = config
        self.data_stats: dict[str, Any] = {}  # what build_dataset reports (counts, drops); lands in the manifest

    def check(self, languages: list[Language]) -> None:
        """Raise HarnessError naming what the run lacks (lexicons, parallel pairs, files) before any
        model is loaded. The default checks nothing."""

    def check_model(self, model_dir: Path) -> None:
        """Raise HarnessError when the settings do not fit this model folder (read without loading
        its weights: config, safetensors headers). The default checks nothing."""

    @abstractmethod
    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        """Training records: {"id", "group", "kind", "lang", "messages": [{"role", "content"}, ...]}.

        Records sharing a `group` are variants of one source example and are batched together.
        """

    @abstractmethod
    def train(self, ctx: TrainContext, records: list[dict], adapter_dir: Path) -> dict:
        """Train a LoRA adapter on `records`, save it (safetensors) into `adapter_dir`, return stats."""


def load_trainers() -> dict[str, type[Trainer]]:
    """Every registered trainer by its entry-point name, which is also the class's `name`."""
    return load_plugin_classes(ENTRY_POINT_GROUP, Trainer, "a trainer")


def get_trainer_class(name: str) -> type[Trainer]:
    trainers = load_trainers()
    if name not in trainers:
        raise unknown("trainer", name, list(trainers))
    return trainers[name]


def _coerce(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        if value.lower() in TRUE_WORDS:
            return True
        if value.lower() in FALSE_WORDS:
            return False
        raise ValueError("expected true/false")
    if isinstance(default, int):
        if not DECIMAL_INT.match(value):
            raise ValueError("not a decimal integer")
        return int(value)
    if isinstance(default, float):
        if not DECIMAL_FLOAT.match(value):
            raise ValueError("not a decimal number")
        return float(value)
    if isinstance(default, (list, tuple)):
        return [v for v in value.split(",") if v]
    return value


def _typed(raw: Any, default: Any) -> Any:
    """A value from --set (a string) or YAML (typed) in the type of the field's default; ValueError if it has none."""
    if isinstance(raw, str) and not isinstance(default, str):
        return _coerce(raw.strip(), default)
    if isinstance(default, bool) or isinstance(raw, bool):
        if type(raw) is not type(default) and not (isinstance(default, str) and isinstance(raw, bool)):
            raise ValueError
        return str(raw).lower() if isinstance(default, str) else raw
    if isinstance(default, float) and isinstance(raw, int):
        return float(raw)
    if isinstance(default, (list, tuple)) and isinstance(raw, (list, tuple)):
        return list(raw)
    if not isinstance(raw, type(default)):
        raise ValueError
    return raw


def _owners(config: Any) -> dict[str, str | None]:
    """Each flat setting name -> the field of `config` (a concern) that declares it; None: `config` itself."""
    owners: dict[str, str | None] = {}
    for top in dataclasses.fields(config):
        value = getattr(config, top.name)
        names = [f.name for f in dataclasses.fields(value)] if dataclasses.is_dataclass(value) else [top.name]
        for name in names:
            if name in owners:
                raise TypeError(f"{type(config).__name__}: setting {name!r} is declared twice")
            owners[name] = top.name if dataclasses.is_dataclass(value) else None
    return owners


def setting_names(config_cls: type) -> list[str]:
    """The flat setting names of a Config class, in declaration order."""
    return list(_owners(config_cls()))


@dataclass(frozen=True)
class SettingInfo:
    """One flat setting of a trainer, as `harness list settings` shows it."""

    name: str
    concern: str  # the Config field (a concern) that declares it; "" for the Config's own fields
    default: Any  # this trainer's default (a trainer may give a concern another default)
    rule: str  # what it accepts (harness.core.rules.describe)
    paper: str  # what backs the default (harness.core.rules.PAPER_WORDS); "" when the field does not say
    help: str  # "" when the field does not say (a plugin's plain field)


def _info(f: dataclasses.Field, default: Any, declared_in: type, concern: str) -> SettingInfo:
    return SettingInfo(f.name, concern, default, describe(declared_in, f.name, default),
                       f.metadata.get("paper", ""), f.metadata.get("help", ""))


def setting_infos(cls: type[Trainer]) -> list[SettingInfo]:
    """Every flat setting of trainer `cls`, in declaration order, with its help (field metadata)."""
    config = cls.Config()
    infos: list[SettingInfo] = []
    for top in dataclasses.fields(config):
        value = getattr(config, top.name)
        if dataclasses.is_dataclass(value):
            infos += [_info(f, getattr(value, f.name), type(value), top.name) for f in dataclasses.fields(value)]
        else:
            infos.append(_info(top, value, type(config), ""))
    return infos


def settings_of(config: Any) -> dict[str, Any]:
    """The flat settings of a Config (the run spec's `trainer_config`), in declaration order."""
    out: dict[str, Any] = {}
    for top in dataclasses.fields(config):
        value = getattr(config, top.name)
        out.update(dataclasses.asdict(value) if dataclasses.is_dataclass(value) else {top.name: copy.deepcopy(value)})
    return out


def _concerns(config: Any) -> list[Any]:
    return [getattr(config, f.name) for f in dataclasses.fields(config) if dataclasses.is_dataclass(getattr(config, f.name))]


def _with_settings(config: Any, values: dict[str, Any]) -> Any:
    """A copy of `config` with flat `values` (all known names) set in the concerns that declare them."""
    owners = _owners(config)
    grouped: dict[str | None, dict[str, Any]] = {}
    for key, value in values.items():
        grouped.setdefault(owners[key], {})[key] = value
    own = grouped.pop(None, {})
    concerns = {name: dataclasses.replace(getattr(config, name), **changes) for name, changes in grouped.items()}
    return dataclasses.replace(config, **own, **concerns)


def build_config(cls: type[Trainer], overrides: dict[str, Any]) -> Any:
    """The trainer's Config with `overrides` (flat names; strings from the CLI, or typed values from
    YAML) applied, then checked (type, range, choice: each concern's `validate`, then the Config's
    own), so bad settings fail in the plan stage."""
    config = cls.Config()
    owners = _owners(config)
    defaults = settings_of(config)
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in owners:
            if not owners:
                raise HarnessError(f"trainer {cls.name!r} takes no settings; got {shown(key)}")
            raise unknown(f"setting for trainer {cls.name!r}:", key, list(owners))
        declared_in = type(getattr(config, owners[key])) if owners[key] else cls.Config
        try:
            values[key] = _typed(raw, defaults[key])
        except ValueError:
            raise HarnessError(f"bad value for {cls.name}.{key}: {shown(raw)}; expected {describe(declared_in, key, defaults[key])}") from None
    config = _with_settings(config, values)
    for part in (*_concerns(config), config):
        validate = getattr(part, "validate", None)
        if callable(validate):
            validate(cls.name)
    return config
