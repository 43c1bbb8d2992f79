"""Pairwise judge for the open-ended tasks: the adapter's answer against the base model's, both orders.

For each instruction the judge model sees the two answers twice, once with the base model's answer
as "A" and once as "B" (position swapping, because judges favour a position). Each order's verdict
scores the adapter 1 (preferred), 0.5 (tie, or a verdict that cannot be read) or 0; the item metric
`judge_win` is the mean of the two orders, so 0.5 means no preference. `judge_consistent` is 1 when
the two orders name the same answer (or both a tie), `judge_invalid` the share of unreadable verdicts.
The metrics are written into the adapter's samples.jsonl and scores.json, so the report and the
check show them like any other metric. The judge prompt and the verdict format are ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness.engines import get_engine, pick_engine
from harness.core.errors import HarnessError
from harness.core.langs import get_language
from harness.core.runstore import RunPaths, finished_tasks, read_json, read_jsonl, task_samples, task_scores
from harness.evaluation.evalcache import write_entry

Generate = Callable[[list[str]], list[str]]  # chat prompts (user turns) -> judge outputs
JUDGED_FAMILIES = ("instruct",)
PROMPT = (
    "You are comparing two answers to the same instruction. The instruction is in {language}; a good "
    "answer is helpful, correct and written in {language}.\n\n"
    "[Instruction]\n{instruction}\n\n[Answer A]\n{a}\n\n[Answer B]\n{b}\n\n"
    "Which answer is better? Reply with exactly one verdict: [[A]], [[B]] or [[C]] for a tie."
)
_VERDICT = re.compile(r"\[\[([ABC])\]\]")


def verdict(text: str) -> str | None:
    """'A', 'B', 'C' (tie), or None when the output holds no verdict or contradicting ones."""
    found = set(_VERDICT.findall(text))
    return found.pop() if len(found) == 1 else None


@dataclass(frozen=True)
class Judged:
    win: float
    consistent: float
    invalid: float


def combine(base_first: str | None, adapter_first: str | None) -> Judged:
    """Scores for the adapter from the verdicts of both orders (base as A, then adapter as A)."""
    def points(v: str | None, adapter_label: str) -> float:
        return 0.5 if v in (None, "C") else float(v == adapter_label)

    p1, p2 = points(base_first, "B"), points(adapter_first, "A")
    return Judged(win=(p1 + p2) / 2, consistent=float(p1 == p2),
                  invalid=((base_first is None) + (adapter_first is None)) / 2)


def judge_items(generate: Generate, items: list[tuple[str, str, str, str]]) -> list[Judged]:
    """items: (language code, instruction, base answer, adapter answer)."""
    prompts = []
    for lang, instruction, base, adapter in items:
        language = get_language(lang).name
        prompts.append(PROMPT.format(language=language, instruction=instruction, a=base, b=adapter))
        prompts.append(PROMPT.format(language=language, instruction=instruction, a=adapter, b=base))
    outputs = generate(prompts)
    if len(outputs) != len(prompts):
        raise HarnessError(f"judge returned {len(outputs)} outputs for {len(prompts)} prompts")
    return [combine(verdict(outputs[2 * i]), verdict(outputs[2 * i + 1])) for i in range(len(items))]


def judge_run(run_dir: Path, generate: Generate, judge_name: str) -> int:
    """Judge every open-ended task the run evaluated for both base and adapter; returns tasks judged."""
    judged = 0
    paths = RunPaths(Path(run_dir))
    base_dir, adapter_dir = paths.eval_dir("base"), paths.eval_dir("adapter")
    for task_dir in finished_tasks(adapter_dir):
        scores_path = task_scores(task_dir)
        scores = read_json(scores_path)
        base_samples = task_samples(base_dir / task_dir.name)
        if scores.get("family") not in JUDGED_FAMILIES or not base_samples.exists():
            continue
        rows = read_jsonl(task_samples(task_dir))
        base = {r["doc_hash"]: r for r in read_jsonl(base_samples)}
        missing = [r["doc_id"] for r in rows if r["doc_hash"] not in base]
        if missing:
            raise HarnessError(f"{task_dir.name}: the base model has no answer for doc(s) {missing[:5]}")
        items = [(scores["lang"], r.get("instruction", ""), base[r["doc_hash"]]["raw_output"], r["raw_output"]) for r in rows]
        results = judge_items(generate, items)
        for row, res in zip(rows, results):
            row["metrics"].update(judge_win=res.win, judge_consistent=res.consistent, judge_invalid=res.invalid)
        for name in ("judge_win", "judge_consistent", "judge_invalid"):
            scores["metrics"][name] = sum(r["metrics"][name] for r in rows) / len(rows)
        scores["judge"] = judge_name
        write_entry(task_dir, scores, rows)  # with its integrity record: reports verify it
        judged += 1
    return judged


def chat_generator(model_dir: Path, engine: str = "auto", max_new_tokens: int = 64) -> Generate:
    """Greedy generation through the judge's chat template: vLLM (default) or HF transformers."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def as_chat(prompt: str) -> str:
        if not getattr(tokenizer, "chat_template", None):
            return prompt
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)

    return get_engine(pick_engine(engine, "generation")).prompt_generator(model_dir, tokenizer, as_chat, max_new_tokens)
