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
    tokens_processed: int = 0  # positions run: contexts + continuations padded within their group (not batch padding)
    tokens_unique: int = 0  # each context once plus every continuation
    tokens_per_pair: int = 0  # one forward per (context, continuation), as without reuse
    rescored: int = 0  # vLLM: requests whose prefix-cache hit reached into the continuation, run again


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
        # Longest contexts first, as lm-eval orders its requests: a batch's contexts then pad to similar widths.
        groups = sorted(by_context.items(), key=lambda group: -len(group[0]))
        per_batch = self.batch_size if isinstance(self.batch_size, int) else 8
        for start in range(0, len(groups), per_batch):
            chunk = groups[start : start + per_batch]
            answers = self._score_contexts([list(c) for c, _ in chunk], [[requests[i][2] for i in members] for _, members in chunk])
            for (_, members), group_answers in zip(chunk, answers):
                for i, answer in zip(members, group_answers):
                    results[i] = answer
                    if requests[i][0] is not None:
                        self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
                pbar.update(len(members))
        pbar.close()
        return results

    def _score_contexts(self, contexts: list[list[int]], continuations: list[list[list[int]]]) -> list[list[tuple[float, bool]]]:
        """(sum of log-probabilities, all greedy) of each continuation after its context; contexts batched."""
        import torch
        import torch.nn.functional as F

        rows = [(b, cont) for b, conts in enumerate(continuations) for cont in conts]
        rest_width = max(len(cont) for _, cont in rows) - 1
        width = max(len(c) for c in contexts)
        # Built on the host and moved once: one small copy per row costs more than the pass on a GPU.
        ids = torch.zeros((len(contexts), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for b, context in enumerate(contexts):
            ids[b, : len(context)] = torch.tensor(context)
            mask[b, : len(context)] = 1
            self._count(context, continuations[b], max(len(c) for c in continuations[b]) - 1)
        ids, mask = ids.to(self.device), mask.to(self.device)
        owner = torch.tensor([b for b, _ in rows], device=self.device)
        targets = torch.zeros((len(rows), rest_width + 1), dtype=torch.long)
        for r, (_, cont) in enumerate(rows):
            targets[r, : len(cont)] = torch.tensor(cont)
        targets = targets.to(self.device)
        lengths = torch.tensor([len(cont) for _, cont in rows], device=self.device)
        last = sorted({len(c) - 1 for c in contexts})  # logits only where a context ends (right padding)
        with torch.no_grad(), torch.autocast(device_type=self.device.type, dtype=self.mixed_precision_dtype, enabled=self.mixed_precision_dtype is not None):
            out = self.model(ids, attention_mask=mask, use_cache=rest_width > 0, logits_to_keep=torch.tensor(last, device=self.device))
            at = {pos: k for k, pos in enumerate(last)}
            first = torch.stack([out.logits[b, at[len(c) - 1]] for b, c in enumerate(contexts)])
            first = F.log_softmax(first.to(self.softmax_dtype), dim=-1)  # predicts each continuation's first token
            total = first[owner].gather(1, targets[:, :1]).squeeze(1)
            greedy = first.argmax(dim=-1)[owner] == targets[:, 0]
            # Only continuations of several tokens need a second pass; copying a long context's cache for
            # single-token choices (Belebele's A-D) would cost more memory traffic than the pass saves.
            multi = [r for r, (_, cont) in enumerate(rows) if len(cont) > 1]
            if multi:
                pick = torch.tensor(multi, device=self.device)
                cache = out.past_key_values
                cache.reorder_cache(owner[pick])  # one cache row per continuation, copied from its context's
                rest_ids = targets[pick, :-1]  # each continuation but its last token, right-padded
                # Each continuation goes on right after its own context, skipping that context's padding.
                positions = mask.sum(dim=1)[owner[pick]][:, None] + torch.arange(rest_width, device=self.device)[None]
                rest_mask = torch.cat([mask[owner[pick]], torch.ones((len(multi), rest_width), dtype=mask.dtype, device=self.device)], dim=1)
                logits = self.model(rest_ids, attention_mask=rest_mask, position_ids=positions, past_key_values=cache, use_cache=False).logits
                rest = F.log_softmax(logits.to(self.softmax_dtype), dim=-1)
                rest_targets = targets[pick, 1:]
                real = torch.arange(rest_width, device=self.device)[None] < (lengths[pick] - 1)[:, None]
                picked = rest.gather(2, rest_targets[..., None]).squeeze(-1)
                total[pick] += torch.where(real, picked, torch.zeros_like(picked)).sum(dim=1)
                greedy[pick] &= ((rest.argmax(dim=-1) == rest_targets) | ~real).all(dim=1)
        answers: list[list[tuple[float, bool]]] = [[] for _ in contexts]
        for (b, _), value, is_greedy in zip(rows, total.tolist(), greedy.tolist()):  # one device-to-host copy
            answers[b].append((float(value), bool(is_greedy)))
        return answers

    def _count(self, context: list[int], continuations: list[list[int]], rest_width: int) -> None:
        c = self.counts
        c.requests += len(continuations)
        c.contexts += 1
        c.tokens_processed += len(context) + (len(continuations) * rest_width)
        c.tokens_unique += len(context) + sum(len(x) for x in continuations)
        c.tokens_per_pair += sum(len(context) + len(x) - 1 for x in continuations)
