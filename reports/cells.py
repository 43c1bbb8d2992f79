"""The cells of a run that a baseline records and the check compares.

Every cell has a key and a kind; cells of one kind share one tolerance (reports/check.py):

| key | kind | what |
|---|---|---|
| `<variant>/<task>/<metric>` | the metric (acc, bleu, chrf, ...) | the task's aggregate score |
| `<variant>/<task>/#<doc_id>/gold_ll` | gold_ll | log-likelihood of the gold choice (multiple choice) |
| `<variant>/<task>/#<doc_id>/chosen_ll` | chosen_ll | log-likelihood of the chosen (argmax) choice |
| `<variant>/<task>/#<doc_id>/chrf` | item_chrf | sentence chrF++ of the output (generation) |
| `<variant>/<task>/#<doc_id>/output` | output_sha256 | hash of the raw generated text |
| `heldout/<lang>/{base,adapter}_loss` | heldout_loss | held-out loss per answer token (harness/services/heldout.py) |
| `heldout/<lang>/loss_drop` | heldout_drop | base_loss - adapter_loss: > 0 when training took |
| `train/loss/<step>` | train_loss | the training loss curve, per optimizer step |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.core.runstore import RunPaths, read_json
from reports.load import Run, load_run

HASH_KIND = "output_sha256"
ITEM_SIGNALS = {"gold_ll": "gold_ll", "chosen_ll": "chosen_ll", "chrf": "item_chrf"}


@dataclass(frozen=True)
class Cell:
    kind: str
    value: float | str  # a number, or a hash for HASH_KIND
    n_samples: int | None = None  # aggregate cells: items behind the score


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None  # a baseline holds finite numbers only (reports.check.load_baseline)
    return float(v)


def _task_cells(run: Run) -> dict[str, Cell]:
    out: dict[str, Cell] = {}
    for variant, tasks in sorted(run.results.items()):
        for task, res in sorted(tasks.items()):
            for metric in res.metric_names():
                value = _number(res.metrics[metric])
                if value is not None:
                    out[f"{variant}/{task}/{metric}"] = Cell(metric, value, res.n_samples)
            for row in res.samples or []:
                item = f"{variant}/{task}/#{row.get('doc_id')}"
                for field, kind in ITEM_SIGNALS.items():
                    value = _number(row.get(field))
                    if value is not None:
                        out[f"{item}/{field}"] = Cell(kind, value)
                if isinstance(row.get(HASH_KIND), str):
                    out[f"{item}/output"] = Cell(HASH_KIND, row[HASH_KIND])
    return out


def _heldout_cells(run_dir: Path) -> dict[str, Cell]:
    path = RunPaths(run_dir).heldout_scores
    if not path.exists():
        return {}
    out: dict[str, Cell] = {}
    for lang, v in sorted(read_json(path).get("langs", {}).items()):
        base, adapter = _number(v.get("base_loss")), _number(v.get("adapter_loss"))
        if base is None or adapter is None:
            continue
        out[f"heldout/{lang}/base_loss"] = Cell("heldout_loss", base)
        out[f"heldout/{lang}/adapter_loss"] = Cell("heldout_loss", adapter)
        out[f"heldout/{lang}/loss_drop"] = Cell("heldout_drop", round(base - adapter, 6))
    return out


def _train_cells(run: Run) -> dict[str, Cell]:
    losses = run.stages.get("train", {}).get("losses") or []
    return {f"train/loss/{step}": Cell("train_loss", float(x)) for step, x in enumerate(losses, 1) if _number(x) is not None}


def run_cells(run_dir: Path) -> tuple[Run, dict[str, Cell]]:
    """The run (loaded with its samples) and all its cells, by key."""
    run = load_run(Path(run_dir))
    return run, {**_task_cells(run), **_heldout_cells(Path(run_dir)), **_train_cells(run)}
