"""What the report shows, once for both renderings: each section's title and texts, and its plain tables.

reports/markdown.py and reports/html.py walk `SECTIONS` in order and differ only in markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from reports.cost import stage_rank
from reports.fmt import MACRO_LABEL, METRIC_NAMES, SIGNIFICANCE, UNDERPOWERED, count, duration

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
    mc = settings.get("multiple_comparisons") or {}
    return [f"Cells: score with a {int(settings['ci_level'] * 100)}% {settings['interval']} "
            f"({settings['n_resamples']} resamples, seed {settings['seed']}). Accuracy-type metrics in %. The ",
            Emphasis(MACRO_LABEL, "strong"),
            " row averages the non-English languages every system has; English is under ",
            Emphasis("English retention", "em"),
            ". Deltas: ", SignificanceMark(),
            f" = significant after correction (adj p < {SIGNIFICANCE}; {mc.get('method', 'no correction')}); "
            f"p = raw p of the paired permutation test (exact when few items differ; with several seeds the larger of it "
            f"and the seeds-then-items bootstrap p), adj p = adjusted, not testable = "
            f"left out of the correction because its smallest attainable p could not be significant (e.g. identical "
            f"outputs); [no interval: identical outputs] = the bootstrap had no spread; McN = exact McNemar p; ↑/↓/= items improved / regressed / "
            f"unchanged; MDD = smallest detectable difference, {(settings.get('power') or {}).get('formula', '')}; "
            f"{UNDERPOWERED} = not significant and underpowered (MDD above the minimum effect: a difference that size "
            f"could have been missed). Correction families: {mc.get('family', 'none')}."]


def headline_lead(report: dict) -> str:
    settings = report["settings"]
    mc, pw = settings["multiple_comparisons"], settings["power"]
    effects = ", ".join(f"{METRIC_NAMES.get(m, m)} {v:g}" for m, v in pw["min_effect"].items()
                        if any(h["metric"] == m for h in report["headline"]))
    return (f"Macro Δ: the mean over the non-English languages, with its 95% interval. ↑/↓: languages improved / "
            f"regressed significantly after {mc['method'].split(' (')[0]} correction (false discovery rate "
            f"{mc['fdr']:g}; family: per reference, every per-language test of the primary metrics). "
            f"{UNDERPOWERED} = not significant and underpowered: the smallest detectable difference "
            f"(MDD = {pw['formula'].split(' = ')[2].split(' (')[0]}) exceeds the minimum effect "
            f"({effects or 'none'}; `--min-effect`, else our defaults).")


HEADLINE = Section("headline", "Headline", "Headline", empty="No comparisons: the headline needs a trained system and "
                   "a base-model (or translate_sft) evaluation.")
SYSTEMS = Section("systems", "Systems", "Systems")
SCORES = Section("scores", "Scores: primary metrics", "Scores")
DELTAS = Section("deltas", "Deltas: primary metrics", "Deltas", empty="No comparisons: a delta needs a base-model evaluation "
                 "(or a translate_sft run) and an adapter.")
RETENTION = Section("retention", "English retention", "English retention",
                    empty="No English tasks with both a base and an adapter evaluation.")
SECONDARY = Section("secondary", "Secondary metrics: quality, fidelity, hygiene", "Secondary", lead=(
    "One table per task family and direction, a column per metric, scores without their intervals (report.json "
    "holds them); then the deltas, bold when significant after correction. lang_match (in the right language) "
    "stands beside degenerate (echoes of the prompt, repeated phrases): an output can be in the right language "
    "without answering."), empty="No secondary metrics in these runs.")
BUDGET = Section("budget", "Training budget", "Budget", lead=(
    "Equal budgets: every trained run should take the same optimizer steps of about the same tokens; a comparison "
    "sizes its members' batches to its first member's tokens per step (prompt and answer tokens; records/step then "
    "follow from their records' length, marked ≈), else runs take the same records per step. The loss counts answer "
    "tokens only, which are not equalised: answer tokens/step shows how much each run was trained on. Epochs: records "
    "the steps took ÷ the run's training records (under 1 when a short last batch was dropped). ⚠ marks a "
    "figure more than 10% from its seed's reference (the budget most runs of that seed share)."))
HELDOUT = Section("heldout", "Held-out training loss", "Held-out loss", lead=(
    "Mean cross-entropy per answer token on the run's own training data held out from training (whole groups, "
    "chosen per language by a hash of seed and group). Lower with the adapter = training took."))
COST = Section("cost", "Cost per run", "Cost", footnote=(
    "Walls are this run's own work: an evaluation reused from the shared evaluation cache (another run's, e.g. the "
    "base model's) is not counted again; its original time is shown beside. Training size: see Training budget. "
    "GPU hours: wall time × GPUs, summed over the stages that run the model (data, train, evaluate) "
    "when the device is a GPU; the data and evaluate stages count as run on the train stage's device. "
    "— when no stage ran on a GPU (or the run did not train, so its device is unknown)."))
SIGNATURES = Section("signatures", "sacreBLEU signatures", "Signatures", empty="No sacreBLEU metrics in these runs.")
NOTES = Section("notes", "Notes", "Notes")  # only when the report has notes
# reports/explorer.py and reports/curves.py render these two
EXPLORER = Section("explorer", "Item explorer: where the systems disagree", "Items", lead=(
    "Per task, the items some systems got right and others wrong (multiple choice), or whose per-item score "
    "differs most (generation), with the prompt, the reference and each system's answer; a system with several "
    "seeds shows its first seed's."), empty="No items on which the systems disagree.")
CURVES = Section("curves", "Training curves", "Curves", lead=(
    "Each trained run's training loss per optimizer step, and its held-out loss (records of its own training "
    "data never trained on) with the base model before training and with the adapter after."),
    empty="No trained run with recorded losses.")
SECTIONS = (HEADLINE, SYSTEMS, SCORES, DELTAS, RETENTION, SECONDARY, EXPLORER, BUDGET, CURVES, HELDOUT, COST,
            SIGNATURES, NOTES)
# Where report.json holds each section's data (its keys follow this order; the secondary metrics sit in
# "tables" and "deltas", with role "secondary").
JSON_KEYS = {HEADLINE.title: "headline", SYSTEMS.title: "systems", SCORES.title: "tables", DELTAS.title: "deltas",
             RETENTION.title: "english_retention", EXPLORER.title: "explorer", BUDGET.title: "budget",
             CURVES.title: "curves", HELDOUT.title: "heldout",
             COST.title: "cost", SIGNATURES.title: "signatures", NOTES.title: "notes"}


def shown(report: dict) -> list[Section]:
    """The sections a report has: notes, held-out loss and training curves only when there are some."""
    return [s for s in SECTIONS if (s is not NOTES or report["notes"]) and (s is not HELDOUT or report.get("heldout"))
            and (s is not CURVES or report.get("curves"))]


def heldout_table(report: dict) -> Table:
    rows = [[r["run"], r["lang"], str(r["records"]), str(r["tokens"]), f"{r['base_loss']:.4f}",
             f"{r['adapter_loss']:.4f}", f"{r['drop']:+.4f}"] for r in report.get("heldout") or []]
    return ["run", "language", "records", "tokens", "base", "adapter", "base − adapter"], rows


def labelled_rows(table: dict) -> list[tuple[str, dict, bool]]:
    """(row label, cells, is the macro row) for a score or delta table, the macro average last."""
    return [(r["label"], r["cells"], False) for r in table["rows"]] + [(MACRO_LABEL, table["macro"]["cells"], True)]


def primary_retention(report: dict) -> list[dict]:
    """The English rows of the primary metrics (report.json keeps every metric's; the secondary
    tables show the others)."""
    roles = {(t["family"], t["group"], t["metric"]): t.get("role", "primary") for t in report["tables"]}
    return [e for e in report["english_retention"] if roles.get((e["family"], e["group"], e["metric"])) == "primary"]


def retention_task(entry: dict) -> str:
    return f"{entry['family']}{' ' + entry['group'] if entry['group'] else ''} · {entry['metric_label']}"


def runs_table(report: dict) -> Table:
    keys = ("name", "trainer", "model", "suite", "engine", "seed")
    return (["run", "trainer", "model", "suite", "engine", "seed", "served by"],
            [[str(r[k]) for k in keys] + [_served_text(r.get("served_by") or {})] for r in report["runs"]])


def _served_text(served: dict[str, dict[str, list[str]]]) -> str:
    """"base: multiple choice hf, generation vllm; adapter: ..." (harness.engines.routing)."""
    return "; ".join(f"{variant}: " + ", ".join(f"{kind} {'/'.join(labels)}" for kind, labels in kinds.items())
                     for variant, kinds in served.items()) or "—"


def systems_table(report: dict) -> Table:
    header = ["system", "trainer", "runs", "seeds", "settings that set it apart",
              "settings other than its trainer's defaults (budget: see Training budget)"]
    rows = [[s["label"], s["trainer"] if s["variant"] == "adapter" else "—", ", ".join(s["runs"]),
             ", ".join(str(x) for x in s.get("seeds") or []), _settings_text(s.get("differs")),
             _settings_text(s.get("non_default"))]
            for s in report["systems"]]
    return header, rows


def _settings_text(settings: dict | None) -> str:
    return ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in (settings or {}).items()) or "—"


def budget_table(report: dict) -> Table:
    header = ["run", "trainer", "seed", "train records", "steps", "epochs", "records/step", "training tokens",
              "tokens/step", "answer tokens", "answer tokens/step", "dropped cut-off answers",
              "dropped wrong-language answers", "wall"]

    def mark(row: dict, field: str, text: str) -> str:
        return f"{text} ⚠" if field in row["unequal"] else text

    rows = [[r["run"], r["trainer"], str(r["seed"]), count(r["records"]), mark(r, "steps", count(r["steps"])),
             f"{r['epochs']:g}" if isinstance(r.get("epochs"), (int, float)) else "—",
             mark(r, "records_per_step", _records_per_step(r)), count(r["train_tokens"]),
             mark(r, "tokens_per_step", count(r["tokens_per_step"])), count(r["answer_tokens"]),
             mark(r, "answer_tokens_per_step", count(r.get("answer_tokens_per_step"))),
             count(r["dropped_truncated_answers"]), count(r.get("dropped_wrong_language_answers")), duration(r["wall_s"])]
            for r in report.get("budget", []) if r["trains"]]
    return header, rows


def _records_per_step(row: dict) -> str:
    value = row["records_per_step"]
    if not isinstance(value, (int, float)):
        return "—"
    return f"≈{value:g}" if row.get("sized_in_tokens") else count(value)


def cost_table(report: dict) -> Table:
    stages: list[str] = []
    for cost in report["cost"]:
        stages += [s for s in cost["wall_s"] if s not in stages]
    stages.sort(key=stage_rank)
    header = ["run", "trainer"] + [f"{s} wall" for s in stages] + [
        "total wall", "reused from the evaluation cache", "device", "GPUs", "GPU hours"]
    rows = [[cost["run"], cost["trainer"]] + [duration(cost["wall_s"].get(s)) for s in stages] + [
            duration(cost["total_wall_s"]), _reused_text(cost.get("reused") or {}),
            str(cost["device"] or "—"), count(cost["gpus"]),
            f"{cost['gpu_hours']:.2f}" if cost["gpu_hours"] is not None else "—"]
            for cost in report["cost"]]
    return header, rows


def _reused_text(reused: dict[str, dict]) -> str:
    """'base: 13 tasks (evaluated once in 19m 11s)' per variant; '—' when nothing was reused."""
    return "; ".join(f"{variant}: {r['tasks']} tasks (evaluated once in {duration(r['wall_s'])})"
                     for variant, r in reused.items()) or "—"


def signature_rows(report: dict) -> list[tuple[str, str, str]]:
    """(metric name, sacreBLEU signature, families) for each signature the runs used."""
    return [(METRIC_NAMES.get(metric, metric), s["signature"], ", ".join(s["families"]))
            for metric, signatures in report["signatures"].items() for s in signatures]


# --------------------------------------------------------------------------- primary and secondary


def primary(tables: list[dict]) -> list[dict]:
    return [t for t in tables if t.get("role", "primary") == "primary"]


Valued = tuple[dict | None, float]  # a score or delta cell and its display scale; the renderer marks it up
Mixed = list[str | Valued]


def headline_table(report: dict) -> tuple[list[str], list[Mixed]]:
    """Per headline entry: task, system, then per reference its macro Δ and its languages ↑/↓, then English."""
    refs: dict[str, str] = {}
    for entry in report["headline"]:
        refs.update({c["reference"]: c["reference_label"] for c in entry["comparisons"]})
    header = ["task · metric", "system"]
    for label in refs.values():
        header += [f"Δ vs {label} (macro)", f"languages ↑/↓ vs {label}"]
    header.append("English Δ vs base")
    rows: list[Mixed] = []
    for entry in report["headline"]:
        scale = entry["scale"]
        unit = " (%)" if scale == 100.0 else ""
        row: Mixed = [f"{entry['family']}{' ' + entry['group'] if entry['group'] else ''} · {entry['metric_label']}{unit}",
                      entry["system_label"]]
        found = {c["reference"]: c for c in entry["comparisons"]}
        for ref in refs:
            c = found.get(ref)
            row += [(c, scale), f"{c['improved']}↑ {c['regressed']}↓ of {c['languages']}" if c else "—"]
        row.append((entry["english"], scale))
        rows.append(row)
    return header, rows


METRIC_ORDER = ("chrf", "comet", "lang_match", "degenerate", "empty", "preamble", "cut_at_limit", "answer_words",
                "judge_win", "judge_consistent", "judge_invalid")


@dataclass(frozen=True)
class Folded:
    """The secondary metrics of one task family and direction in one table: a column per metric,
    a row per language and system (the macro rows last)."""

    title: str
    header: list[str]
    rows: list[tuple[list[str], list[Valued], bool]]  # (language, system), a cell per metric, is a macro row
    notes: list[str]


def _metric_rank(table: dict) -> tuple[int, str]:
    m = table["metric"]
    return (METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER), m)


def _fold(tables: list[dict], labels: dict[str, str], title: str) -> Folded:
    tables = sorted(tables, key=_metric_rank)
    systems = [k for t in tables for k in t["systems"]]
    systems = list(dict.fromkeys(systems))
    languages = list(dict.fromkeys(r["label"] for t in tables for r in t["rows"]))
    header = ["language", "system"] + [t["metric_label"] + (" (%)" if t["scale"] == 100.0 else "") for t in tables]
    rows = []
    for label in languages + [MACRO_LABEL]:
        for key in systems:
            cells = [(_row_cells(t, label).get(key), t["scale"]) for t in tables]
            if any(c for c, _ in cells):
                rows.append(([label, labels[key]], cells, label == MACRO_LABEL))
    scales = [_scale(t["metric_label"], n) for t in tables for n in t.get("notes", []) if n.startswith("Scale: ")]
    others = list(dict.fromkeys(n for t in tables for n in t.get("notes", []) if not n.startswith("Scale: ")))
    return Folded(title, header, rows, (["Scales: " + "; ".join(scales) + "."] if scales else []) + others)


def _scale(label: str, note: str) -> str:
    """'Scale: chrF++, 0-100.' -> 'chrF++: 0-100'; 'Scale: % of outputs ...' -> 'lang_match: % of outputs ...'."""
    text = note[len("Scale: "):].rstrip(".")
    return f"{label}: {text[len(label) + 2:] if text.startswith(label + ', ') else text}"


def _row_cells(table: dict, label: str) -> dict:
    if label == MACRO_LABEL:
        return table["macro"]["cells"]
    return next((r["cells"] for r in table["rows"] if r["label"] == label), {})


def _grouped(tables: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for t in tables:
        if t.get("role", "primary") != "primary":
            out.setdefault(tuple(t[k] for k in keys), []).append(t)
    return out


def folded_scores(report: dict, labels: dict[str, str]) -> list[Folded]:
    return [_fold(ts, labels, f"{family}{' · ' + group if group else ''}")
            for (family, group), ts in _grouped(report["tables"], "family", "group").items()]


def folded_deltas(report: dict, labels: dict[str, str]) -> list[Folded]:
    return [_fold(ts, labels, f"{family}{' · ' + group if group else ''} — Δ vs {ts[0]['reference_label']}")
            for (family, group, _ref), ts in _grouped(report["deltas"], "family", "group", "reference").items()]
