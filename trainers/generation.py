"""Generation for the trainers (self-distillation, LLM translation), isolated from training.

vLLM changes its process for good: on CPU it binds the OpenMP threads to one core (training in the
same process afterwards ran 2x slower in our measurement), on GPU it reserves most of the memory.
So with engine=vllm the generation runs in a spawned child process that exits when it is done
and dies with the parent (harness.lifeline);
engine=hf runs in-process (its model is freed when the call returns).

As with any spawned process, a script that reaches this through its top level needs the usual
`if __name__ == "__main__":` guard (the harness CLI and pytest have it).
"""

from __future__ import annotations

from pathlib import Path

from harness.engines import EngineSettings, Generation, get_engine, pick_engine
from harness.errors import HarnessError
from harness.lifeline import ChildDied, run_in_child


def _generate_here(
    model_dir: Path, conversations: list[list[dict]], max_new_tokens: int, engine: str, settings: EngineSettings
) -> list[Generation]:
    from harness import engines  # looked up at call time, so tests can replace generate_chat

    try:
        return engines.generate_chat(Path(model_dir), conversations, max_new_tokens, engine=engine, settings=settings)
    except HarnessError:
        raise
    except Exception as exc:  # vLLM's errors do not always pickle back across the process boundary
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


def generate(
    model_dir: Path, conversations: list[list[dict]], max_new_tokens: int, engine: str, settings: EngineSettings
) -> list[Generation]:
    """Greedy answers, one per conversation, through harness.engines.generate_chat, with the run's
    engine settings (seed, max_model_len)."""
    if not conversations:
        return []
    if not get_engine(pick_engine(engine, "generation")).generates_in_child:
        return _generate_here(model_dir, conversations, max_new_tokens, engine, settings)
    try:
        # A child tied to this process (harness.lifeline): a killed run leaves no vLLM worker behind.
        return run_in_child(_generate_here, str(model_dir), conversations, max_new_tokens, engine, settings, what="vLLM generation process")
    except ChildDied as exc:
        raise HarnessError(f"{exc}; try --engine hf or a smaller model") from None
