"""Comparison report over one or more run folders: report.md (GitHub), report.html, report.json.

The numbers are computed once into a plain dict (what report.json holds); the Markdown and the
HTML are two renderings of that dict.

Systems (table columns): "base", the untouched base model, taken from the first run that
evaluated it; then each run's adapter, labelled by its trainer (plus the run name when two runs
share a trainer). Rows are languages, one table per task family (generation families: one per
direction and metric). Cells: the score from scores.json with a 95% percentile bootstrap
interval over items. The macro average is over the non-English languages every system has
(English is reported separately as retention); its interval resamples each language's items
independently. Deltas are paired on doc_hash: paired bootstrap p (two-sided), and for 0/1
metrics the exact McNemar p and improved / regressed / unchanged item counts.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.heldout import heldout_markdown
from harness.langs import LANGUAGES
from harness.runstore import write_json, write_text
from reports import stats
from reports.load import Run, TaskResult, load_runs
from reports.budget import compare_budgets
from reports.forest import color_range, forest_svg, units
from reports.systems import System, make_systems, seed_pairs, seed_spread
from reports.table_notes import table_notes

MACRO_LABEL = "macro avg (over languages)"
REFERENCE_TRAINERS = ("translate_sft",)  # besides base, deltas are reported against these trainers
STAGE_ORDER = ("plan", "data", "train", "evaluate", "eval", "report")
GPU_STAGES = ("data", "train", "evaluate", "eval")  # stages that run the model
METRIC_NAMES = {"acc": "accuracy", "acc_norm": "accuracy (norm.)", "bleu": "BLEU", "chrf": "chrF++", "comet": "COMET"}
SIGNIFICANCE = 0.05
GPU_NOTE = ("GPU hours: wall time × GPUs, summed over the stages that run the model (data, train, evaluate) "
            "when the device is a GPU; a stage without its own device record counts as run on the train "
            "stage's device. — when no stage ran on a GPU (or the run did not train, so its device is unknown).")


# --------------------------------------------------------------------------- public entry point


def build_report(run_dirs: list[Path], out_dir: Path, n_resamples: int = stats.DEFAULT_RESAMPLES,
                 seed: int = 0) -> dict:
    """Compare the runs in `run_dirs`; write out_dir/report.{md,html,json}; return the report dict."""
    if n_resamples < 1:
        raise HarnessError(f"n_resamples must be at least 1, got {n_resamples}")
    runs = load_runs([Path(d) for d in run_dirs])
    report = compute_report(runs, n_resamples=n_resamples, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", render_markdown(report) + heldout_markdown([Path(d) for d in run_dirs]))
    write_text(out_dir / "report.html", render_html(report))
    return report


# --------------------------------------------------------------------------- systems and layout


def language_order(runs: list[Run]) -> dict[str, int]:
    order: dict[str, int] = {}
    for r in runs:
        for code in r.spec.get("languages") or []:
            order.setdefault(str(code), len(order))
    for code in LANGUAGES:
        order.setdefault(code, len(order))
    return order


def direction_group(result: TaskResult) -> str:
    d = result.direction
    if not d or "-" not in str(d):
        return ""
    src, tgt = str(d).split("-", 1)
    english = ("en", "eng", "eng_Latn")
    if src in english:
        return "en→xx"
    if tgt in english:
        return "xx→en"
    return f"{src}→{tgt}"


_BY_FLORES = {lang.flores: lang.code for lang in LANGUAGES.values()}


def iso_code(code: str) -> str:
    """The harness's language code for 'cs' or a FLORES-200 code such as 'ces_Latn'."""
    return _BY_FLORES.get(code, code)


def lang_label(code: str) -> str:
    lang = LANGUAGES.get(iso_code(code))
    return f"{lang.name} ({code})" if lang else code


def is_english(code: str) -> bool:
    return iso_code(code) in ("en", "eng")


def metric_label(metric: str, signature: str | None = None) -> str:
    if metric == "chrf" and signature:
        nw = stats.parse_signature(signature).get("nw")
        if nw is not None and nw != "2":
            return "chrF" if nw == "0" else f"chrF (nw={nw})"
    return METRIC_NAMES.get(metric, metric)


# --------------------------------------------------------------------------- computation


class _Computer:
    def __init__(self, n_resamples: int, seed: int):
        self.R = n_resamples
        self.seed = seed
        self.notes: list[str] = []
        self._dist: dict[tuple, tuple[np.ndarray | None, float | None]] = {}
        self._scorer: dict[tuple, Any] = {}
        self._counts: dict[tuple, np.ndarray] = {}

    def counts(self, n: int, *names: str) -> np.ndarray:
        """Resample multiplicities for n items, one draw per (task, metric), shared by all systems."""
        key = (n,) + names
        if key not in self._counts:
            self._counts[key] = stats.resample_counts(n, self.R, stats.task_seed(self.seed, *names)).astype(float)
        return self._counts[key]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # per-system values -------------------------------------------------------------------

    def scorer(self, system: System, result: TaskResult, metric: str):
        """A CorpusScorer over the result's samples, or None (with a note) when it cannot be built."""
        key = (system.key, str(result.path), metric)
        if key not in self._scorer:
            scorer = None
            samples = result.samples
            if not samples:
                self.note(f"{result.task} / {system.label}: no samples.jsonl, so no interval or paired test.")
            elif any("prediction" not in s or "reference" not in s for s in samples):
                self.note(f"{result.task} / {system.label}: samples lack reference/prediction, "
                          f"so no {metric_label(metric)} interval.")
            else:
                try:
                    _check_tokenizer(result.signatures.get(metric))
                    scorer = stats.CorpusScorer(metric, [s["reference"] for s in samples],
                                                [s["prediction"] for s in samples], result.signatures.get(metric))
                except Exception as exc:  # e.g. a tokenizer whose model cannot be fetched offline
                    self.note(f"{result.task} / {system.label}: cannot recompute {metric_label(metric)} "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]}).")
            self._scorer[key] = scorer
        return self._scorer[key]

    def item_values(self, system: System, result: TaskResult, metric: str) -> list[float] | None:
        values = result.item_values(metric)
        if values is None:
            what = "no samples.jsonl" if not result.samples else f"samples carry no per-item {metric!r}"
            self.note(f"{result.task} / {system.label}: {what}, so no interval or paired test.")
        return values

    def distribution(self, system: System, result: TaskResult, metric: str) -> tuple[np.ndarray | None, float | None]:
        """Bootstrap distribution of the system's score on this task, and the recomputed score."""
        key = (system.key, str(result.path), metric)
        if key in self._dist:
            return self._dist[key]
        dist = value = None
        if metric in stats.CORPUS_METRICS:
            scorer = self.scorer(system, result, metric)
            if scorer is not None and len(scorer):
                value = scorer.score()
                dist = scorer.resampled(self.counts(len(scorer), result.task, metric))
                reported = result.metrics.get(metric)
                if isinstance(reported, (int, float)) and abs(reported - value) > 0.05:
                    self.note(f"{result.task} / {system.label}: {metric_label(metric)} recomputed from samples "
                              f"is {value:.2f}, scores.json says {reported:.2f} (check the signature).")
        else:
            values = self.item_values(system, result, metric)
            if values:
                value = float(np.mean(values))
                dist = self.counts(len(values), result.task, metric) @ np.asarray(values, dtype=float) / len(values)
        self._dist[key] = (dist, value)
        return dist, value

    def cell(self, system: System, task: str, metric: str) -> tuple[dict, np.ndarray | None]:
        """The system's score on the task: with several seeds, the seed mean, whose bootstrap
        distribution is the mean of the seeds' distributions (they share the item resamples)."""
        results = [r for r in system.results(task) if isinstance(r.metrics.get(metric), (int, float))]
        scores = [float(r.metrics[metric]) for r in results]
        dists = [self.distribution(system, r, metric)[0] for r in results]
        score = float(np.mean(scores))
        out: dict[str, Any] = {"score": score, "low": None, "high": None, "n": results[0].n_samples}
        if len(results) > 1:
            out.update(seeds=len(results), spread=seed_spread(scores))
        dist = np.mean(np.vstack(dists), axis=0) if all(d is not None for d in dists) else None
        if dist is not None:
            iv = stats.percentile_interval(score, dist, len(results[0].samples))
            out.update(low=iv.low, high=iv.high, n=iv.n)
        return out, dist

    # paired -------------------------------------------------------------------------------

    def paired(self, ref: System, sys_b: System, task: str, metric: str) -> tuple[dict | None, np.ndarray | None]:
        """Delta of sys_b against ref, paired on items and, with several seeds, on seeds: the mean
        of the seed-paired deltas, its distribution the mean of their (item-aligned) distributions."""
        pairs = seed_pairs(ref, sys_b, task)
        found = [self._paired_one(ref, ra, sys_b, rb, metric) for ra, rb in pairs]
        if not found or any(c is None for c, _ in found):
            return None, None
        if len(found) == 1:
            return found[0]
        deltas = [c["delta"] for c, _ in found]
        out: dict[str, Any] = {"delta": float(np.mean(deltas)), "low": None, "high": None, "p_value": None,
                               "n": found[0][0]["n"], "mcnemar": None, "changes": None, "seeds": len(found),
                               "spread": seed_spread(deltas), "reported_delta": None}
        dist = None
        if all(d is not None for _, d in found):
            dist = np.mean(np.vstack([d for _, d in found]), axis=0)
            iv = stats.percentile_interval(out["delta"], dist, 0)
            out.update(low=iv.low, high=iv.high, p_value=stats.bootstrap_p_value(dist))
        return out, dist

    def _paired_one(self, ref: System, ra: TaskResult, sys_b: System, rb: TaskResult,
                    metric: str) -> tuple[dict | None, np.ndarray | None]:
        if not ra.samples or not rb.samples:
            return None, None
        ia, ib = stats.align_indices(ra.samples, rb.samples)
        if not ia:
            self.note(f"{ra.task}: {ref.label} and {sys_b.label} share no items (doc_hash), so no paired test.")
            return None, None
        if len(ia) < max(len(ra.samples), len(rb.samples)):
            self.note(f"{ra.task}: {ref.label} vs {sys_b.label} paired on the {len(ia)} items both have "
                      f"({len(ra.samples)} and {len(rb.samples)}).")
        counts = self.counts(len(ia), "paired", ra.task, metric)
        out: dict[str, Any] = {"mcnemar": None, "changes": None}
        if metric in stats.CORPUS_METRICS:
            sa, sb = self.scorer(ref, ra, metric), self.scorer(sys_b, rb, metric)
            if sa is None or sb is None:
                return None, None
            res, dist = stats.paired_scorers_distribution(sa.take(ia), sb.take(ib), counts=counts)
        else:
            va, vb = ra.item_values(metric), rb.item_values(metric)
            if va is None or vb is None:
                return None, None
            a = [va[i] for i in ia]
            b = [vb[j] for j in ib]
            res, dist = stats.paired_mean_distribution(a, b, counts=counts)
            out["changes"] = stats.item_changes(a, b).to_dict()
            if stats.is_binary(a) and stats.is_binary(b):
                out["mcnemar"] = stats.mcnemar_exact(a, b).to_dict()
        reported_a, reported_b = ra.metrics.get(metric), rb.metrics.get(metric)
        out.update(delta=res.delta, low=res.low, high=res.high, p_value=res.p_value, n=res.n,
                   reported_delta=(reported_b - reported_a) if None not in (reported_a, reported_b) else None)
        return out, dist


def _check_tokenizer(signature: str | None) -> None:
    """Raise when the signature's BLEU tokenizer needs a SentencePiece model that is not obtainable here
    (harness.metrics decides, with its download timeout and offline switches), instead of letting
    sacreBLEU try to download it."""
    tok = stats.parse_signature(signature).get("tok")
    if not tok:
        return
    try:
        from harness import metrics
    except ImportError:
        return
    if metrics.needs_model_file(tok) and not metrics.tokenizer_available(tok):
        raise RuntimeError(metrics.unavailable_reason(tok) or f"tokenizer {tok} unavailable")


def _macro_cell(estimates: list[float], dists: list[np.ndarray | None]) -> dict:
    out: dict[str, Any] = {"score": stats.macro(estimates) if estimates else None, "low": None, "high": None}
    if dists and all(d is not None for d in dists):
        mean_dist = np.mean(np.vstack(dists), axis=0)
        iv = stats.percentile_interval(out["score"], mean_dist, 0)
        out.update(low=iv.low, high=iv.high)
    return out


def _macro_delta(cells: list[dict | None], dists: list[np.ndarray | None]) -> dict | None:
    """Mean of the per-language deltas; interval and p only when every language has its resamples."""
    if not cells or any(c is None for c in cells):
        return None
    out = {"delta": stats.macro([c["delta"] for c in cells]), "low": None, "high": None, "p_value": None,
           "n": None, "mcnemar": None, "changes": None}
    if all(d is not None for d in dists):
        mean_dist = np.mean(np.vstack(dists), axis=0)
        iv = stats.percentile_interval(out["delta"], mean_dist, 0)
        out.update(low=iv.low, high=iv.high, p_value=stats.bootstrap_p_value(mean_dist),
                   n=sum(c["n"] for c in cells))
    return out


def _scale(values: list[float | None], metric: str) -> float:
    """Display scale: 0-1 metrics are shown in percent, corpus metrics as they are."""
    if metric in stats.CORPUS_METRICS:
        return 1.0
    finite = [v for v in values if isinstance(v, (int, float)) and not math.isnan(v)]
    return 100.0 if finite and all(0.0 <= v <= 1.0 for v in finite) else 1.0


def compute_report(runs: list[Run], n_resamples: int = stats.DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    systems, notes = make_systems(runs)
    comp = _Computer(n_resamples, seed)
    order = language_order(runs)
    by_key = {s.key: s for s in systems}

    # sections: (family, group) -> task -> representative result
    sections: dict[tuple[str, str], dict[str, TaskResult]] = {}
    for s in systems:
        for task, res in s.run.variant(s.variant).items():
            sections.setdefault((res.family, direction_group(res)), {}).setdefault(task, res)

    references = []
    if "base" in by_key:
        references.append(by_key["base"])
    for trainer in REFERENCE_TRAINERS:
        # the plain trainer when its ablations are in the report too (their labels carry settings)
        candidates = [s for s in systems if s.variant == "adapter" and s.trainer == trainer]
        ref = next((s for s in candidates if s.label == trainer), candidates[0] if candidates else None)
        if ref is not None:
            references.append(ref)

    tables, deltas, retention = [], [], []
    for (family, group), tasks in sorted(sections.items(), key=lambda kv: (kv[0][0], kv[0][1] != "en→xx", kv[0][1])):
        task_list = sorted(tasks, key=lambda t: (order.get(iso_code(tasks[t].lang), 10**6), tasks[t].lang, t))
        first = tasks[task_list[0]]
        kind = first.kind
        if kind == "generation" or any(tasks[t].kind == "generation" for t in task_list):
            metrics: list[str] = []
            for t in task_list:  # every system's metrics: the judge's verdicts exist for adapters only
                for res in [tasks[t]] + [res_ for s in systems if (res_ := s.result(t)) is not None]:
                    for m in res.metric_names():
                        if m not in metrics:
                            metrics.append(m)
            metrics.sort(key=lambda m: (m != first.primary_metric, m not in stats.CORPUS_METRICS))
        else:
            metrics = [first.primary_metric]
        for metric in metrics:
            signature = next((tasks[t].signatures.get(metric) for t in task_list if tasks[t].signatures.get(metric)), None)
            rows, dist_of = [], {}
            for t in task_list:
                cells = {}
                for s in systems:
                    res = s.result(t)
                    if res is None or metric not in res.metrics:
                        continue
                    cells[s.key], dist_of[(s.key, t)] = comp.cell(s, t, metric)
                rows.append({"task": t, "lang": tasks[t].lang, "label": lang_label(tasks[t].lang), "cells": cells})
            for t in task_list:
                sigs = {s.label: (s.result(t).signatures or {}).get(metric) for s in systems
                        if s.result(t) is not None and metric in s.result(t).metrics}
                if len(set(sigs.values())) > 1:
                    comp.note(f"{t}: {metric_label(metric)} computed with different sacreBLEU signatures ("
                              + "; ".join(f"{k}: {v}" for k, v in sigs.items()) + "), so not comparable.")
            present = [s.key for s in systems if any(s.key in r["cells"] for r in rows)]
            common = [r for r in rows if all(k in r["cells"] for k in present)]
            macro_rows = [r for r in common if not is_english(r["lang"])] or common
            excluded = [r["label"] for r in rows if r not in macro_rows]
            macro = {
                "label": MACRO_LABEL,
                "langs": [r["lang"] for r in macro_rows],
                "excluded": excluded,
                "cells": {k: _macro_cell([r["cells"][k]["score"] for r in macro_rows],
                                         [dist_of[(k, r["task"])] for r in macro_rows]) for k in present},
            }
            scale = _scale([c["score"] for r in rows for c in r["cells"].values()], metric)
            table = {"family": family, "group": group, "kind": kind, "metric": metric,
                     "metric_label": metric_label(metric, signature), "scale": scale,
                     "systems": present, "rows": rows, "macro": macro,
                     "notes": table_notes(metric, [(s.label, res_) for t in task_list for s in systems
                                                   if (res_ := s.result(t)) is not None and metric in res_.metrics])}
            tables.append(table)

            for ref in references:
                if ref.key not in present:
                    continue
                others = [k for k in present if k != ref.key and by_key[k].variant == "adapter"]
                if not others:
                    continue
                drows, ddist = [], {}
                for r in rows:
                    dcells = {}
                    for k in others:
                        if k not in r["cells"] or ref.key not in r["cells"]:
                            continue
                        cell, dist = comp.paired(ref, by_key[k], r["task"], metric)
                        if cell is None:
                            sa, sb = r["cells"][ref.key]["score"], r["cells"][k]["score"]
                            cell = {"delta": sb - sa, "low": None, "high": None, "p_value": None,
                                    "n": None, "mcnemar": None, "changes": None, "reported_delta": sb - sa}
                        dcells[k], ddist[(k, r["task"])] = cell, dist
                    drows.append({"task": r["task"], "lang": r["lang"], "label": r["label"], "cells": dcells})
                dmacro = {"label": MACRO_LABEL, "langs": macro["langs"], "cells": {}}
                for k in others:
                    mrows = [d for d in drows if d["lang"] in macro["langs"]]
                    dmacro["cells"][k] = _macro_delta([d["cells"].get(k) for d in mrows],
                                                      [ddist.get((k, d["task"])) for d in mrows])
                deltas.append({"family": family, "group": group, "kind": kind, "metric": metric,
                               "metric_label": table["metric_label"], "scale": scale, "reference": ref.key,
                               "reference_label": ref.label, "systems": others, "rows": drows, "macro": dmacro})
                if ref.key == "base":
                    for d in drows:
                        if not is_english(d["lang"]):
                            continue
                        for k, c in d["cells"].items():
                            retention.append({
                                "family": family, "group": group, "metric": metric,
                                "metric_label": table["metric_label"], "scale": scale, "task": d["task"],
                                "system": k, "system_label": by_key[k].label,
                                "base": next(r for r in rows if r["task"] == d["task"])["cells"]["base"]["score"],
                                "score": next(r for r in rows if r["task"] == d["task"])["cells"][k]["score"],
                                "delta": c["delta"], "low": c["low"], "high": c["high"], "p_value": c["p_value"],
                                "mcnemar": c.get("mcnemar"),
                                "changes": c.get("changes"),
                            })

    budget_rows, budget_notes = compare_budgets(runs)
    return {
        "format": "sdrrl-harness report v1",
        "settings": {
            "n_resamples": n_resamples, "seed": seed, "ci_level": 0.95,
            "interval": "percentile bootstrap over items",
            "p_value": "paired bootstrap, two-sided: min(1, 2 (1 + min(#{d* <= 0}, #{d* >= 0})) / (R + 1))",
            "mcnemar": "exact binomial test on discordant pairs (0/1 metrics only)",
            "macro": "mean over the non-English languages all systems have; English is reported as retention",
            "significance": SIGNIFICANCE,
        },
        "runs": [_run_dict(r) for r in runs],
        "systems": [s.to_dict() for s in systems],
        "tables": tables,
        "deltas": deltas,
        "english_retention": retention,
        "cost": [_cost(r) for r in runs],
        "budget": budget_rows,
        "signatures": _signatures(systems),
        "notes": budget_notes + notes + comp.notes,
    }


def _run_dict(r: Run) -> dict:
    keys = ("trainer", "model", "suite", "engine", "seed", "languages", "trainer_config")
    return {"name": r.name, "path": str(r.path), **{k: r.spec.get(k) for k in keys}}


def _is_gpu(device: Any) -> bool:
    """Training records the device as the GPU's name ("NVIDIA H100 80GB HBM3 x1") or "cpu x1 (...)"."""
    d = str(device or "").strip().lower()
    return bool(d) and not d.startswith("cpu")


def _cost(r: Run) -> dict:
    st = r.stages
    train = st.get("train", {})
    evaluate = st.get("evaluate") or st.get("eval") or {}
    run_device = train.get("device") or r.spec.get("device")
    run_gpus = train.get("gpus") or train.get("num_processes") or r.spec.get("gpus") or 1
    names = sorted(st, key=lambda n: (STAGE_ORDER.index(n) if n in STAGE_ORDER else len(STAGE_ORDER)))
    gpu_h = None
    for name in names:
        if name not in GPU_STAGES:
            continue
        entry = st[name]
        device = entry.get("device") or run_device
        if _is_gpu(device) and isinstance(entry.get("wall_s"), (int, float)):
            gpus = entry.get("gpus") or entry.get("num_processes") or run_gpus
            gpu_h = (gpu_h or 0.0) + entry["wall_s"] * float(gpus) / 3600.0
    walls = [st[n].get("wall_s") for n in names if isinstance(st[n].get("wall_s"), (int, float))]
    return {
        "run": r.name, "trainer": r.trainer,
        "wall_s": {n: st[n].get("wall_s") for n in names},
        "total_wall_s": sum(walls) if walls else None,
        "records": (st.get("data") or {}).get("records"),
        "train_tokens": train.get("train_tokens"),
        "steps": train.get("steps"),
        "generated_tokens": evaluate.get("generated_tokens"),
        "device": run_device,
        "gpus": run_gpus if _is_gpu(run_device) else None,
        "gpu_hours": gpu_h,
    }


def _signatures(systems: list[System]) -> dict[str, list[dict]]:
    found: dict[str, dict[str, set[str]]] = {}
    for s in systems:
        for res in s.run.variant(s.variant).values():
            for metric, sig in (res.signatures or {}).items():
                found.setdefault(metric, {}).setdefault(str(sig), set()).add(res.family)
    return {m: [{"signature": sig, "families": sorted(fams)} for sig, fams in sorted(sigs.items())]
            for m, sigs in sorted(found.items())}


# --------------------------------------------------------------------------- formatting helpers


def _num(v: float | None, scale: float = 1.0, signed: bool = False, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    x = v * scale
    if abs(x) < 0.5 * 10**-digits:
        return f"{0:.{digits}f}"
    s = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return s.replace("-", "−")


def _p(p: float | None) -> str:
    """'=0.012', '<0.001' or '=—', to follow 'p' or 'McN p'."""
    if p is None:
        return "=—"
    if p < 0.001:
        return "<0.001"
    return f"={p:.3f}"


def _ci(c: dict, scale: float, signed: bool = False) -> str:
    if c.get("low") is None:
        return ""
    return f"[{_num(c['low'], scale, signed)}, {_num(c['high'], scale, signed)}]"


def _dur(s: float | None) -> str:
    if s is None:
        return "—"
    s = float(s)
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m {sec:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h {m:02d}m"


def _int(v: Any) -> str:
    return f"{int(v):,}" if isinstance(v, (int, float)) else "—"


def _title(t: dict) -> str:
    group = f" · {t['group']}" if t["group"] else ""
    unit = " (%)" if t["scale"] == 100.0 else ""
    return f"{t['family']}{group} · {t['metric_label']}{unit}"


def _sys_labels(report: dict) -> dict[str, str]:
    return {s["key"]: s["label"] for s in report["systems"]}


def _significant(c: dict | None) -> bool:
    return bool(c) and c.get("p_value") is not None and c["p_value"] < SIGNIFICANCE


# --------------------------------------------------------------------------- Markdown


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(header: list[str], rows: list[list[str]], align: str = "l") -> list[str]:
    out = [_md_row(header), "|" + "|".join([":---"] + ["---:" if align == "r" else ":---"] * (len(header) - 1)) + "|"]
    out += [_md_row(r) for r in rows]
    return out


def _seeds_text(c: dict, scale: float) -> str:
    """'± 1.2 sd, 3 seeds' for a seed mean; '' for one run."""
    if not c.get("seeds"):
        return ""
    spread = f"± {_num(c['spread'], scale)} sd, " if c.get("spread") is not None else ""
    return f"{spread}{c['seeds']} seeds"


def _score_text(c: dict | None, scale: float) -> str:
    if not c:
        return "—"
    ci = _ci(c, scale)
    seeds = _seeds_text(c, scale)
    return f"{_num(c['score'], scale)} {ci}".strip() + (f" ({seeds})" if seeds else "")


def _delta_notes(c: dict, scale: float) -> list[str]:
    """The test results and item counts under a delta, shared by the Markdown and HTML cells."""
    notes = [_seeds_text(c, scale)] if c.get("seeds") else []
    stat = []
    if c.get("p_value") is not None:
        stat.append(f"p{_p(c['p_value'])}")
    if c.get("mcnemar"):
        stat.append(f"McN p{_p(c['mcnemar']['p_value'])}")
    if stat:
        notes.append(" · ".join(stat))
    if c.get("changes"):
        ch = c["changes"]
        notes.append(f"{ch['improved']}↑ {ch['regressed']}↓ {ch['unchanged']}=")
    return notes


def _delta_text(c: dict | None, scale: float, sep: str = "<br>") -> str:
    if not c:
        return "—"
    main = _num(c["delta"], scale, signed=True)
    if _significant(c):
        main = f"**{main}**"
    parts = [f"{main} {_ci(c, scale, signed=True)}".strip(), *_delta_notes(c, scale)]
    return sep.join(parts)


def render_markdown(report: dict) -> str:
    labels = _sys_labels(report)
    st = report["settings"]
    out = ["# Comparison report", ""]
    out += _md_table(["run", "trainer", "model", "suite", "engine", "seed"],
                     [[r["name"], str(r["trainer"]), str(r["model"]), str(r["suite"]), str(r["engine"]),
                       str(r["seed"])] for r in report["runs"]])
    out += ["", f"Cells: score with a {int(st['ci_level'] * 100)}% {st['interval']} ({st['n_resamples']} resamples, "
                f"seed {st['seed']}). Accuracy-type metrics in %. The **{MACRO_LABEL}** row averages the "
                "non-English languages every system has; English is under *English retention*. "
                f"Deltas: **bold** = paired-bootstrap p < {SIGNIFICANCE}; McN = exact McNemar p; "
                "↑/↓/= items improved / regressed / unchanged.", ""]

    out += ["## Systems", ""]
    out += _md_table(*_systems_table(report)) + [""]

    out += ["## Scores", ""]
    for t in report["tables"]:
        out += [f"### {_title(t)}", ""]
        header = ["language"] + [labels[k] for k in t["systems"]]
        rows = [[r["label"]] + [_score_text(r["cells"].get(k), t["scale"]) for k in t["systems"]] for r in t["rows"]]
        m = t["macro"]
        rows.append([f"**{MACRO_LABEL}**"] + [_score_text(m["cells"].get(k), t["scale"]) for k in t["systems"]])
        out += _md_table(header, rows, "r")
        if m["excluded"]:
            out += ["", f"_Macro average leaves out: {', '.join(m['excluded'])}._"]
        out += [""] + [f"_{n}_" for n in t.get("notes", [])]
        out.append("")

    out += ["## Deltas", ""]
    if not report["deltas"]:
        out += ["_No comparisons: a delta needs a base-model evaluation (or a translate_sft run) and an adapter._", ""]
    for d in report["deltas"]:
        out += [f"### {_title(d)} — vs {d['reference_label']}", ""]
        header = ["language"] + [labels[k] for k in d["systems"]]
        rows = [[r["label"]] + [_delta_text(r["cells"].get(k), d["scale"]) for k in d["systems"]] for r in d["rows"]]
        rows.append([f"**{MACRO_LABEL}**"] + [_delta_text(d["macro"]["cells"].get(k), d["scale"]) for k in d["systems"]])
        out += _md_table(header, rows, "r") + [""]

    out += ["## English retention", ""]
    if report["english_retention"]:
        rows = [[f"{e['family']}{' ' + e['group'] if e['group'] else ''} · {e['metric_label']}", e["system_label"],
                 _num(e["base"], e["scale"]), _num(e["score"], e["scale"]),
                 _delta_text(e, e["scale"], sep=" · ")] for e in report["english_retention"]]
        out += _md_table(["task", "system", "base", "system score", "Δ vs base"], rows, "r")
    else:
        out.append("_No English tasks with both a base and an adapter evaluation._")
    out.append("")

    out += ["## Training budget", "", BUDGET_LEAD, ""]
    out += _md_table(*_budget_table(report), align="r") + [""]

    out += ["## Cost per run", ""]
    out += _md_table(*_cost_table(report), align="r")
    out += ["", f"_{GPU_NOTE}_", ""]

    out += ["## sacreBLEU signatures", ""]
    if report["signatures"]:
        rows = [[METRIC_NAMES.get(m, m), f"`{s['signature']}`", ", ".join(s["families"])]
                for m, sigs in report["signatures"].items() for s in sigs]
        out += _md_table(["metric", "signature", "families"], rows)
    else:
        out.append("_No sacreBLEU metrics in these runs._")
    out.append("")

    if report["notes"]:
        out += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    return "\n".join(out)


def _systems_table(report: dict) -> tuple[list[str], list[list[str]]]:
    header = ["system", "trainer", "runs", "seeds", "settings that set it apart"]
    rows = [[s["label"], s["trainer"], ", ".join(s["runs"]), ", ".join(str(x) for x in s.get("seeds") or []),
             ", ".join(f"{k}={v}" for k, v in (s.get("differs") or {}).items()) or "—"]
            for s in report["systems"]]
    return header, rows


BUDGET_LEAD = ("Equal budgets: every trained run should take the same optimizer steps on the same records per step; "
               "⚠ marks a figure more than 10% from the comparison's reference.")


def _budget_table(report: dict) -> tuple[list[str], list[list[str]]]:
    header = ["run", "trainer", "seed", "train records", "steps", "records/step", "training tokens", "tokens/step",
              "answer tokens", "dropped cut-off answers", "wall"]

    def mark(row: dict, field: str, text: str) -> str:
        return f"{text} ⚠" if field in row["unequal"] else text

    rows = [[r["run"], r["trainer"], str(r["seed"]), _int(r["records"]), mark(r, "steps", _int(r["steps"])),
             mark(r, "records_per_step", _int(r["records_per_step"])), _int(r["train_tokens"]),
             mark(r, "tokens_per_step", _int(r["tokens_per_step"])), _int(r["answer_tokens"]),
             _int(r["dropped_truncated_answers"]), _dur(r["wall_s"])]
            for r in report.get("budget", []) if r["trains"]]
    return header, rows


def _cost_table(report: dict) -> tuple[list[str], list[list[str]]]:
    stages = []
    for c in report["cost"]:
        for s in c["wall_s"]:
            if s not in stages:
                stages.append(s)
    stages.sort(key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER)))
    header = ["run", "trainer"] + [f"{s} wall" for s in stages] + [
        "total wall", "train records", "train tokens", "steps", "generated tokens", "device", "GPUs", "GPU hours"]
    rows = []
    for c in report["cost"]:
        rows.append([c["run"], c["trainer"]] + [_dur(c["wall_s"].get(s)) for s in stages] + [
            _dur(c["total_wall_s"]), _int(c["records"]), _int(c["train_tokens"]), _int(c["steps"]),
            _int(c["generated_tokens"]), str(c["device"] or "—"), _int(c["gpus"]),
            f"{c['gpu_hours']:.2f}" if c["gpu_hours"] is not None else "—"])
    return header, rows


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif;
  font-size: 14px; line-height: 1.5; color: #1f2328; background: #fff; margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 24px 64px; }
h1 { font-size: 2em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; margin-top: 0; }
h2 { font-size: 1.5em; border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
p.lead, p.small { color: #59636e; } p.small { font-size: 12px; }
.tw { overflow-x: auto; margin: 8px 0 16px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d1d9e0; padding: 5px 11px; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; text-align: center; }
td.num { text-align: right; white-space: nowrap; }
td.lbl { text-align: left; white-space: nowrap; }
tr:nth-child(even) td { background: #f6f8fa; }
tr.macro td { font-weight: 600; border-top: 2px solid #9198a1; background: #eef1f4; }
.ci { color: #59636e; font-size: 12px; }
.st { display: block; color: #59636e; font-size: 12px; }
td.pos { background: #dafbe1 !important; } td.neg { background: #ffebe9 !important; }
.sig { font-weight: 700; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
  background: #eff1f3; padding: 2px 5px; border-radius: 4px; }
ul.notes li { color: #59636e; }
nav { background: #f6f8fa; border: 1px solid #d1d9e0; border-radius: 6px; padding: 8px 16px; margin: 16px 0; }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
svg text { font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _html_table(header: list[str], rows: list[tuple[list[str], str]]) -> str:
    """rows: (already-escaped <td> elements, tr class)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f'<tr class="{cls}">' + "".join(cells) + "</tr>" if cls else "<tr>" + "".join(cells) + "</tr>"
                   for cells, cls in rows)
    return f'<div class="tw"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _td_score(c: dict | None, scale: float) -> str:
    if not c:
        return '<td class="num">—</td>'
    ci = _ci(c, scale)
    ci_html = f' <span class="ci">{_e(ci)}</span>' if ci else ""
    seeds = _seeds_text(c, scale)
    seeds_html = f'<span class="st">{_e(seeds)}</span>' if seeds else ""
    return f'<td class="num">{_e(_num(c["score"], scale))}{ci_html}{seeds_html}</td>'


def _td_delta(c: dict | None, scale: float) -> str:
    if not c:
        return '<td class="num">—</td>'
    cls = "num"
    if _significant(c):
        cls += " pos" if c["delta"] > 0 else " neg"
    main = _e(_num(c["delta"], scale, signed=True))
    if _significant(c):
        main = f'<span class="sig">{main}</span>'
    ci = _ci(c, scale, signed=True)
    parts = [main + (f' <span class="ci">{_e(ci)}</span>' if ci else "")]
    parts += [f'<span class="st">{_e(note)}</span>' for note in _delta_notes(c, scale)]
    return f'<td class="{cls}">' + "".join(parts) + "</td>"


def _color(v: float, vmax: float) -> str:
    """Diverging scale: red (negative) - white - blue (positive)."""
    t = max(-1.0, min(1.0, v / vmax)) if vmax > 0 else 0.0
    neg, pos, white = (207, 34, 46), (9, 105, 218), (255, 255, 255)
    end = pos if t >= 0 else neg
    a = abs(t) * 0.85
    r, g, b = (round(white[i] + (end[i] - white[i]) * a) for i in range(3))
    return f"#{r:02x}{g:02x}{b:02x}"


def heatmap_svg(d: dict, labels: dict[str, str]) -> str:
    """Inline SVG: systems x languages, colour = delta against the reference, * = significant."""
    cols = [(r["lang"], r["cells"]) for r in d["rows"]] + [("avg", d["macro"]["cells"])]
    rows = d["systems"]
    scale = d["scale"]
    vmax = color_range(d["metric"])  # fixed per metric, in displayed units: small deltas stay pale
    cw, ch = 58, 30
    left = 12 + 7 * max([len(labels[k]) for k in rows] + [4])
    top, bottom = 26, 26
    legend = (f"colour: Δ vs {d['reference_label']} in {units(scale, d['metric_label'])} "
              f"(±{_num(vmax, 1.0)} and beyond at full colour) · "
              f"* paired-bootstrap p < {SIGNIFICANCE}")
    width = max(left + cw * len(cols) + 10, 16 + int(6.3 * len(legend)))
    height = top + ch * len(rows) + bottom
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e("delta heatmap " + _title(d))}">']
    for j, (lang, _) in enumerate(cols):
        x = left + j * cw + cw / 2
        weight = ' font-weight="700"' if lang == "avg" else ""
        parts.append(f'<text x="{x:.1f}" y="{top - 8}" font-size="12" text-anchor="middle" fill="#1f2328"{weight}>'
                     f'{_e(lang)}</text>')
    for i, k in enumerate(rows):
        y = top + i * ch
        parts.append(f'<text x="{left - 8}" y="{y + ch / 2 + 4:.1f}" font-size="12" text-anchor="end" '
                     f'fill="#1f2328">{_e(labels[k])}</text>')
        for j, (lang, cells) in enumerate(cols):
            x = left + j * cw
            c = cells.get(k)
            if not c or c.get("delta") is None:
                parts.append(f'<rect x="{x}" y="{y}" width="{cw}" height="{ch}" fill="#f6f8fa" stroke="#ffffff"/>')
                continue
            v = c["delta"] * scale
            fill = _color(v, vmax)
            strong = abs(v) / vmax > 0.55
            txt = _num(c["delta"], scale, signed=True) + ("*" if _significant(c) else "")
            tip = f"{labels[k]} · {lang}: Δ {txt}, p{_p(c.get('p_value'))}"
            parts.append(f'<g><title>{_e(tip)}</title><rect x="{x}" y="{y}" width="{cw}" height="{ch}" '
                         f'fill="{fill}" stroke="#ffffff"/><text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" '
                         f'font-size="11" text-anchor="middle" fill="{"#ffffff" if strong else "#1f2328"}">'
                         f'{_e(txt)}</text></g>')
    ly = top + ch * len(rows) + 18
    parts.append(f'<text x="8" y="{ly}" font-size="11" fill="#59636e">{_e(legend)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict) -> str:
    labels = _sys_labels(report)
    st = report["settings"]
    b: list[str] = []
    b.append("<h1>Comparison report</h1>")
    b.append(_html_table(["run", "trainer", "model", "suite", "engine", "seed"], [
        ([f'<td class="lbl">{_e(r[k])}</td>' for k in ("name", "trainer", "model", "suite", "engine", "seed")], "")
        for r in report["runs"]]))
    b.append(f'<p class="lead">Cells: score with a {int(st["ci_level"] * 100)}% {_e(st["interval"])} '
             f'({st["n_resamples"]} resamples, seed {st["seed"]}). Accuracy-type metrics in %. The '
             f'<b>{_e(MACRO_LABEL)}</b> row averages the non-English languages every system has; English is under '
             f'<i>English retention</i>. Deltas: highlighted = paired-bootstrap p &lt; {SIGNIFICANCE}; McN = exact '
             f'McNemar p; ↑/↓/= items improved / regressed / unchanged.</p>')
    b.append('<nav><a href="#systems">Systems</a><a href="#scores">Scores</a><a href="#deltas">Deltas</a>'
             '<a href="#retention">English retention</a><a href="#budget">Budget</a><a href="#cost">Cost</a><a href="#signatures">Signatures</a>'
             + ('<a href="#notes">Notes</a>' if report["notes"] else "") + "</nav>")

    b.append('<h2 id="systems">Systems</h2>')
    sheader, srows = _systems_table(report)
    b.append(_html_table(sheader, [([f'<td class="lbl">{_e(x)}</td>' for x in r], "") for r in srows]))

    b.append('<h2 id="scores">Scores</h2>')
    for t in report["tables"]:
        b.append(f"<h3>{_e(_title(t))}</h3>")
        rows = [([f'<td class="lbl">{_e(r["label"])}</td>'] + [_td_score(r["cells"].get(k), t["scale"])
                                                            for k in t["systems"]], "") for r in t["rows"]]
        m = t["macro"]
        rows.append(([f'<td class="lbl">{_e(MACRO_LABEL)}</td>'] + [_td_score(m["cells"].get(k), t["scale"])
                                                                   for k in t["systems"]], "macro"))
        b.append(_html_table(["language"] + [labels[k] for k in t["systems"]], rows))
        if m["excluded"]:
            b.append(f'<p class="small">Macro average leaves out: {_e(", ".join(m["excluded"]))}.</p>')
        b.extend(f'<p class="small">{_e(n)}</p>' for n in t.get("notes", []))

    b.append('<h2 id="deltas">Deltas</h2>')
    if not report["deltas"]:
        b.append('<p class="small">No comparisons: a delta needs a base-model evaluation (or a translate_sft run) '
                 'and an adapter.</p>')
    for d in report["deltas"]:
        b.append(f"<h3>{_e(_title(d))} — vs {_e(d['reference_label'])}</h3>")
        b.append(f'<div class="tw">{forest_svg(d, labels)}</div>')
        b.append(f'<div class="tw">{heatmap_svg(d, labels)}</div>')
        rows = [([f'<td class="lbl">{_e(r["label"])}</td>'] + [_td_delta(r["cells"].get(k), d["scale"])
                                                            for k in d["systems"]], "") for r in d["rows"]]
        rows.append(([f'<td class="lbl">{_e(MACRO_LABEL)}</td>'] + [_td_delta(d["macro"]["cells"].get(k), d["scale"])
                                                                   for k in d["systems"]], "macro"))
        b.append(_html_table(["language"] + [labels[k] for k in d["systems"]], rows))

    b.append('<h2 id="retention">English retention</h2>')
    if report["english_retention"]:
        rows = [([f'<td class="lbl">{_e(e["family"] + (" " + e["group"] if e["group"] else "") + " · " + e["metric_label"])}</td>',
                  f'<td class="lbl">{_e(e["system_label"])}</td>',
                  f'<td class="num">{_e(_num(e["base"], e["scale"]))}</td>',
                  f'<td class="num">{_e(_num(e["score"], e["scale"]))}</td>',
                  _td_delta(e, e["scale"])], "") for e in report["english_retention"]]
        b.append(_html_table(["task", "system", "base", "system score", "Δ vs base"], rows))
    else:
        b.append('<p class="small">No English tasks with both a base and an adapter evaluation.</p>')

    b.append('<h2 id="budget">Training budget</h2>')
    b.append(f'<p class="lead">{_e(BUDGET_LEAD)}</p>')
    bheader, brows = _budget_table(report)
    b.append(_html_table(bheader, [([f'<td class="lbl">{_e(r[0])}</td>', f'<td class="lbl">{_e(r[1])}</td>']
                                    + [f'<td class="num">{_e(x)}</td>' for x in r[2:]], "") for r in brows]))

    b.append('<h2 id="cost">Cost per run</h2>')
    header, crow = _cost_table(report)
    b.append(_html_table(header, [([f'<td class="lbl">{_e(r[0])}</td>', f'<td class="lbl">{_e(r[1])}</td>']
                                   + [f'<td class="num">{_e(x)}</td>' for x in r[2:]], "") for r in crow]))
    b.append(f'<p class="small">{_e(GPU_NOTE)}</p>')

    b.append('<h2 id="signatures">sacreBLEU signatures</h2>')
    if report["signatures"]:
        b.append(_html_table(["metric", "signature", "families"], [
            ([f'<td class="lbl">{_e(METRIC_NAMES.get(m, m))}</td>', f'<td class="lbl"><code>{_e(s["signature"])}</code></td>',
              f'<td class="lbl">{_e(", ".join(s["families"]))}</td>'], "")
            for m, sigs in report["signatures"].items() for s in sigs]))
    else:
        b.append('<p class="small">No sacreBLEU metrics in these runs.</p>')

    if report["notes"]:
        b.append('<h2 id="notes">Notes</h2><ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in report["notes"])
                 + "</ul>")

    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>Comparison report: {_e(', '.join(r['name'] for r in report['runs']))}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n<main>\n" + "\n".join(b) + "\n</main>\n</body>\n</html>\n")
