"""Batched greedy generation with HF transformers: the engine's self-distillation, LLM translation and judge path.

Prompts are sorted by length (longest first, as lm-eval's HFLM does: a batch's rows pad to similar
widths, and an out-of-memory shows in the first batch), left-padded, and generated in batches whose
row count comes from the free device memory (`generation_rows`; a fixed cap on the CPU). Each row
stops at its own end-of-turn token or stop string and is trimmed there; answers come back in the
prompts' order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from harness.core.device import ModelShape
from harness.engines.base import Generation

# Our defaults: the share of free device memory the batch may take (the rest is allocator slack and
# the runtime's own buffers), and a row cap past which a decode step no longer gets cheaper per row.
GPU_MEMORY_SHARE = 0.8
GPU_MAX_ROWS = 256


def generation_rows(shape: ModelShape, dtype_bytes: int, tokens_per_row: int, free_bytes: int | None,
                    cpu_rows: int) -> int:
    """Rows per generation batch: `cpu_rows` without a GPU (free_bytes None), else as many as fit.

    Per row: tokens_per_row x (key/value cache: 2 x layers x kv_heads x head_dim x dtype_bytes, plus the
    prefill's transient activations of one layer: (4 x hidden + 2 x intermediate) x dtype_bytes) plus the
    next-token scores, 2 x vocab x 4 bytes (fp32 logits and their processed copy).
    """
    if free_bytes is None:
        return cpu_rows
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * dtype_bytes
    prefill = (4 * shape.hidden + 2 * shape.intermediate) * dtype_bytes
    per_row = tokens_per_row * (kv + prefill) + 2 * shape.vocab * 4
    return max(1, min(GPU_MAX_ROWS, int(free_bytes * GPU_MEMORY_SHARE) // per_row))


@dataclass(frozen=True)
class Stops:
    """Where a row ends: any of these token ids (end-of-turn, eos), or any of these strings."""

    token_ids: frozenset[int]
    strings: tuple[str, ...] = ()


def stop_ids(model: Any, tokenizer: Any) -> frozenset[int]:
    """The tokenizer's eos and every eos id of the model's generation config (chat models list end-of-turn there)."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    return frozenset({tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None})


def trim(tokenizer: Any, new_tokens: list[int], stops: Stops) -> Generation:
    """One row's answer: its tokens up to its first stop token, decoded, cut at its first stop string."""
    ended = next((i for i, t in enumerate(new_tokens) if t in stops.token_ids), None)
    text = tokenizer.decode(new_tokens[:ended] if ended is not None else new_tokens, skip_special_tokens=True)
    cuts = [text.find(s) for s in stops.strings if s and s in text]
    if cuts:
        text, ended = text[: min(cuts)], ended if ended is not None else len(new_tokens)
    return Generation(text.strip(), truncated=ended is None)


def generate_batched(
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    rows: int,
    stops: Stops,
    window: int | None = None,
    on_window: Callable[[int, list[Generation]], None] | None = None,
    progress: Callable[[list], Any] = iter,
) -> list[Generation]:
    """Greedy answers to tokenised prompts, in their order.

    Prompts are taken in consecutive windows of `window` (all at once when None); inside a window they
    are sorted by length and generated `rows` at a time, and `on_window(first index, answers)` gets the
    window's answers in order when it is done (a caller keeps finished answers while the rest run).
    """
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stops.token_ids, default=0)
    answers: list[Generation] = []
    window = window or max(1, len(prompts))
    batches = []
    for start in range(0, len(prompts), window):
        order = sorted(range(start, min(start + window, len(prompts))), key=lambda i: -len(prompts[i]))
        batches.extend((start, order[b : b + rows]) for b in range(0, len(order), rows))
    done: dict[int, Generation] = {}
    for start, batch in progress(batches):
        width = len(prompts[batch[0]])  # the longest: sorted
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, i in enumerate(batch):  # left padding: every row's last prompt token is at the same position
            ids[r, width - len(prompts[i]) :] = torch.tensor(prompts[i], dtype=torch.long)
            mask[r, width - len(prompts[i]) :] = 1
        extra = {"stop_strings": list(stops.strings), "tokenizer": tokenizer} if stops.strings else {}
        with torch.no_grad():
            out = model.generate(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                                 max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad,
                                 eos_token_id=sorted(stops.token_ids) or None, **extra)
        for i, row in zip(batch, out[:, width:].tolist()):
            done[i] = trim(tokenizer, row, stops)
        window_end = min(start + window, len(prompts))
        if all(i in done for i in range(start, window_end)) and len(answers) == start:
            answers.extend(done.pop(i) for i in range(start, window_end))
            if on_window is not None:
                on_window(start, answers[start:])
    return answers
