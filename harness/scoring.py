"""Multiple-choice scoring that runs each context once.

A Belebele item's passage and question are shared by its 4 choices, a SIB-200 text by its 7
labels. lm-eval's HF model runs one forward pass per (context, continuation) pair, except when
every continuation is a single token (its `logits_cache`). `SharedContextHFLM` runs the context
once, keeps its key/value cache, and scores all continuations of that context in one batched
pass on top of the cache, so the tokens processed per item are its unique tokens (plus padding
of the continuations to the longest one).

The log-likelihoods are lm-eval's own (sum of log-softmax over the continuation tokens, and
whether each was the argmax); tests/test_scoring.py checks them against plain HFLM.
"""

from __future__ import annotations

from dataclasses import dataclass

from lm_eval.models.huggingface import HFLM


@dataclass
class ScoringCounts:
    """Token counts of the log-likelihood requests scored so far (this model object)."""

    requests: int = 0
    contexts: int = 0  # distinct contexts, each run once
    tokens_processed: int = 0  # positions the model ran: contexts + padded continuations
    tokens_unique: int = 0  # each context once plus every continuation
    tokens_per_pair: int = 0  # one forward per (context, continuation), as without reuse


class SharedContextHFLM(HFLM):
    """lm-eval's HFLM whose log-likelihood requests share one forward pass per distinct context."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.counts = ScoringCounts()

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if self.backend != "causal":
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        from tqdm import tqdm

        results: list = [None] * len(requests)
        by_context: dict[tuple[int, ...], list[int]] = {}
        too_long: list[int] = []
        for i, (_, context, continuation) in enumerate(requests):
            if len(context) + len(continuation) > self.max_length + 1:
                too_long.append(i)  # lm-eval truncates these from the left: its own path handles them
            else:
                by_context.setdefault(tuple(context), []).append(i)
        if too_long:
            for i, answer in zip(too_long, super()._loglikelihood_tokens([requests[i] for i in too_long], disable_tqdm, override_bs)):
                results[i] = answer
        pbar = tqdm(total=len(requests) - len(too_long), disable=disable_tqdm or self.rank != 0, desc="Scoring contexts once")
        for context, members in by_context.items():
            answers = self._score_context(list(context), [requests[i][2] for i in members])
            for i, answer in zip(members, answers):
                results[i] = answer
                if requests[i][0] is not None:
                    self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
            pbar.update(len(members))
        pbar.close()
        return results

    def _score_context(self, context: list[int], continuations: list[list[int]]) -> list[tuple[float, bool]]:
        """(sum of log-probabilities, all greedy) of each continuation after `context`."""
        import torch
        import torch.nn.functional as F

        rest_width = max(len(c) for c in continuations) - 1
        self._count(context, continuations, rest_width)
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype, enabled=self.mixed_precision_dtype is not None):
            out = self.model(torch.tensor([context], device=self.device), use_cache=rest_width > 0)
            first = F.log_softmax(out.logits[0, -1].to(self.softmax_dtype), dim=-1)  # predicts each continuation's first token
            rest = None
            if rest_width > 0:
                cache = out.past_key_values
                cache.batch_repeat_interleave(len(continuations))
                # Right-padded: a padding position comes after every real one, so causal attention never sees it.
                ids = torch.zeros((len(continuations), rest_width), dtype=torch.long, device=self.device)
                for row, cont in enumerate(continuations):
                    ids[row, : len(cont) - 1] = torch.tensor(cont[:-1])
                rest = F.log_softmax(self.model(ids, past_key_values=cache, use_cache=False).logits.to(self.softmax_dtype), dim=-1)
        answers = []
        for row, cont in enumerate(continuations):
            logprobs = first[None] if len(cont) == 1 else torch.cat([first[None], rest[row, : len(cont) - 1]])
            target = torch.tensor(cont, device=logprobs.device)
            total = logprobs.gather(1, target[:, None]).sum()
            greedy = bool((logprobs.argmax(dim=-1) == target).all())
            answers.append((float(total), greedy))
        return answers

    def _count(self, context: list[int], continuations: list[list[int]], rest_width: int) -> None:
        c = self.counts
        c.requests += len(continuations)
        c.contexts += 1
        c.tokens_processed += len(context) + (len(continuations) * rest_width)
        c.tokens_unique += len(context) + sum(len(x) for x in continuations)
        c.tokens_per_pair += sum(len(context) + len(x) - 1 for x in continuations)
