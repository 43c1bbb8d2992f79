"""What the report shows, once for both renderings: each section's title and texts, and its plain tables.

reports/markdown.py and reports/html.py walk `SECTIONS` in order and differ only in markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reports.cost import stage_rank
from reports.fmt import MACRO_LABEL, METRIC_NAMES, SIGNIFICANCE, count, duration

Table = tuple[list[str], list[list[str]]]  # header, rows of cell texts


@dataclass(frozen=True)
class Section:
    anchor: str  # the HTML id the navigation bar links to
    title: str
    nav: str  # the navigation bar's shorter name
    lead: str = ""  # a paragraph under the title
    empty: str = ""  # said instead of the tables when the report has none
    footnote: str = ""  # a paragraph under the tables


@dataclass(frozen=True)
class Emphasis:
    """Lead text a renderer marks up: strong (Markdown **…**) or emphasised (*…*)."""

    text: str
    kind: Literal["strong", "em"]


class SignificanceMark:
    """Where the lead says how the rendering marks a significant delta (Markdown: bold; HTML: highlighted)."""


LeadPart = str | Emphasis | SignificanceMark


def cells_lead(settings: dict) -> list[LeadPart]:
    """The paragraph under the runs table: how to read a cell."""
    return [f"Cells: score with a {int(settings['ci_level'] * 100)}% {settings['interval']} "
            f"({settings['n_resamples']} resamples, seed {settings['seed']}). Accuracy-type metrics in %. The ",
            Emphasis(MACRO_LABEL, "strong"),
            " row averages the non-English languages every system has; English is under ",
            Emphasis("English retention", "em"),
            ". Deltas: ", SignificanceMark(),
            f" = paired-bootstrap p < {SIGNIFICANCE}; McN = exact McNemar p; ↑/↓/= items improved / regressed / unchanged."]


SYSTEMS = Section("systems", "Systems", "Systems")
SCORES = Section("scores", "Scores", "Scores")
DELTAS = Section("deltas", "Deltas", "Deltas", empty="No comparisons: a delta needs a base-model evaluation "
                 "(or a translate_sft run) and an adapter.")
RETENTION = Section("retention", "English retention", "English retention",
                    empty="No English tasks with both a base and an adapter evaluation.")
BUDGET = Section("budget", "Training budget", "Budget", lead=(
    "Equal budgets: every trained run should take the same optimizer steps on the same records per step; "
    "⚠ marks a figure more than 10% from the comparison's reference."))
COST = Section("cost", "Cost per run", "Cost", footnote=(
    "GPU hours: wall time × GPUs, summed over the stages that run the model (data, train, evaluate) "
    "when the device is a GPU; the data and evaluate stages count as run on the train stage's device. "
    "— when no stage ran on a GPU (or the run did not train, so its device is unknown)."))
SIGNATURES = Section("signatures", "sacreBLEU signatures", "Signatures", empty="No sacreBLEU metrics in these runs.")
NOTES = Section("notes", "Notes", "Notes")  # only when the report has notes
SECTIONS = (SYSTEMS, SCORES, DELTAS, RETENTION, BUDGET, COST, SIGNATURES, NOTES)


def shown(report: dict) -> list[Section]:
    return [s for s in SECTIONS if s is not NOTES or report["notes"]]


def labelled_rows(table: dict) -> list[tuple[str, dict, bool]]:
    """(row label, cells, is the macro row) for a score or delta table, the macro average last."""
    return [(r["label"], r["cells"], False) for r in table["rows"]] + [(MACRO_LABEL, table["macro"]["cells"], True)]


def retention_task(entry: dict) -> str:
    return f"{entry['family']}{' ' + entry['group'] if entry['group'] else ''} · {entry['metric_label']}"


def runs_table(report: dict) -> Table:
    keys = ("name", "trainer", "model", "suite", "engine", "seed")
    return ["run", "trainer", "model", "suite", "engine", "seed"], [[str(r[k]) for k in keys] for r in report["runs"]]


def systems_table(report: dict) -> Table:
    header = ["system", "trainer", "runs", "seeds", "settings that set it apart"]
    rows = [[s["label"], s["trainer"], ", ".join(s["runs"]), ", ".join(str(x) for x in s.get("seeds") or []),
             ", ".join(f"{k}={v}" for k, v in (s.get("differs") or {}).items()) or "—"]
            for s in report["systems"]]
    return header, rows


def budget_table(report: dict) -> Table:
    header = ["run", "trainer", "seed", "train records", "steps", "records/step", "training tokens", "tokens/step",
              "answer tokens", "dropped cut-off answers", "wall"]

    def mark(row: dict, field: str, text: str) -> str:
        return f"{text} ⚠" if field in row["unequal"] else text

    rows = [[r["run"], r["trainer"], str(r["seed"]), count(r["records"]), mark(r, "steps", count(r["steps"])),
             mark(r, "records_per_step", count(r["records_per_step"])), count(r["train_tokens"]),
             mark(r, "tokens_per_step", count(r["tokens_per_step"])), count(r["answer_tokens"]),
             count(r["dropped_truncated_answers"]), duration(r["wall_s"])]
            for r in report.get("budget", []) if r["trains"]]
    return header, rows


def cost_table(report: dict) -> Table:
    stages: list[str] = []
    for cost in report["cost"]:
        stages += [s for s in cost["wall_s"] if s not in stages]
    stages.sort(key=stage_rank)
    header = ["run", "trainer"] + [f"{s} wall" for s in stages] + [
        "total wall", "train records", "train tokens", "steps", "device", "GPUs", "GPU hours"]
    rows = [[cost["run"], cost["trainer"]] + [duration(cost["wall_s"].get(s)) for s in stages] + [
            duration(cost["total_wall_s"]), count(cost["records"]), count(cost["train_tokens"]), count(cost["steps"]),
            str(cost["device"] or "—"), count(cost["gpus"]),
            f"{cost['gpu_hours']:.2f}" if cost["gpu_hours"] is not None else "—"]
            for cost in report["cost"]]
    return header, rows


def signature_rows(report: dict) -> list[tuple[str, str, str]]:
    """(metric name, sacreBLEU signature, families) for each signature the runs used."""
    return [(METRIC_NAMES.get(metric, metric), s["signature"], ", ".join(s["families"]))
            for metric, signatures in report["signatures"].items() for s in signatures]
