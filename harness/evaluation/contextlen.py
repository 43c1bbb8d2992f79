"""Items longer than the engine's context window (--max-model-len): the engines cut such a context
from the left, so a score over them is not the task's score. Counted per task and said."""

from __future__ import annotations

from typing import Callable

# What lm-eval reserves for a generation without its own max_gen_toks (its default).
LM_EVAL_MAX_GEN_TOKS = 256


def overlong_items(samples: list[dict], count_tokens: Callable[[str], int] | None, max_model_len: int | None,
                   max_gen_toks: int | None = None) -> int:
    """How many of lm-eval's logged samples need more tokens than the window `max_model_len` (the
    engines' context_length): a choice's context plus continuation, or a prompt plus the tokens it may
    generate. 0 without a window or a tokenizer."""
    if not max_model_len or count_tokens is None:
        return 0
    sizes: dict[str, int] = {}

    def size(text: str) -> int:
        if text not in sizes:
            sizes[text] = count_tokens(text)
        return sizes[text]

    n = 0
    for sample in samples:
        for args in sample.get("arguments") or []:
            context, second = (list(args) + [None, None])[:2]
            if not isinstance(context, str):
                continue
            if isinstance(second, str):  # log-likelihood: the last token is predicted, never fed (lm-eval's rule)
                over = size(context) + size(second) > max_model_len + 1
            else:  # generation: the prompt plus room to generate
                wanted = second.get("max_gen_toks") if isinstance(second, dict) else None
                over = size(context) + int(wanted or max_gen_toks or LM_EVAL_MAX_GEN_TOKS) > max_model_len
            if over:
                n += 1
                break
    return n


def overlong_line(task: str, n: int, total: int, max_model_len: int) -> str:
    return (f"{task}: {n} of {total} items are longer than the context window of {max_model_len} tokens (--max-model-len, "
            "or the model's own if shorter); the engine cut "
            "their contexts from the left, so these scores are not the task's full-context scores")
