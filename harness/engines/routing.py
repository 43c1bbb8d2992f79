"""Which engine, and which way of serving an adapter, each request type gets (`--engine auto`).

A user asks for `auto` (the default) or names an engine (`harness list engines`) and gets that
engine for every request type. `auto` takes, per request type, the fastest engine and adapter
serving that `harness selftest` verified on this machine (harness.engines.measured); until the
selftest has run here, the design default below. It never routes to an engine the selftest failed.
A route says which it was (`Route.basis`), and so does the report's "served by".

The adapter's serving, by default: on CPU a LoRA adapter is served merged into a cached copy of the
weights (LoRA generation cost vLLM 10x and HF 7% there; the merged copy runs at the base model's
rate); on a GPU it is served as a LoRA for the request types the engine declares
(`Engine.lora_preferred_for`: vLLM not for log-likelihoods, vLLM issue 16668). `--adapter-serving
merged|lora` forces one way, where the engine declares it (`Engine.adapter_servings`).

The design default's figures: benchmarks/RESULTS.md section 8 (CPU, paired runs on a quiet 2-core
machine). The GPU row is the design's default (vLLM for everything), not a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.errors import HarnessError, unknown
from harness.engines.base import ADAPTER_SERVING, REQUEST_TYPES, all_engines, engine_class, on_gpu
from harness.engines.measured import MeasuredRoutes, read_routes

AUTO = "auto"

# (hardware, request type) -> engine, for --engine auto before `harness selftest` has run here.
AUTO_ENGINE: dict[tuple[str, str], str] = {
    # CPU, SmolLM2-135M, vLLM tokens/s over HF tokens/s (RESULTS.md section 8): log-likelihood 0.28x
    # (HF runs each multiple-choice context once), generation 1.90x (base model; the merged copy
    # is a base model to the engine).
    ("cpu", "loglikelihood"): "hf",
    ("cpu", "generation"): "vllm",
    ("gpu", "loglikelihood"): "vllm",
    ("gpu", "generation"): "vllm",
}
# Route.basis: the user named the engine; `harness selftest` measured it here; the design default.
BASES = ("named", "measured", "default")


@dataclass(frozen=True)
class Route:
    """How one task runs: the engine, how the adapter reaches it ("none" for the base model), and why."""

    engine: str
    serving: str  # "none" | "merged" | "lora"
    basis: str = "named"  # one of BASES

    @property
    def label(self) -> str:
        served = self.engine if self.serving == "none" else f"{self.engine}+{self.serving}"
        return {"named": served, "measured": f"{served} (measured here)", "default": f"{served} (design default)"}[self.basis]


def hardware() -> str:
    return "gpu" if on_gpu() else "cpu"


def request_type(task_kind: str) -> str:
    """Multiple-choice tasks ask for log-likelihoods, generation tasks for generated text."""
    return "generation" if task_kind == "generation" else "loglikelihood"


def engine_choices() -> list[str]:
    return [AUTO, *all_engines()]


def engines_help() -> str:
    """The --engine help text, from the registry."""
    return (f"auto (default: per request type the fastest engine `harness selftest` verified on this machine, "
            f"else the design default; harness/engines/routing.py), or one of: {', '.join(all_engines())}")


def check_engine_name(name: str) -> str:
    if name != AUTO and name not in all_engines():
        raise unknown("engine", name, engine_choices())
    return name


def _auto(kind: str, table: MeasuredRoutes | None) -> tuple[str, str | None, str]:
    """(engine, its measured adapter serving or None, basis) for `auto` and request type `kind`."""
    engines = all_engines()
    measured = table.routes.get(kind) if table else None
    if measured is not None and measured.engine in engines:
        return measured.engine, measured.serving, "measured"
    failed = set(table.failed) if table else set()
    default = AUTO_ENGINE[(hardware(), kind)]
    for name in (default, *engines):
        if name in engines and name not in failed and kind in engines[name].request_types:
            return name, None, "default"
    raise HarnessError(f"no engine left for {kind} requests: harness selftest failed {', '.join(sorted(failed))} on this "
                       "machine; fix what it reported and run it again, or name an engine with --engine")


def choose(name: str, kind: str) -> tuple[str, str | None, str]:
    """(engine, measured adapter serving or None, basis) for requests of `kind` under `--engine name`."""
    check_engine_name(name)
    if kind not in REQUEST_TYPES:
        raise unknown("request type", kind, REQUEST_TYPES)
    if name == AUTO:
        return _auto(kind, read_routes())
    if kind not in engine_class(name).request_types:
        raise HarnessError(f"engine {name!r} does not run {kind} requests (it runs: {', '.join(engine_class(name).request_types)})")
    return name, None, "named"


def pick_engine(name: str, kind: str) -> str:
    """The engine that runs requests of `kind` ("loglikelihood" | "generation") for `--engine name`."""
    return choose(name, kind)[0]


def pick_serving(engine: str, kind: str, has_adapter: bool, wanted: str = AUTO) -> str:
    """How an adapter reaches `engine` for requests of `kind` under `--adapter-serving wanted`, by default."""
    if not has_adapter:
        return "none"
    if wanted not in ADAPTER_SERVING:
        raise unknown("adapter serving", wanted, ADAPTER_SERVING)
    cls = engine_class(engine)
    if wanted != AUTO:
        if wanted not in cls.adapter_servings:
            raise HarnessError(f"engine {engine!r} cannot serve an adapter {wanted}; it serves: {', '.join(cls.adapter_servings)}")
        return wanted
    return "lora" if hardware() == "gpu" and kind in cls.lora_preferred_for else "merged"


def route(name: str, task_kind: str, has_adapter: bool, adapter_serving: str = AUTO) -> Route:
    """The engine and adapter serving for one task of `task_kind` under `--engine name`."""
    kind = request_type(task_kind)
    engine, measured_serving, basis = choose(name, kind)
    if has_adapter and adapter_serving == AUTO and measured_serving is not None:
        return Route(engine, measured_serving, basis)
    return Route(engine, pick_serving(engine, kind, has_adapter, adapter_serving), basis)


def check_routes(name: str, task_kinds: set[str], has_adapter: bool, adapter_serving: str = AUTO) -> None:
    """Every task kind of a run has a route under `--engine name` (before any work; HarnessError otherwise)."""
    for kind in sorted(task_kinds):
        route(name, kind, has_adapter, adapter_serving)


def check_parallel(engine: str, tensor_parallel_size: int, data_parallel_size: int) -> None:
    """Tensor / data parallelism only where every engine that `engine` routes to splits over devices."""
    engines = all_engines()
    used = {pick_engine(engine, kind) for kind in REQUEST_TYPES} if engine == AUTO else {check_engine_name(engine)}
    for name, value in (("tensor-parallel-size", tensor_parallel_size), ("data-parallel-size", data_parallel_size)):
        if value < 1:
            raise HarnessError(f"--{name} must be >= 1, got {value}")
        single = sorted(e for e in used if not engines[e].splits_over_devices)
        if value > 1 and single:
            needed = " or ".join(f"--engine {n}" for n, cls in engines.items() if cls.splits_over_devices)
            raise HarnessError(f"--{name} {value} needs {needed} (engine {engine!r} runs {', '.join(single)}, one copy on one device)")
