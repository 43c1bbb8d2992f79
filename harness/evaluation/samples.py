"""lm-eval's output, normalised: plain metric names, and one row per item for samples.jsonl.

Per item: the scored output, plus continuous signals the regression check compares
(reports/check.py): sentence chrF++ and a hash of the raw output for generation; the gold and
the chosen choice's log-likelihood for multiple choice. The prompt the model saw (and a multiple-choice
item's choices) go along for the report's item explorer (reports/explorer.py).
"""

from __future__ import annotations

import hashlib
from typing import Any


def metric_values(task_result: dict) -> dict[str, float]:
    """lm-eval reports 'acc,none' and 'acc_stderr,none'; keep plain names and numbers."""
    values: dict[str, float] = {}
    for key, value in task_result.items():
        if "," not in key or not isinstance(value, (int, float)):
            continue
        name, _filter = key.split(",", 1)
        values[name] = float(value)
    return values


def _corpus_pair(sample: dict) -> tuple[str, str] | None:
    """lm-eval's corpus metrics log (reference, hypothesis, ...) per document: the scored hypothesis."""
    for name in sample.get("metrics", []):
        value = sample.get(name)
        if isinstance(value, (list, tuple)) and len(value) >= 2 and all(isinstance(v, str) for v in value[:2]):
            return value[0], value[1]
    return None


def sample_rows(samples: list[dict], kind: str) -> list[dict]:
    """One row per item, by doc_id (see the module's docstring)."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF(word_order=2)  # chrF++, as the tasks' corpus metric
    rows = []
    for sample in sorted(samples, key=lambda s: s["doc_id"]):
        numeric = {m: float(sample[m]) for m in sample.get("metrics", []) if isinstance(sample.get(m), (int, float))}
        row: dict[str, Any] = {"doc_id": sample["doc_id"], "doc_hash": sample["doc_hash"], "target": sample["target"],
                               "metrics": numeric, **_prompt_fields(sample.get("arguments") or [], kind)}
        responses = sample.get("filtered_resps") or []
        if kind == "generation":
            row.update(_generation_fields(sample, responses, chrf))
        else:
            row.update(_choice_fields(sample, responses))
        rows.append(row)
    return rows


def _prompt_fields(arguments: list, kind: str) -> dict[str, Any]:
    """The prompt (the first request's context) and, for multiple choice, each request's continuation.
    lm-eval keeps each request's args as a tuple; its saved files write {"gen_args_0": {"arg_0": ...}}."""
    if isinstance(arguments, dict):
        arguments = [[v[k] for k in sorted(v)] for v in arguments.values() if isinstance(v, dict)]
    args = [a for a in arguments if isinstance(a, (list, tuple)) and a]
    if not args:
        return {}
    fields: dict[str, Any] = {"prompt": str(args[0][0])}
    if kind != "generation":
        fields["choices"] = [str(a[1]).strip() for a in args if len(a) > 1]
    return fields


def _generation_fields(sample: dict, responses: list, chrf: Any) -> dict[str, Any]:
    raw = responses[0] if responses else ""
    raw = raw if isinstance(raw, str) else str(raw)
    pair = _corpus_pair(sample)
    reference, prediction = pair if pair else (str(sample["target"]), raw)
    fields: dict[str, Any] = {"reference": reference, "prediction": prediction, "raw_output": raw}
    fields["chrf"] = round(float(chrf.sentence_score(prediction, [reference]).score), 4)
    fields["output_sha256"] = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    doc = sample.get("doc") or {}
    fields.update({k: doc[k] for k in ("source", "instruction") if k in doc})  # for COMET and the judge
    return fields


def _choice_fields(sample: dict, responses: list) -> dict[str, Any]:
    # multiple choice: one (loglikelihood, is_greedy) per choice; the prediction is the argmax
    lls = [r[0] if isinstance(r, (list, tuple)) else r for r in responses]
    prediction = max(range(len(lls)), key=lls.__getitem__) if lls else None
    loglikelihoods = [round(float(x), 6) for x in lls]
    target = sample["target"]
    gold = int(target) if str(target).isdigit() else target
    return {
        "prediction": prediction,
        "loglikelihoods": loglikelihoods,
        "gold_ll": loglikelihoods[gold] if isinstance(gold, int) and 0 <= gold < len(lls) else None,
        "chosen_ll": loglikelihoods[prediction] if lls else None,
    }
