"""vLLM multiple-choice scoring that reuses each context's key/value blocks.

lm-eval's vLLM model asks for the prompt log-probabilities of every whole (context, choice)
sequence, and vLLM turns prefix caching off for such requests (`SamplingParams.
skip_reading_prefix_cache` defaults to True when `prompt_logprobs` is set: vllm/sampling_params.py),
because a position served from the cache gets no log-probability (None). So every choice
recomputes its whole context.

`SharedPrefixVLLM` scores in two rounds: first one (context, choice) per distinct context, which
fills the prefix cache; then the other choices with cache reading on. vLLM reuses whole cached
blocks (128 tokens on CPU, 16 on a GPU), so the context's full blocks are not recomputed.

Which positions get a log-probability when the cache is read (vLLM 0.32,
`GPUModelRunner._get_prompt_logprobs_dict`, which the CPU runner inherits): the request's prompt
log-probability rows are allocated with `LogprobsTensors.empty_cpu` (torch.empty, one row per
position 1..n-1) and only rows from `request.num_computed_tokens` (the cached count C) on are
written. Row C-1, the log-probability of token C, needs the hidden state of position C-1, which
the cache skipped. So token k gets a computed value only when k >= C + 1; the rows before hold
whatever memory the allocator returned: random ids (the "entries lacking their token" this scorer
used to catch), or, for a recycled buffer, an earlier request's numbers. That is why
vLLM skips cache reading for prompt log-probabilities by default. Here a request counts only when
its cache hit stopped before its last context token (C < len(context)): then every continuation
token is computed. Any other request (the cache reached into the continuation, because another
choice shares its first tokens past a block boundary, or the context is a whole number of blocks)
is scored again with cache reading off. The numbers are therefore lm-eval's own.
"""

from __future__ import annotations

from lm_eval.models.vllm_causallms import VLLM

from harness.engines.scoring import ScoringCounts
from harness.engines.vllm_args import scoring_params

CONTEXTS_PER_ROUND = 64  # contexts whose blocks must stay cached between the two rounds


class SharedPrefixVLLM(VLLM):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("enable_prefix_caching", True)  # the two rounds below need it
        super().__init__(*args, **kwargs)
        self.counts = ScoringCounts()

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False):
        if self.lora_request is not None:  # LoRA + prompt logprobs: one request per step (vLLM issue 16668)
            return super()._loglikelihood_tokens(requests, disable_tqdm)
        max_len = self.max_length - 1  # vLLM requires at least one generation token
        results: list = [None] * len(requests)
        by_context: dict[tuple[int, ...], list[int]] = {}
        too_long: list[int] = []
        for i, (_, context, continuation) in enumerate(requests):
            if len(context) + len(continuation) > max_len:
                too_long.append(i)  # lm-eval truncates these from the left: its own path handles them
            else:
                by_context.setdefault(tuple(context), []).append(i)
        for context, members in by_context.items():
            self.counts.contexts += 1
            self.counts.tokens_unique += len(context) + sum(len(requests[i][2]) for i in members)
        if too_long:
            for i, answer in zip(too_long, super()._loglikelihood_tokens([requests[i] for i in too_long], disable_tqdm)):
                results[i] = answer
        groups = list(by_context.values())
        for start in range(0, len(groups), CONTEXTS_PER_ROUND):
            chunk = groups[start : start + CONTEXTS_PER_ROUND]
            self._score(requests, [g[0] for g in chunk], results, read_cache=False)
            missed = self._score(requests, [i for g in chunk for i in g[1:]], results, read_cache=True)
            self._score(requests, missed, results, read_cache=False)
        for i, answer in enumerate(results):
            if requests[i][0] is not None and i not in too_long:
                self.cache_hook.add_partial("loglikelihood", requests[i][0], answer)
        return results

    def _score(self, requests, indices: list[int], results: list, read_cache: bool) -> list[int]:
        """Fill results[i] for `indices`; return those whose cache hit reached a continuation token's log-probability."""
        from vllm import SamplingParams

        if not indices:
            return []
        params = SamplingParams(**scoring_params(read_cache))
        prompts = [requests[i][1] + requests[i][2] for i in indices]
        outputs = self._model_generate(requests=prompts, generate=True, sampling_params=params)
        missed = []
        for i, tokens, output in zip(indices, prompts, outputs, strict=True):
            context_len = len(requests[i][1])
            cached = output.num_cached_tokens or 0
            self.counts.tokens_processed += len(tokens) - cached
            if cached >= context_len:  # token `context_len`'s row was never computed (module docstring)
                missed.append(i)
                self.counts.rescored += 1
                continue
            results[i] = self._parse_logprobs(tokens=tokens, outputs=output, ctxlen=context_len)
            self.counts.requests += 1
            self.counts.tokens_per_pair += len(tokens)
        return missed
