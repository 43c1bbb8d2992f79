"""Generation for the trainers (self-distillation, LLM translation), isolated from training.

vLLM changes its process for good: on CPU it binds the OpenMP threads to one core (training in the
same process afterwards ran 2x slower in our measurement), on GPU it reserves most of the memory.
So with engine=vllm the generation runs in a spawned child process that exits when it is done
and dies with the parent (harness.core.lifeline);
engine=hf runs in-process (its model is freed when the call returns).

As with any spawned process, a script that reaches this through its top level needs the usual
`if __name__ == "__main__":` guard (the harness CLI and pytest have it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.engines import EngineSettings, Generation, OnBatch, get_engine, pick_engine
from harness.core.errors import HarnessError
from harness.core.lifeline import ChildDied, run_in_child
from harness.core.runstore import JsonlCache


@dataclass
class CacheBatches:
    """An on_batch for `generate`: each finished batch's rows go into a JsonlCache at once, so a killed
    run keeps every finished answer. Picklable: with vLLM it runs in the generation child (JsonlCache
    takes concurrent writers, and a torn last line is ignored by its readers)."""

    path: Path
    rows: list[dict]  # one per conversation, in order, without what the generation fills in
    text_field: str  # the row's field for the answer's text
    truncated_field: str | None = None  # and for whether it was cut off, if the cache keeps that
    _store: JsonlCache | None = field(default=None, init=False, repr=False, compare=False)

    def filled(self, start: int, answers: list[Generation]) -> list[dict]:
        """The rows from `start` on with the answers filled in."""
        out = []
        for row, answer in zip(self.rows[start : start + len(answers)], answers):
            row = {**row, self.text_field: answer.text}
            if self.truncated_field:
                row[self.truncated_field] = answer.truncated
            out.append(row)
        return out

    def __call__(self, start: int, answers: list[Generation]) -> None:
        if self._store is None:
            self._store = JsonlCache(self.path)
        self._store.add(self.filled(start, answers))


def _generate_here(
    model_dir: Path, conversations: list[list[dict]], max_new_tokens: int, engine: str, settings: EngineSettings,
    on_batch: OnBatch | None = None,
) -> list[Generation]:
    from harness import engines  # looked up at call time, so tests can replace generate_chat

    try:
        return engines.generate_chat(Path(model_dir), conversations, max_new_tokens, engine=engine, settings=settings,
                                     on_batch=on_batch)
    except HarnessError:
        raise
    except Exception as exc:  # vLLM's errors do not always pickle back across the process boundary
        raise RuntimeError(f"{type(exc).__name__}: {exc}") from None


def generate(
    model_dir: Path, conversations: list[list[dict]], max_new_tokens: int, engine: str, settings: EngineSettings,
    on_batch: OnBatch | None = None,
) -> list[Generation]:
    """Greedy answers, one per conversation, through harness.engines.generate_chat, with the run's
    engine settings (seed, max_model_len); `on_batch` (picklable, e.g. CacheBatches) as batches finish."""
    if not conversations:
        return []
    if not get_engine(pick_engine(engine, "generation")).generates_in_child:
        return _generate_here(model_dir, conversations, max_new_tokens, engine, settings, on_batch)
    try:
        # A child tied to this process (harness.core.lifeline): a killed run leaves no vLLM worker behind.
        return run_in_child(_generate_here, str(model_dir), conversations, max_new_tokens, engine, settings, on_batch,
                            what="vLLM generation process")
    except ChildDied as exc:
        raise HarnessError(f"{exc}; try --engine hf or a smaller model") from None
