"""What every engine shares: the settings, the registry and the interface one backend implements."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, NamedTuple, TypeVar

from harness.core import device
from harness.core.errors import HarnessError, unknown

# How a LoRA adapter reaches the engine: see EngineSettings.adapter_serving (harness.engines.routing).
ADAPTER_SERVING = ("auto", "merged", "lora")


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

    @property
    def dtype(self) -> str:
        return "auto" if on_gpu() else "float32"


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


def get_engine(name: str) -> Engine:
    try:
        return ENGINES[name]()
    except KeyError:
        raise unknown("engine", name, list(ENGINES)) from None

