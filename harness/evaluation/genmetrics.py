"""Metrics added to every generation task after lm-eval scored it: language fidelity, output hygiene,
answer length and (when configured) COMET.

Each is an item metric: a number per sample (samples.jsonl "metrics") and its mean in
scores.json "metrics", so the report's tables, bootstrap intervals and paired tests and
`harness check` treat them like accuracy:
  lang_match    1 when the scored text is identified (harness.evaluation.langid) as the task's target language
  empty, preamble, cut_at_limit, degenerate   see harness.evaluation.hygiene (degenerate: an echo of the prompt or
                repetitive text, which lang_match alone would count as in the right language)
  comet         COMET of (source, prediction, reference), FLORES tasks only, when SDRRL_COMET_MODEL is set
Lower is better for LOWER_IS_BETTER; higher for the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.evaluation import comet, hygiene, langid
from harness.evaluation.registry import TaskInfo, read_yaml

LOWER_IS_BETTER = ("empty", "preamble", "cut_at_limit", "degenerate")
VERSION = 2  # part of the evaluation key: bump when a metric here changes meaning (2: degenerate added)


@dataclass
class GenSettings:
    max_gen_toks: int | None  # the budget the outputs were generated with
    count_tokens: Callable[[str], int] | None = None  # None: cut_at_limit is not reported
    comet: comet.CometSettings | None = None


def task_max_gen_toks(task: TaskInfo, cap: int | None) -> int | None:
    """The generation budget a task runs with: its YAML's own max_gen_toks, capped by the engine setting
    (--max-gen-toks): the smaller of the two wins. A task naming none runs with the cap (None: the
    engine's default)."""
    value = (read_yaml(task.yaml_path).get("generation_kwargs") or {}).get("max_gen_toks")
    own = int(value) if value else None
    if cap and own:
        return min(int(cap), own)
    return int(cap) if cap else own


def scored_text(task: TaskInfo, row: dict) -> str:
    """What language fidelity is judged on: the extracted translation, or the answer minus preamble."""
    if "reference" in row and task.family.startswith("flores200"):
        return str(row.get("prediction") or "")
    return "\n".join(hygiene.content_lines(row.get("raw_output", "")))


def enrich(task: TaskInfo, rows: list[dict], metrics: dict[str, float], settings: GenSettings) -> None:
    """Add the item metrics to `rows` (in place) and their means to `metrics`."""
    if task.kind != "generation" or not rows:
        return
    expected = str(task.metadata.get("target_lang") or task.lang)
    for row in rows:
        raw = str(row.get("raw_output", ""))
        text = scored_text(task, row)
        n_tokens = settings.count_tokens(raw) if settings.count_tokens else None
        prompt = str(row.get("instruction") or row.get("source") or "")
        item = hygiene.hygiene(raw, text, n_tokens, settings.max_gen_toks, prompt).as_metrics()
        item["lang_match"] = langid.lang_match(text, expected)
        row["detected_lang"] = langid.detect(text)
        row["metrics"] = {**row.get("metrics", {}), **item}
    if settings.comet is not None and all(r.get("source") and r.get("reference") for r in rows):
        values = comet.score(settings.comet, [(r["source"], r["prediction"], r["reference"]) for r in rows])
        for row, value in zip(rows, values):
            row["metrics"]["comet"] = value
    names = sorted({k for r in rows for k in r["metrics"]} - set(metrics))
    for name in names:
        values = [r["metrics"][name] for r in rows if name in r["metrics"]]
        if len(values) == len(rows):
            metrics[name] = sum(values) / len(values)
