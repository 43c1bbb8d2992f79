"""Scoring each multiple-choice context once gives lm-eval's own log-likelihoods, from fewer tokens."""

from __future__ import annotations

import pytest

from harness.engines.scoring import SharedContextHFLM

CONTEXTS = [
    "Classify the topic of the text.\nText: the cat sees a big red house from the tree\nTopic:",
    "P: the dog runs to the water\nQ: where does the dog run?\nA: house\nB: water\nC: sky\nD: tree\nAnswer:",
]
CHOICES = [
    [" science/technology", " travel", " politics", " sports", " health", " entertainment", " geography"],
    [" A", " B", " C", " D"],
]


def _instances():
    from lm_eval.api.instance import Instance

    pairs = [(ctx, choice) for ctx, choices in zip(CONTEXTS, CHOICES) for choice in choices]
    return [Instance("loglikelihood", {}, pair, idx) for idx, pair in enumerate(pairs)]


@pytest.fixture(scope="module")
def plain_and_shared(tiny_llama):
    from lm_eval.models.huggingface import HFLM

    args = dict(pretrained=str(tiny_llama), dtype="float32", device="cpu", batch_size=4, max_length=256)
    return HFLM(**args), SharedContextHFLM(**args)


def test_loglikelihoods_match_lm_eval(plain_and_shared):
    plain, shared = plain_and_shared
    expected = plain.loglikelihood(_instances(), disable_tqdm=True)
    got = shared.loglikelihood(_instances(), disable_tqdm=True)
    assert len(got) == len(expected) == 11
    for (ll, greedy), (ll_ref, greedy_ref) in zip(got, expected):
        assert ll == pytest.approx(ll_ref, abs=1e-4)
        assert greedy == greedy_ref
    # Order matters: each answer belongs to its own (context, choice).
    assert [round(x, 3) for x, _ in got] != sorted(round(x, 3) for x, _ in got)


def test_each_context_runs_once(plain_and_shared):
    _, shared = plain_and_shared
    shared.counts.__init__()
    shared.loglikelihood(_instances(), disable_tqdm=True)
    c = shared.counts
    assert c.requests == 11 and c.contexts == 2
    assert c.tokens_processed <= 1.3 * c.tokens_unique
    # one forward per (context, choice) would have run 448 tokens here: ~3x (2.9x with the batch padding)
    assert c.tokens_per_pair > 2.5 * c.tokens_processed


def test_too_long_requests_fall_back_to_lm_eval(tiny_llama):
    """A (context, choice) longer than the window is truncated from the left exactly as lm-eval does."""
    from lm_eval.models.huggingface import HFLM

    args = dict(pretrained=str(tiny_llama), dtype="float32", device="cpu", batch_size=4, max_length=16)
    instances = _instances()[:3]
    expected = HFLM(**args).loglikelihood(instances, disable_tqdm=True)
    shared = SharedContextHFLM(**args)
    got = shared.loglikelihood(instances, disable_tqdm=True)
    assert [x for x, _ in got] == pytest.approx([x for x, _ in expected], abs=1e-4)
    assert shared.counts.contexts == 0
