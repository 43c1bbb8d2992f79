"""Which engine, and which way of serving an adapter, each request type gets (`--engine auto`).

A user asks for `auto` (the default) and gets the fastest path we measured for the hardware, or
names an engine (`vllm`, `hf`) and gets that engine for every request type. Either way the adapter's
serving follows the hardware: on CPU a LoRA adapter is always served merged into a cached copy of the
weights (LoRA generation cost vLLM 10x and HF 7% there; the merged copy runs at the base model's
rate), on a GPU it is served as a LoRA, except where vLLM scores log-likelihoods (vLLM issue 16668:
LoRA with prompt log-probabilities fails for a step of several requests). `--adapter-serving
merged|lora` forces one way everywhere.

The table's figures: benchmarks/RESULTS.md section 8 (CPU, paired runs on a quiet 2-core machine).
The GPU row is the design's default (vLLM for everything); vLLM could not be run on the lent GPU,
so it is not a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.engines.base import ADAPTER_SERVING, ENGINES, on_gpu
from harness.core.errors import HarnessError, unknown

AUTO = "auto"
REQUEST_TYPES = ("loglikelihood", "generation")

# (hardware, request type) -> engine, for --engine auto.
AUTO_ENGINE: dict[tuple[str, str], str] = {
    # CPU, SmolLM2-135M, vLLM tokens/s over HF tokens/s (RESULTS.md section 8): log-likelihood 0.28x
    # (HF runs each multiple-choice context once), generation 1.90x (base model; the merged copy
    # is a base model to the engine).
    ("cpu", "loglikelihood"): "hf",
    ("cpu", "generation"): "vllm",
    ("gpu", "loglikelihood"): "vllm",
    ("gpu", "generation"): "vllm",
}


@dataclass(frozen=True)
class Route:
    """How one task runs: the engine, and how the adapter reaches it ("none" for the base model)."""

    engine: str
    serving: str  # "none" | "merged" | "lora"

    @property
    def label(self) -> str:
        return self.engine if self.serving == "none" else f"{self.engine}+{self.serving}"


def hardware() -> str:
    return "gpu" if on_gpu() else "cpu"


def request_type(task_kind: str) -> str:
    """Multiple-choice tasks ask for log-likelihoods, generation tasks for generated text."""
    return "generation" if task_kind == "generation" else "loglikelihood"


def engine_choices() -> list[str]:
    return [AUTO, *ENGINES]


def check_engine_name(name: str) -> str:
    if name != AUTO and name not in ENGINES:
        raise unknown("engine", name, engine_choices())
    return name


def pick_engine(name: str, kind: str) -> str:
    """The engine that runs requests of `kind` ("loglikelihood" | "generation") for `--engine name`."""
    check_engine_name(name)
    if kind not in REQUEST_TYPES:
        raise unknown("request type", kind, REQUEST_TYPES)
    return AUTO_ENGINE[(hardware(), kind)] if name == AUTO else name


def pick_serving(engine: str, kind: str, has_adapter: bool, wanted: str = AUTO) -> str:
    """How an adapter reaches `engine` for requests of `kind` under `--adapter-serving wanted`."""
    if not has_adapter:
        return "none"
    if wanted not in ADAPTER_SERVING:
        raise unknown("adapter serving", wanted, ADAPTER_SERVING)
    if wanted != AUTO:
        return wanted
    if kind == "loglikelihood" and engine == "vllm":
        return "merged"
    return "merged" if hardware() == "cpu" else "lora"


def route(name: str, task_kind: str, has_adapter: bool, adapter_serving: str = AUTO) -> Route:
    """The engine and adapter serving for one task of `task_kind` under `--engine name`."""
    kind = request_type(task_kind)
    engine = pick_engine(name, kind)
    return Route(engine, pick_serving(engine, kind, has_adapter, adapter_serving))


def check_parallel(engine: str, tensor_parallel_size: int, data_parallel_size: int) -> None:
    """Tensor / data parallelism only where every engine that `engine` routes to splits over devices."""
    used = {pick_engine(engine, kind) for kind in REQUEST_TYPES}
    for name, value in (("tensor-parallel-size", tensor_parallel_size), ("data-parallel-size", data_parallel_size)):
        if value < 1:
            raise HarnessError(f"--{name} must be >= 1, got {value}")
        single = sorted(e for e in used if not ENGINES[e].splits_over_devices)
        if value > 1 and single:
            needed = " or ".join(f"--engine {n}" for n, cls in ENGINES.items() if cls.splits_over_devices)
            raise HarnessError(f"--{name} {value} needs {needed} (engine {engine!r} runs {', '.join(single)}, one copy on one device)")
