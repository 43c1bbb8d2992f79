"""The pairwise judge (position swapping) and the held-out disjointness check."""

from __future__ import annotations

import pytest

from harness.evaluation import judge
from harness.evaluation.disjoint import HeldOutDoc, check_disjoint, heldout_docs
from harness.core.errors import HarnessError
from harness.evaluation.registry import get_suite

ITEMS = [("cs", "Napiš báseň.", "BASE answer", "ADAPTER answer"), ("cs", "Vysvětli to.", "BASE two", "ADAPTER two")]


def test_verdict_parsing():
    assert judge.verdict("I prefer [[B]].") == "B" and judge.verdict("[[C]]") == "C"
    assert judge.verdict("no verdict") is None and judge.verdict("[[A]] or maybe [[B]]") is None


def test_position_swapping_cancels_a_position_bias():
    always_first = judge.judge_items(lambda prompts: ["[[A]]"] * len(prompts), ITEMS)
    assert [(j.win, j.consistent, j.invalid) for j in always_first] == [(0.5, 0.0, 0.0)] * 2


def test_a_judge_that_reads_the_answers_is_consistent():
    def prefers_adapter(prompts):
        return ["[[A]]" if p.index("ADAPTER") < p.index("BASE") else "[[B]]" for p in prompts]

    assert [(j.win, j.consistent) for j in judge.judge_items(prefers_adapter, ITEMS)] == [(1.0, 1.0)] * 2
    garbled = judge.judge_items(lambda prompts: ["???"] * len(prompts), ITEMS)
    assert [(j.win, j.invalid) for j in garbled] == [(0.5, 1.0)] * 2
    # the prompt names the language the answer should be in
    seen = []
    judge.judge_items(lambda prompts: seen.extend(prompts) or ["[[C]]"] * len(prompts), ITEMS[:1])
    assert "written in Czech" in seen[0] and seen[0].index("BASE") < seen[0].index("ADAPTER")
    assert seen[1].index("ADAPTER") < seen[1].index("BASE")


def test_disjointness_by_content_hash():
    docs = heldout_docs([t for t in get_suite("smoke").tasks if t.family == "instruct"], get_suite("smoke").data_dir)
    assert len(docs) == 12 and {d.task for d in docs} == {"instruct_en", "instruct_cs", "instruct_ja"}
    clean = [{"id": "r1", "messages": [{"role": "user", "content": "Translate: hello"}, {"role": "assistant", "content": "ahoj"}]}]
    check_disjoint(clean, docs)
    leaked = clean + [{"id": "r2", "messages": [{"role": "user", "content": "  " + docs[4].text.upper() + " "}]}]
    with pytest.raises(HarnessError, match=r"1 held-out evaluation item\(s\) appear in the training data, e.g. "
                                           r"instruct_cs doc fx-1 in training record r2"):
        check_disjoint(leaked, docs)
    check_disjoint(leaked, [HeldOutDoc("t", "1", "something else")])
