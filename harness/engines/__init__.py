"""The engines that run a model, one class per backend registered by name (as lm-eval's `@register_model`):
vLLM and HF transformers built in, others from installed plugins (entry-point group
`sdrrl_harness.engines`); `auto` (the default) picks per request type what `harness selftest`
measured on this machine, else the design default (harness/engines/routing.py).

Evaluation builds lm-eval's model through `get_engine(name)`; trainers generate through `generate_chat`.
A built-in backend is a subclass of `Engine` in its own module, decorated with `@register_engine("name")`
and imported below; a plugin's is a subclass with `name` set, named by its entry point.
"""

from __future__ import annotations

from pathlib import Path

from harness.engines.base import (
    ENGINES,
    ADAPTER_SERVING,
    ENTRY_POINT_GROUP,
    REQUEST_TYPES,
    Engine,
    EngineSettings,
    Generation,
    OnBatch,
    all_engines,
    engine_class,
    get_engine,
    register_engine,
)
from harness.engines.vllm_engine import prepare_vllm_env  # registers "vllm"
from harness.engines import hf_engine  # noqa: F401  (registers "hf")
from harness.engines.routing import (
    AUTO, Route, check_engine_name, check_parallel, engine_choices, engines_help, pick_engine, route,
)

__all__ = [
    "ADAPTER_SERVING", "AUTO", "ENGINES", "ENTRY_POINT_GROUP", "REQUEST_TYPES", "Engine", "EngineSettings", "Generation",
    "OnBatch", "Route", "all_engines", "check_engine_name", "check_parallel", "engine_choices", "engine_class",
    "engines_help", "generate_chat", "get_engine", "pick_engine", "prepare_vllm_env", "register_engine", "route",
]


def generate_chat(
    model_dir: Path,
    conversations: list[list[dict]],
    max_new_tokens: int,
    engine: str = AUTO,
    settings: EngineSettings | None = None,
    on_batch: OnBatch | None = None,
) -> list[Generation]:
    """Greedy answers to chat conversations (lists of {role, content}), one per conversation;
    `on_batch(start, answers)` as each batch finishes (one model load for all batches)."""
    backend = get_engine(pick_engine(engine, "generation"))
    if not conversations:
        return []
    return backend.generate_chat(model_dir, conversations, max_new_tokens, settings or EngineSettings(), on_batch)
