"""vLLM scoring with context blocks reused: lm-eval's own log-likelihoods from fewer computed tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.slow
def test_shared_prefix_scores_equal_lm_eval_vllm(tiny_llama):
    """A subprocess (vLLM changes torch's threads): contexts over one 128-token block, 7 and 4 choices."""
    pytest.importorskip("vllm")
    script = textwrap.dedent(
        f"""
        import json
        from harness.engines import prepare_vllm_env
        prepare_vllm_env()
        from lm_eval.api.instance import Instance
        from lm_eval.models.vllm_causallms import VLLM
        from harness.engines.scoring_vllm import SharedPrefixVLLM
        contexts = ["Text: " + "the cat sees a big red house from the tree " * 40 + "Topic:",
                    "P: " + "the dog runs to the water and the sky is blue " * 30 + "Answer:"]
        choices = [[" science/technology", " travel", " politics", " sports", " health", " entertainment", " geography"],
                   [" A", " B", " C", " D"]]
        pairs = [(c, x) for c, xs in zip(contexts, choices) for x in xs]
        make = lambda: [Instance("loglikelihood", {{}}, p, i) for i, p in enumerate(pairs)]
        lm = SharedPrefixVLLM(pretrained={str(tiny_llama)!r}, dtype="float32", max_model_len=1024, enforce_eager=True, seed=0, batch_size="auto")
        shared = lm.loglikelihood(make(), disable_tqdm=True)
        # lm-eval's own path on the same engine: every request with cache reading off.
        requests = [((c, x), *lm._encode_pair(c, x)) for c, x in pairs]
        plain = VLLM._loglikelihood_tokens(lm, requests, disable_tqdm=True)
        print("RESULT=" + json.dumps({{"shared": shared, "plain": plain, "counts": lm.counts.__dict__}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("RESULT=")][0][len("RESULT="):])
    assert len(result["shared"]) == 11
    for (ll, greedy), (ll_ref, greedy_ref) in zip(result["shared"], result["plain"]):
        assert ll == pytest.approx(ll_ref, abs=1e-3) and greedy == greedy_ref
    counts = result["counts"]
    assert counts["requests"] == 11 and counts["contexts"] == 2
    assert counts["tokens_processed"] < 0.5 * counts["tokens_per_pair"]  # the context blocks were reused


@pytest.mark.slow
def test_a_cache_hit_reaching_the_continuation_is_rescored(tiny_llama):
    """vLLM computes token k's log-probability only when k > the cached count (harness/engines/scoring_vllm.py):
    a context of exactly one 128-token block, and two choices sharing 10 tokens across the block's end,
    both get cache hits that cover a continuation token. Those must be rescored, never read."""
    pytest.importorskip("vllm")
    script = textwrap.dedent(
        f"""
        import json
        from harness.engines import prepare_vllm_env
        prepare_vllm_env()
        from lm_eval.models.vllm_causallms import VLLM
        from harness.engines.scoring_vllm import SharedPrefixVLLM
        lm = SharedPrefixVLLM(pretrained={str(tiny_llama)!r}, dtype="float32", max_model_len=1024, enforce_eager=True, seed=0, batch_size="auto")
        ids = lm.tok_encode("the cat sees a big red house from the tree and the dog runs to the water " * 20)
        block, short = ids[:128], ids[:120]  # a whole block; 8 tokens short of one
        shared = ids[200:210]
        pairs = [(block, ids[300:302]), (block, ids[310:312]), (block, ids[320:321]),
                 (short, shared + ids[400:402]), (short, shared + ids[410:411]), (short, shared + ids[420:423])]
        requests = [((None, None), list(c), list(x)) for c, x in pairs]
        scored = lm._loglikelihood_tokens(requests, disable_tqdm=True)
        plain = VLLM._loglikelihood_tokens(lm, requests, disable_tqdm=True)
        print("RESULT=" + json.dumps({{"shared": scored, "plain": plain, "counts": lm.counts.__dict__}}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("RESULT=")][0][len("RESULT="):])
    for (ll, greedy), (ll_ref, greedy_ref) in zip(result["shared"], result["plain"], strict=True):
        assert ll == pytest.approx(ll_ref, abs=1e-3) and greedy == greedy_ref
    assert result["counts"]["rescored"] == 4  # the second and third choice of each context
