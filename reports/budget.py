"""The training budget of each run, and whether the runs of one report were trained on equal ones.

A comparison is fair only at an equal budget: the same optimizer steps, with tokens per step close.
Records per step are equal too where batches are sized in records (batch_size); a run whose batches
were sized in tokens (tokens_per_step, what a comparison does by default) takes the records that
give it the reference's tokens, so its records per step are not compared. What a comparison
equalises is the tokens the model reads per step (prompt and answer); the loss counts only answer
tokens, which it does not equalise, so answer tokens per step are shown and compared too. The rows
come from the manifest (data and train stages). Budgets are compared within a seed (a comparison
sets each seed's budget from that seed's budget member): a run whose steps, records per step, tokens
per step or answer tokens per step differ from its seed's reference by more than `TOLERANCE` is
flagged, and the report says so beside the tables.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any

from reports.cost import own_walls, reused
from reports.load import Run

TOLERANCE = 0.10  # relative difference that makes budgets unequal
COMPARED = (("steps", "optimizer steps"), ("records_per_step", "records per step"), ("tokens_per_step", "tokens per step"),
            ("answer_tokens_per_step", "answer tokens per step (the tokens the loss counts)"))


def budget_row(run: Run) -> dict[str, Any]:
    data, train = run.stages.get("data") or {}, run.stages.get("train") or {}
    stages = own_walls(run, reused(run))  # the cost table's walls: a reused evaluation is not this run's time
    walls = [e.get("wall_s") for e in stages.values() if isinstance(e.get("wall_s"), (int, float))]
    trainer_stats = data.get("trainer_stats") or {}
    return {
        "run": run.name,
        "trainer": run.trainer,
        "seed": run.spec.get("seed"),
        "trains": bool(train),
        "records": data.get("records"),
        "steps": train.get("steps"),
        "records_per_step": train.get("records_per_step"),
        "sized_in_tokens": bool(train.get("tokens_per_step_target")),  # records per step follow from tokens per step
        "train_tokens": train.get("input_tokens"),  # prompt and answer tokens the model was trained on
        "answer_tokens": train.get("train_tokens"),  # the tokens the loss counted
        "tokens_per_step": train.get("tokens_per_step"),
        "answer_tokens_per_step": _per_step(train.get("train_tokens"), train.get("steps")),
        "records_seen": train.get("examples_seen"),  # records the steps took (a repeat counts again)
        "records_trained": train.get("examples"),  # records training used (after the held-out split and drops)
        "epochs": _epochs(train),
        "dropped_truncated_answers": trainer_stats.get("dropped_truncated_answers"),
        "dropped_wrong_language_answers": trainer_stats.get("dropped_wrong_language_answers"),
        "wall_s": round(sum(walls), 3) if walls else None,
        "unequal": [],
    }


def _epochs(train: dict) -> float | None:
    """Passes over the training records the steps amounted to: records taken / records there, so a run
    whose short last batch was dropped shows under one pass (trainers/lora.py's `epochs` counts steps)."""
    seen, records = train.get("examples_seen"), train.get("examples")
    if isinstance(seen, (int, float)) and isinstance(records, (int, float)) and records > 0:
        return round(seen / records, 3)
    return train.get("epochs")


def _per_step(total: Any, steps: Any) -> float | None:
    if not isinstance(total, (int, float)) or not isinstance(steps, (int, float)) or steps <= 0:
        return None
    return round(total / steps, 1)


def _reference(values: list[float]) -> float | None:
    if not values:
        return None
    counts = Counter(values).most_common()
    if counts[0][1] > 1 and (len(counts) == 1 or counts[0][1] > counts[1][1]):
        return counts[0][0]  # the budget most runs share
    return statistics.median(values)


def compare_budgets(runs: list[Run]) -> tuple[list[dict], list[str]]:
    """Budget rows, each with the fields in which it is unequal, and one note per unequal run."""
    rows = [budget_row(r) for r in runs]
    by_seed: dict[Any, list[dict]] = {}
    for r in rows:
        if r["trains"]:
            by_seed.setdefault(r["seed"], []).append(r)
    seeded = len(by_seed) > 1
    notes = []
    for field, what in COMPARED:
        for seed, training in by_seed.items():
            compared = [r for r in training if not (field == "records_per_step" and r["sized_in_tokens"])]
            ref = _reference([r[field] for r in compared if isinstance(r[field], (int, float))])
            if not ref:
                continue
            whose = f"seed {seed}'s reference" if seeded else "the comparison's reference"
            for r in compared:
                value = r[field]
                if isinstance(value, (int, float)) and abs(value - ref) / ref > TOLERANCE:
                    r["unequal"].append(field)
                    notes.append(f"Unequal budget: run {r['run']} trained with {value:g} {what}, {whose} is {ref:g} "
                                 f"(more than {TOLERANCE:.0%} apart); its deltas mix method and budget.")
    return rows, notes
