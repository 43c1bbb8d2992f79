"""What every engine shares: the settings, the registry and the interface one backend implements."""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple, TypeVar

from harness.core import device
from harness.core.entrypoints import load_plugin_classes
from harness.core.errors import HarnessError, shown, unknown

# How a LoRA adapter reaches the engine: see EngineSettings.adapter_serving (harness.engines.routing).
ADAPTER_SERVING = ("auto", "merged", "lora")
# What evaluation asks of an engine: multiple choice asks for log-likelihoods, generation tasks for text.
REQUEST_TYPES = ("loglikelihood", "generation")
ENTRY_POINT_GROUP = "sdrrl_harness.engines"


def on_gpu() -> bool:
    return device.cuda_available()  # the one probe tests set (harness.core.device)


@dataclass(frozen=True)
class EngineSettings:
    max_model_len: int = 2048
    max_lora_rank: int = 64
    seed: int = 1234
    max_gen_toks: int | None = None  # caps every generation task's own max_gen_toks (quick runs)
    # How a LoRA adapter reaches the engine: "merged" (into a cached copy of the weights), "lora"
    # (served as a LoRA; vLLM multiple choice then runs one request at a time, vLLM issue 16668), or
    # "auto": the fastest measured way per hardware and request type (harness.engines.routing).
    adapter_serving: str = "auto"
    # vLLM only: GPUs one model is split over, and model replicas (lm-eval's vLLM runs replicas through ray).
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1


class Generation(NamedTuple):
    text: str
    truncated: bool  # stopped by the token limit, not by the end-of-turn token: the text is cut off


# generate_chat's on_batch: called with (index of the batch's first conversation, its answers) as each
# batch finishes, so a caller can keep finished answers before the whole call returns.
OnBatch = Callable[[int, list[Generation]], None]


def context_length(model_dir: Path, wanted: int) -> int:
    """`wanted`, or less where the model's own context window is shorter (vLLM refuses more)."""
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    limit = config.get("max_position_embeddings") or wanted
    return min(wanted, int(limit))


class Engine(ABC):
    """One backend: how lm-eval's model is built on it, how an adapter is served, how it generates."""

    name: ClassVar[str]
    splits_over_devices: ClassVar[bool] = False  # tensor / data parallelism
    # Its model keeps memory the process cannot take back: trainers generate in a child process.
    generates_in_child: ClassVar[bool] = False
    # What routing, doctor, selftest and the help texts read (harness.engines.routing):
    # the request types it runs (of REQUEST_TYPES), the ways it can be given an adapter ("merged":
    # a base model to the engine, so every engine can; "lora": served as a LoRA), and the request
    # types for which `--adapter-serving auto` serves a LoRA as a LoRA on a GPU.
    request_types: ClassVar[tuple[str, ...]] = REQUEST_TYPES
    adapter_servings: ClassVar[tuple[str, ...]] = ("merged",)
    lora_preferred_for: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def missing(cls) -> str | None:
        """Why this engine cannot run here (a package not installed) as "what -> fix"; None: it can."""
        return None

    @classmethod
    def about(cls) -> str:
        """One line for `harness doctor` when the engine can run (its version, its build)."""
        return ""

    @classmethod
    def caveat(cls) -> str | None:
        """It runs, but not as it should here ("what -> fix"): `harness doctor` warns. None: nothing to say."""
        return None

    @abstractmethod
    def model_args(self, model_dir: Path, adapter: Path | None, settings: EngineSettings) -> dict:
        """Keyword arguments for lm-eval's model class of this backend."""

    @abstractmethod
    def lm(self, args: dict, hf_batch_size: int) -> Any:
        """lm-eval's model object (the scorer) built from `model_args`."""

    def before_task(self, lm: Any, serving: str, task_kind: str) -> None:
        """Per-task settings of a built model (batching), before lm-eval runs the task."""

    @abstractmethod
    def generate_chat(self, model_dir: Path, conversations: list[list[dict]], max_new_tokens: int,
                      settings: EngineSettings, on_batch: OnBatch | None = None) -> list[Generation]:
        """Greedy answers to chat conversations, one per conversation; the model is loaded once and
        `on_batch` gets each batch's answers as it finishes."""

    @abstractmethod
    def prompt_generator(self, model_dir: Path, tokenizer: Any, as_chat: Callable[[str], str],
                         max_new_tokens: int) -> Callable[[list[str]], list[str]]:
        """Greedy continuations of text prompts, each rendered by `as_chat`, at fixed settings (the judge's)."""


ENGINES: dict[str, type[Engine]] = {}
EngineClass = TypeVar("EngineClass", bound=type[Engine])


def register_engine(name: str) -> Callable[[EngineClass], EngineClass]:
    def register(cls: EngineClass) -> EngineClass:
        cls.name = name
        ENGINES[name] = cls
        return cls

    return register


def _check_declarations(name: str, cls: type[Engine]) -> None:
    for field, allowed in (("request_types", REQUEST_TYPES), ("adapter_servings", ("merged", "lora")),
                           ("lora_preferred_for", REQUEST_TYPES)):
        bad = [v for v in getattr(cls, field) if v not in allowed]
        if bad:
            raise HarnessError(f"engine {name!r} declares {field} {shown(bad[0])}; expected some of: {', '.join(allowed)}")
    if cls.lora_preferred_for and "lora" not in cls.adapter_servings:
        raise HarnessError(f"engine {name!r} prefers LoRA serving for {', '.join(cls.lora_preferred_for)} "
                           "but does not declare 'lora' in adapter_servings")


_plugins_seen: dict[tuple[str, ...], dict[str, type[Engine]]] = {}


def _plugin_engines() -> dict[str, type[Engine]]:
    """Engines registered by installed packages under the entry-point group, read once per import path."""
    key = tuple(sys.path)
    if key not in _plugins_seen:
        found = load_plugin_classes(ENTRY_POINT_GROUP, Engine, "an engine", label="engine ")
        for name, cls in found.items():
            if name in ENGINES and ENGINES[name] is not cls:
                raise HarnessError(f"engine entry point {name!r} ({cls.__module__}:{cls.__qualname__}) takes a built-in "
                                   "engine's name; rename it")
            _check_declarations(name, cls)
        _plugins_seen[key] = found
    return _plugins_seen[key]


def all_engines() -> dict[str, type[Engine]]:
    """Every engine by name: the built-in ones, then those of installed plugins (`sdrrl_harness.engines`)."""
    return {**ENGINES, **_plugin_engines()}


def engine_class(name: str) -> type[Engine]:
    engines = all_engines()
    if name not in engines:
        raise unknown("engine", name, ["auto", *engines])
    return engines[name]


def get_engine(name: str) -> Engine:
    return engine_class(name)()

