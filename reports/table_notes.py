"""Notes printed under each score table: the scale, whether the chat template was applied, and a BLEU
that is not spBLEU (so not comparable with published FLORES-200 numbers)."""

from __future__ import annotations

from reports.load import TaskResult

SCALES = {
    "bleu": "BLEU, 0-100",
    "chrf": "chrF++, 0-100",
    "comet": "COMET, the model's own scale (about 0-1 for Unbabel/wmt22-comet-da); an empty output scores 0",
    "acc": "accuracy, %",
    "acc_norm": "accuracy, %",
    "lang_match": "% of outputs identified (py3langid) as the task's target language; empty outputs count as misses",
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
    if metric == "bleu":
        fallbacks = sorted({res.signatures["bleu_fallback"] for _l, res in results if res.signatures.get("bleu_fallback")})
        if fallbacks:
            notes.append("Not spBLEU: " + "; ".join(fallbacks) + ". These numbers are not comparable with published "
                         "FLORES-200 spBLEU (tok:flores200); `harness fetch` brings the SentencePiece model.")
    return notes
