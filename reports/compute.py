"""The report's numbers, computed once into a plain dict (what report.json holds; both renderings read it).

Systems (table columns): "base", the untouched base model, taken from the first run that
evaluated it; then each run's adapter, labelled by its trainer (plus the run name when two runs
share a trainer). Rows are languages, one table per task family (generation families: one per
direction and metric). Cells: the score from scores.json with a 95% percentile bootstrap
interval over items. The macro average is over the non-English languages every system has
(English is reported separately as retention); its interval resamples each language's items
independently. Deltas are paired on doc_hash: paired permutation p (two-sided, reports/stats.py), and for 0/1
metrics the exact McNemar p and improved / regressed / unchanged item counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.engines.routing import Route
from harness.core.langs import LANGUAGES, iso_code
from reports import multiple, power, stats
from reports.budget import compare_budgets
from reports.cost import run_cost
from reports.curves import training_curves
from reports.estimates import Distribution, Estimates, bound_zero_width, mean_distribution, spread_of
from reports.explorer import item_explorer
from reports.fmt import MACRO_LABEL, SIGNIFICANCE, is_english, lang_label, metric_label
from reports.headline import headline
from reports.sections import shown
from reports.load import Run, TaskResult
from reports.systems import System, make_systems, portable, seed_spread
from reports.table_notes import bleu_fallback_caveats, table_notes

REFERENCE_TRAINERS = ("translate_sft",)  # besides base, deltas are reported against these trainers
SETTINGS = {
    "ci_level": 0.95,
    "interval": "percentile bootstrap over items (with several seeds: over seeds, then items)",
    "p_value": ("paired permutation test, two-sided, items the unit: exact over all 2^k swaps of the k items whose "
                f"outputs differ when k <= {stats.EXACT_MAX_ITEMS}, else {{n_permutations}} random swaps, p = (1 + #extreme) / "
                "(R + 1); sign-flip for mean metrics, approximate randomization for BLEU/chrF++; with several seeds "
                "a swap acts in every seed pair (the seeds held fixed), and p is the larger of that and the two-level "
                "bootstrap p (seeds, then items): significant only when both reject (intersection-union); "
                "macro averages: two-level bootstrap p, "
                "min(1, 2 (1 + min(#{d* <= 0}, #{d* >= 0})) / (R + 1))"),
    "zero_width": ("an interval the bootstrap gives width 0 (identical outputs) is replaced: 0/1 metrics by the exact "
                   "Clopper-Pearson bound on the share of items that changed, other metrics by none"),
    "mcnemar": "exact binomial test on discordant pairs (0/1 metrics only)",
    "macro": "mean over the non-English languages all systems have; English is reported as retention",
    "significance": f"Benjamini-Hochberg adjusted p < {SIGNIFICANCE} (the bold marks and the headline's counts)",
}


@dataclass
class TaskGroup:
    """The tasks of one table: a family, and for generation one direction group; tasks in row order."""

    family: str
    group: str
    tasks: dict[str, TaskResult]  # task -> the first system's result for it, in language order

    @property
    def kind(self) -> str:
        return next(iter(self.tasks.values())).kind

    @property
    def is_generation(self) -> bool:
        return self.kind == "generation" or any(r.kind == "generation" for r in self.tasks.values())


def compute_report(runs: list[Run], n_resamples: int = stats.DEFAULT_RESAMPLES, seed: int = 0,
                   min_effect: dict[str, float] | None = None,
                   n_permutations: int = stats.DEFAULT_PERMUTATIONS, heldout: list[dict] | None = None) -> dict:
    """Per task group and metric a score table, then its deltas against each reference; the p-values
    adjusted per family and the power marks; English retention; the headline from all of those;
    then budget, cost, signatures and the notes gathered on the way."""
    systems, notes = make_systems(runs)
    estimates = Estimates(n_resamples, seed, n_permutations)
    by_key = {s.key: s for s in systems}
    references = reference_systems(systems)
    tables, deltas = [], []
    for group in task_groups(systems, language_order(runs)):
        for metric in table_metrics(group, systems):
            table, distributions = score_table(group, metric, systems, estimates)
            tables.append(table)
            deltas += [d for ref in references if (d := delta_table(table, distributions, ref, by_key, estimates))]
    family_sizes = multiple.adjust_deltas(deltas)
    effects = dict(min_effect or power.DEFAULT_MIN_EFFECT)
    power.annotate(deltas, effects)
    by_table = {(t["family"], t["group"], t["metric"]): t for t in tables}
    retention = [entry for d in deltas if d["reference"] == "base"
                 for entry in retention_rows(by_table[(d["family"], d["group"], d["metric"])], d, by_key)]
    adapters = {s.key for s in systems if s.variant == "adapter"}
    budget_rows, budget_notes = compare_budgets(runs)
    report = {
        "format": "sdrrl-harness report v2",
        "settings": {"n_resamples": n_resamples, "n_permutations": n_permutations, "seed": seed,
                     **SETTINGS, "p_value": SETTINGS["p_value"].replace("{n_permutations}", str(n_permutations)),
                     "multiple_comparisons": {"method": multiple.METHOD, "family": multiple.FAMILY,
                                              "fdr": SIGNIFICANCE, "screening": multiple.SCREENING,
                                              "family_sizes": family_sizes},
                     "power": {"formula": power.FORMULA, "min_effect": effects}},
        "headline": headline(tables, deltas, retention, {s.key: s.label for s in systems}, adapters),
        "caveats": bleu_fallback_caveats(systems),
        "runs": [run_summary(r) for r in runs],
        "systems": [s.to_dict() for s in systems],
        "tables": tables,
        "deltas": deltas,
        "english_retention": retention,
        "explorer": item_explorer(systems),  # reports/explorer.py
        "budget": budget_rows,
        "curves": training_curves(runs),  # reports/curves.py
        "heldout": heldout or [],
        "cost": [run_cost(r) for r in runs],
        "signatures": signatures(systems),
        "notes": budget_notes + notes + estimates.notes,
    }
    report["sections"] = [s.title for s in shown(report)]  # the renderings' order, which the keys above follow
    return report


# --------------------------------------------------------------------------- layout


def language_order(runs: list[Run]) -> dict[str, int]:
    """The runs' languages in the order their specs list them, then the harness's others."""
    order: dict[str, int] = {}
    for run in runs:
        for code in run.spec.get("languages") or []:
            order.setdefault(str(code), len(order))
    for code in LANGUAGES:
        order.setdefault(code, len(order))
    return order


def direction_group(result: TaskResult) -> str:
    direction = result.direction
    if not direction or "-" not in str(direction):
        return ""
    src, tgt = str(direction).split("-", 1)
    english = ("en", "eng", "eng_Latn")
    if src in english:
        return "en→xx"
    if tgt in english:
        return "xx→en"
    return f"{src}→{tgt}"


def task_groups(systems: list[System], order: dict[str, int]) -> list[TaskGroup]:
    """One group per (family, direction group), sorted by family with en→xx first."""
    found: dict[tuple[str, str], dict[str, TaskResult]] = {}
    for system in systems:
        for task, result in system.run.variant(system.variant).items():
            found.setdefault((result.family, direction_group(result)), {}).setdefault(task, result)
    groups = []
    for (family, group), tasks in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1] != "en→xx", kv[0][1])):
        ordered = sorted(tasks, key=lambda t: (order.get(iso_code(tasks[t].lang), 10**6), tasks[t].lang, t))
        groups.append(TaskGroup(family, group, {t: tasks[t] for t in ordered}))
    return groups


def reference_systems(systems: list[System]) -> list[System]:
    """Base, then each reference trainer's adapter (its plain run when its ablations are here too)."""
    references = [s for s in systems if s.key == "base"][:1]
    for trainer in REFERENCE_TRAINERS:
        candidates = [s for s in systems if s.variant == "adapter" and s.trainer == trainer]
        plain = next((s for s in candidates if s.label == trainer), candidates[0] if candidates else None)
        if plain is not None:
            references.append(plain)
    return references


def table_metrics(group: TaskGroup, systems: list[System]) -> list[str]:
    """The primary metric; for generation every metric any system has (a judge's verdicts exist
    for adapters only), the primary first, then the corpus metrics."""
    first = next(iter(group.tasks.values()))
    if not group.is_generation:
        return [first.primary_metric]
    metrics: list[str] = []
    for task, result in group.tasks.items():
        for res in [result] + [r for s in systems if (r := s.result(task)) is not None]:
            metrics += [m for m in res.metric_names() if m not in metrics]
    metrics.sort(key=lambda m: (m != first.primary_metric, m not in stats.CORPUS_METRICS))
    return metrics


# --------------------------------------------------------------------------- tables


def score_table(group: TaskGroup, metric: str, systems: list[System],
                estimates: Estimates) -> tuple[dict, dict[tuple[str, str], Distribution]]:
    """One score table and each cell's bootstrap distribution, keyed by (system key, task)."""
    rows, distributions = [], {}
    for task, result in group.tasks.items():
        cells = {}
        for system in systems:
            res = system.result(task)
            if res is None or metric not in res.metrics:
                continue
            cells[system.key], distributions[(system.key, task)] = estimates.cell(system, task, metric)
        rows.append({"task": task, "lang": result.lang, "label": lang_label(result.lang), "cells": cells})
    for task in group.tasks:
        _note_signature_mismatch(task, metric, systems, estimates)
    present = [s.key for s in systems if any(s.key in r["cells"] for r in rows)]
    signature = next((sig for r in group.tasks.values() if (sig := r.signatures.get(metric))), None)
    measured = [(s.label, res) for t in group.tasks for s in systems
                if (res := s.result(t)) is not None and metric in res.metrics]
    role = "primary" if metric == next(iter(group.tasks.values())).primary_metric else "secondary"
    table = {"family": group.family, "group": group.group, "kind": group.kind, "metric": metric, "role": role,
             "metric_label": metric_label(metric, signature),
             "scale": display_scale([c["score"] for r in rows for c in r["cells"].values()], metric),
             "systems": present, "rows": rows, "macro": macro_scores(rows, present, distributions),
             "notes": table_notes(metric, measured)}
    return table, distributions


def _note_signature_mismatch(task: str, metric: str, systems: list[System], estimates: Estimates) -> None:
    used = {s.label: (s.result(task).signatures or {}).get(metric) for s in systems
            if s.result(task) is not None and metric in s.result(task).metrics}
    if len(set(used.values())) > 1:
        estimates.note(f"{task}: {metric_label(metric)} computed with different sacreBLEU signatures ("
                       + "; ".join(f"{k}: {v}" for k, v in used.items()) + "), so not comparable.")


def display_scale(values: list[float | None], metric: str) -> float:
    """Display scale: 0-1 metrics are shown in percent, corpus metrics as they are."""
    if metric in stats.CORPUS_METRICS:
        return 1.0
    finite = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    return 100.0 if finite and all(0.0 <= v <= 1.0 for v in finite) else 1.0


def macro_scores(rows: list[dict], present: list[str], distributions: dict) -> dict:
    """The macro row over the non-English languages every system has (all of them if none is)."""
    common = [r for r in rows if all(k in r["cells"] for k in present)]
    averaged = [r for r in common if not is_english(r["lang"])] or common
    cells = {}
    for key in present:
        scores = [r["cells"][key]["score"] for r in averaged]
        cell: dict[str, Any] = {"score": stats.macro(scores) if scores else None, "low": None, "high": None}
        mean = mean_distribution([distributions[(key, r["task"])] for r in averaged])
        if mean is not None:
            iv = stats.percentile_interval(cell["score"], mean, 0)
            cell.update(low=iv.low, high=iv.high)
        cells[key] = cell
    return {"label": MACRO_LABEL, "langs": [r["lang"] for r in averaged],
            "excluded": [r["label"] for r in rows if r not in averaged], "cells": cells}


def delta_table(table: dict, distributions: dict, reference: System, by_key: dict[str, System],
                estimates: Estimates) -> dict | None:
    """Each adapter's delta against `reference` on the table's rows; None when there is nothing to compare."""
    if reference.key not in table["systems"]:
        return None
    others = [k for k in table["systems"] if k != reference.key and by_key[k].variant == "adapter"]
    if not others:
        return None
    rows, delta_distributions = [], {}
    for row in table["rows"]:
        cells = {}
        for key in others:
            if key not in row["cells"] or reference.key not in row["cells"]:
                continue
            cell, dist = estimates.paired(reference, by_key[key], row["task"], table["metric"])
            if cell is None:  # no paired test: the difference of the reported scores
                difference = row["cells"][key]["score"] - row["cells"][reference.key]["score"]
                cell = {"delta": difference, "low": None, "high": None, "p_value": None,
                        "n": None, "mcnemar": None, "changes": None, "reported_delta": difference}
            cells[key], delta_distributions[(key, row["task"])] = cell, dist
        rows.append({"task": row["task"], "lang": row["lang"], "label": row["label"], "cells": cells})
    langs = table["macro"]["langs"]
    averaged = [r for r in rows if r["lang"] in langs]
    macro = {"label": MACRO_LABEL, "langs": langs,
             "cells": {k: macro_delta([r["cells"].get(k) for r in averaged],
                                      [delta_distributions.get((k, r["task"])) for r in averaged]) for k in others}}
    return {**{k: table[k] for k in ("family", "group", "kind", "metric", "role", "metric_label", "scale")},
            "reference": reference.key, "reference_label": reference.label, "systems": others, "rows": rows,
            "macro": macro}


def macro_delta(cells: list[dict | None], distributions: list[Distribution]) -> dict | None:
    """Mean of the per-language deltas; interval and p only when every language has its resamples."""
    if not cells or any(c is None for c in cells):
        return None
    out = {"delta": stats.macro([c["delta"] for c in cells]), "low": None, "high": None, "p_value": None,
           "n": None, "mcnemar": None, "changes": None}
    out["binary"] = all(c.get("binary") for c in cells)
    moved = [c.get("items_moved") for c in cells]
    if all(moved):
        out["items_moved"] = {k: sum(m.get(k, m["of"]) for m in moved) for k in ("improved", "regressed", "of", "items")}
    mean = mean_distribution(distributions)
    if mean is not None:
        iv = stats.percentile_interval(out["delta"], mean, 0)
        out.update(low=iv.low, high=iv.high, p_value=stats.bootstrap_p_value(mean), n=sum(c["n"] for c in cells),
                   se=spread_of(mean))
        out["test"] = {"p_value": out["p_value"], "p_min": 2.0 / (len(mean) + 1), "bootstrap": True}
        bound_zero_width(out)
    out.update(seed_macro(cells))
    return out


def seed_macro(cells: list[dict]) -> dict:
    """Per seed, the mean of the languages' seed-paired deltas; their mean and spread between seeds."""
    seeds = [set(c.get("seed_deltas") or {}) for c in cells]
    common = sorted(set.intersection(*seeds)) if seeds and all(seeds) else []
    if len(common) < 2:
        return {}
    per_seed = {s: stats.macro([c["seed_deltas"][s] for c in cells]) for s in common}
    return {"seeds": len(per_seed), "seed_deltas": per_seed, "spread": seed_spread(list(per_seed.values()))}


def retention_rows(table: dict, delta: dict, by_key: dict[str, System]) -> list[dict]:
    """English rows of a delta table against base: what training did to English."""
    out = []
    scores = {r["task"]: r["cells"] for r in table["rows"]}
    for row in delta["rows"]:
        if not is_english(row["lang"]):
            continue
        for key, cell in row["cells"].items():
            out.append({
                "family": table["family"], "group": table["group"], "metric": table["metric"],
                "metric_label": table["metric_label"], "scale": table["scale"], "task": row["task"],
                "system": key, "system_label": by_key[key].label,
                "base": scores[row["task"]]["base"]["score"], "score": scores[row["task"]][key]["score"],
                "delta": cell["delta"], "low": cell["low"], "high": cell["high"], "p_value": cell["p_value"],
                **{k: cell.get(k) for k in ("p_adjusted", "mdd", "underpowered", "seeds", "spread")},
                "mcnemar": cell.get("mcnemar"), "changes": cell.get("changes"),
            })
    return out


# --------------------------------------------------------------------------- runs


def run_summary(run: Run) -> dict:
    """The run's identity; its folder as given (build_report makes it relative to the report's folder)."""
    config = {k: portable(v) for k, v in (run.spec.get("trainer_config") or {}).items()}
    return {"name": run.name, "path": str(run.path), "trainer": run.spec.get("trainer"),
            "model": portable(run.spec.get("model")),
            **{k: run.spec.get(k) for k in ("suite", "engine", "seed", "languages")}, "trainer_config": config,
            "served_by": served_by(run)}


def served_by(run: Run) -> dict[str, dict[str, list[str]]]:
    """Per variant and request type, the engines (and adapter serving) that produced its scores."""
    found: dict[str, dict[str, set[str]]] = {}
    for variant, results in run.results.items():
        for result in results.values():
            s = result.scores
            kind = "generation" if s.get("kind") == "generation" else "multiple choice"
            # Results from before route_basis was recorded: auto then always took the design default.
            basis = s.get("route_basis") or ("default" if s.get("engine_requested") == "auto" else "named")
            served = Route(str(s.get("engine", "?")), s.get("adapter_served_as") or "none", basis)
            found.setdefault(variant, {}).setdefault(kind, set()).add(served.label)
    order = sorted(found, key=lambda v: (v != "base", v))  # the base model first
    return {v: {k: sorted(labels) for k, labels in sorted(found[v].items())} for v in order}


def signatures(systems: list[System]) -> dict[str, list[dict]]:
    """Each metric's sacreBLEU signatures and the families that used them."""
    found: dict[str, dict[str, set[str]]] = {}
    for system in systems:
        for result in system.run.variant(system.variant).values():
            for metric, signature in (result.signatures or {}).items():
                if metric == "bleu_fallback":  # not a signature: the report's caveats say it once
                    continue
                found.setdefault(metric, {}).setdefault(str(signature), set()).add(result.family)
    return {m: [{"signature": sig, "families": sorted(fams)} for sig, fams in sorted(sigs.items())]
            for m, sigs in sorted(found.items())}
