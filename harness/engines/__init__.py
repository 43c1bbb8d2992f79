"""The engines that run a model, one class per backend registered by name (as lm-eval's `@register_model`):
vLLM (default) and HF transformers (fallback and cross-check).

Evaluation builds lm-eval's model through `get_engine(name)`; trainers generate through `generate_chat`.
A new backend is a subclass of `Engine` in its own module, decorated with `@register_engine("name")`
and imported below.
"""

from __future__ import annotations

from pathlib import Path

from harness.engines.base import (
    ENGINES,
    LORA_SCORING,
    Engine,
    EngineSettings,
    Generation,
    OnBatch,
    check_engine,
    check_parallel,
    get_engine,
    register_engine,
)
from harness.engines.vllm_engine import prepare_vllm_env  # registers "vllm"
from harness.engines import hf_engine  # noqa: F401  (registers "hf")

__all__ = [
    "ENGINES", "LORA_SCORING", "Engine", "EngineSettings", "Generation", "OnBatch", "check_engine", "check_parallel",
    "generate_chat", "get_engine", "prepare_vllm_env", "register_engine",
]


def generate_chat(
    model_dir: Path,
    conversations: list[list[dict]],
    max_new_tokens: int,
    engine: str = "vllm",
    settings: EngineSettings | None = None,
    on_batch: OnBatch | None = None,
) -> list[Generation]:
    """Greedy answers to chat conversations (lists of {role, content}), one per conversation;
    `on_batch(start, answers)` as each batch finishes (one model load for all batches)."""
    backend = get_engine(engine)
    if not conversations:
        return []
    return backend.generate_chat(model_dir, conversations, max_new_tokens, settings or EngineSettings(), on_batch)
