"""Does vLLM's prefix cache serve prompt log-probabilities? (It does not: cached positions return None.)

    python benchmarks/vllm_prefix_logprobs.py

One 126-token context and SIB-200's 7 labels on the tiny test Llama (built offline), scored with
`prompt_logprobs=1` twice: with vLLM's default for such requests (skip_reading_prefix_cache=True)
and with cache reading on. Prints, per choice: prompt length, tokens served from the cache, the
continuation's log-likelihood, or the continuation's per-token entries where some are None.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))


def main() -> int:
    from harness.engines import prepare_vllm_env

    prepare_vllm_env()
    from tiny_model import build_tiny_llama
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    model = build_tiny_llama(Path(tempfile.mkdtemp()) / "tiny")
    tok = AutoTokenizer.from_pretrained(model)
    context = tok("the cat sees a big red house from the tree " * 12 + "Topic:")["input_ids"]
    labels = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]
    choices = [tok(" " + w)["input_ids"] for w in labels]
    prompts = [{"prompt_token_ids": context + c} for c in choices]
    llm = LLM(model=str(model), dtype="float32", max_model_len=512, enforce_eager=True, enable_prefix_caching=True, seed=0)
    print("block size", llm.llm_engine.vllm_config.cache_config.block_size, "context tokens", len(context))
    for skip in (True, False):
        params = SamplingParams(temperature=0, prompt_logprobs=1, max_tokens=1, detokenize=False, skip_reading_prefix_cache=skip)
        for out, cont, prompt in zip(llm.generate(prompts, params, use_tqdm=False), choices, prompts):
            n = len(prompt["prompt_token_ids"])
            entries = [out.prompt_logprobs[n - len(cont) + i] for i in range(len(cont))]
            missing = sum(e is None for e in entries)
            total = None if missing else round(sum(e[t].logprob for e, t in zip(entries, cont)), 5)
            print(f"skip_reading_prefix_cache={skip}: prompt {n}, cached {out.num_cached_tokens}, "
                  f"continuation log-likelihood {total}, continuation entries None: {missing}/{len(cont)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
