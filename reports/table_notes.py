"""Notes printed under each score table: the scale and whether the chat template was applied; and,
once per report, a BLEU that is not spBLEU (so not comparable with published FLORES-200 numbers)."""

from __future__ import annotations

import re

from reports.load import TaskResult

_FALLBACK = re.compile(r"requested tok:(\S+), used tok:([^\s:,]+)")

SCALES = {
    "bleu": "BLEU, 0-100",
    "chrf": "chrF++, 0-100",
    "comet": "COMET, the model's own scale (about 0-1 for Unbabel/wmt22-comet-da); an empty output scores 0",
    "acc": "accuracy, %",
    "acc_norm": "accuracy, %",
    "lang_match": "% of outputs identified (py3langid) as the task's target language; empty outputs count as misses",
    "degenerate": "% of outputs that echo the prompt (instruction or source) or repeat one phrase (lower is better)",
    "empty": "% of outputs with nothing left after the extraction rule (lower is better)",
    "preamble": "% of outputs whose first line is a chat preamble (lower is better)",
    "cut_at_limit": "% of outputs that used the whole generation budget (lower is better)",
    "answer_words": "mean answer length in words (characters / 2 for text without spaces)",
    "judge_win": "judge preference for the system over the base model, mean of both answer orders: 50% = no preference",
    "judge_consistent": "% of items whose verdict survives swapping the answers' positions",
    "judge_invalid": "% of judge verdicts that could not be read (counted as ties)",
}


def table_notes(metric: str, results: list[tuple[str, TaskResult]]) -> list[str]:
    """results: (system label, result) for every cell of the table."""
    notes = [f"Scale: {SCALES.get(metric, metric)}."]
    chat = {label: bool(res.scores.get("chat_template")) for label, res in results if "chat_template" in res.scores}
    if chat and len(set(chat.values())) == 1:
        notes.append("Chat template applied: " + ("yes." if next(iter(chat.values())) else "no (plain prompt)."))
    elif chat:
        notes.append("Chat template applied for: " + ", ".join(sorted({k for k, v in chat.items() if v})) + "; "
                     "not for: " + ", ".join(sorted({k for k, v in chat.items() if not v})) + ".")
    return notes


def bleu_fallback_caveats(systems: list) -> list[str]:
    """The spBLEU fallback, said once for the whole report: which tokenizer was asked for and which
    scored, and the fix (the raw reason, with its machine paths, stays in scores.json)."""
    found = set()
    for system in systems:
        for result in system.run.variant(system.variant).values():
            match = _FALLBACK.match(str((result.signatures or {}).get("bleu_fallback") or ""))
            if match:
                found.add(match.groups())
    return [f"BLEU is not spBLEU here: tok:{asked} was asked for but unavailable, so BLEU used tok:{used}; "
            "these BLEU numbers are not comparable with published FLORES-200 spBLEU. "
            "Fix: `harness fetch` brings the SentencePiece model, then rerun."
            for asked, used in sorted(found)]
