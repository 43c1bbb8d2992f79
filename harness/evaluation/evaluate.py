"""Stage `evaluate`: run tasks through lm-eval on one model (plus optional LoRA adapter).

Each task's result lands in <out_dir>/<task>/{scores.json,samples.jsonl}, written atomically.
A task whose scores.json carries the same evaluation key is skipped, so an interrupted
evaluation resumes at the first unfinished task. The key and the cache shared between runs live
in harness.evaluation.evalcache, the engines in harness.engines, the rows of samples.jsonl in harness.evaluation.samples.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.evaluation import comet, genmetrics, metrics, taskdata
from harness.evaluation.contextlen import overlong_items, overlong_line
from harness.engines import AUTO, EngineSettings, Route, get_engine, route
from harness.engines.base import context_length
from harness.evaluation.evalcache import eval_key, publish_entry, read_entry, read_samples, shared_cache_dir, write_entry
from harness.core.models import adapter_fingerprint, merged_model_dir, model_fingerprint
from harness.core.runstore import read_json, task_scores
from harness.core.progress import say, silence_git_probe
from harness.evaluation.samples import metric_values, sample_rows
from harness.evaluation.registry import TaskInfo, lm_eval_paths, read_yaml


# Tasks scored by one lm-eval call (our default): fewer engine calls, larger batches; a killed run
# loses at most the call in flight (each task's result is written when its call returns).
TASKS_PER_CALL = 16


@dataclass
class EvalRequest:
    model_dir: Path
    tasks: list[TaskInfo]
    out_dir: Path  # runs/<name>/eval/<variant>
    variant: str = "base"  # "base" or "adapter"
    adapter: Path | None = None
    engine: str = AUTO  # or a backend's name (harness.engines.routing)
    data_dir: Path | None = None
    limit: int | None = None
    settings: EngineSettings = field(default_factory=EngineSettings)
    hf_batch_size: int = 8
    use_shared_cache: bool = True  # False (harness run --force): recompute, then refresh the cache


@dataclass(frozen=True)
class _Session:
    """What every task of one request shares while it runs."""

    manager: Any  # lm-eval's TaskManager over tasks/, the tasks' include paths (and lm-eval's own, if needed)
    adapter_fp: str | None
    comet_settings: Any


def task_route(req: EvalRequest, task: TaskInfo) -> Route:
    """The engine and adapter serving this task gets (harness.engines.routing)."""
    return route(req.engine, task.kind, req.adapter is not None, req.settings.adapter_serving)


def build_lm(req: EvalRequest, served: Route, adapter_fp: str | None = None) -> Any:
    """One lm-eval model object, reused by every task of the request that takes the same route."""
    engine = get_engine(served.engine)
    if served.serving == "merged":
        merged = merged_model_dir(req.model_dir, req.adapter, adapter_fp or adapter_fingerprint(req.adapter))
        args = engine.model_args(merged, None, req.settings)
    else:
        args = engine.model_args(req.model_dir, req.adapter if served.serving == "lora" else None, req.settings)
    return engine.lm(args, req.hf_batch_size)


def _uses_chat_template(lm: Any, task: TaskInfo) -> bool:
    # Instruction-tuned models answer open generation in their chat format; multiple-choice
    # loglikelihoods are scored on the plain prompt, as lm-eval's reference numbers are.
    # A task can opt out (the few-shot FLORES variant, written for base models).
    tokenizer = getattr(lm, "tokenizer", None)
    wanted = task.metadata.get("chat_template", True) is not False
    return task.kind == "generation" and wanted and bool(getattr(tokenizer, "chat_template", None))


def _token_counter(lm: Any):
    tokenizer = getattr(lm, "tokenizer", None)
    if tokenizer is None:
        return None
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


def evaluate(req: EvalRequest, progress: Any = None) -> dict[str, dict]:
    """Evaluate every task of `req`; returns {task: scores} for all of them, finished earlier or now."""
    silence_git_probe()
    comet_settings = comet.from_env()
    if comet_settings is not None and any(t.kind == "generation" for t in req.tasks):
        comet.check_ready(comet_settings)  # before any model is loaded
    model_fp, adapter_fp = model_fingerprint(req.model_dir), adapter_fingerprint(req.adapter)
    results: dict[str, dict] = {}
    pending: list[tuple[TaskInfo, str]] = []
    for task in req.tasks:
        key = eval_key(req, task, task_route(req, task), model_fp, adapter_fp)
        finished = _finished(req, task, key, progress)
        if finished is None:
            pending.append((task, key))
        else:
            results[task.name] = finished
    if pending:
        results.update(_run_pending(req, pending, adapter_fp, comet_settings, progress))
    return {t.name: results[t.name] for t in req.tasks}


def _finished(req: EvalRequest, task: TaskInfo, key: str, progress: Any = None) -> dict | None:
    """The task's scores when this evaluation holds them, or the shared cache does (copied in); else None.
    A damaged result is named in one line and evaluated again; a damaged cache entry is a miss."""
    task_dir = req.out_dir / task.name
    scores, damage = read_entry(task_dir, key)
    if scores is not None:
        return scores
    if damage:
        say(f"evaluate: {damage}; evaluating {task.name} again")
    if not req.use_shared_cache:
        return None
    entry = shared_cache_dir() / key
    cached, damage = read_entry(entry, key)
    rows = read_samples(entry) if cached is not None else None
    if rows is None:
        if damage:
            say(f"evaluate: shared evaluation cache: {damage}; a miss, {task.name} is recomputed")
        return None
    # The same model, adapter, task file, data and settings were evaluated by another run.
    # The entry names the folders of the run that computed it; this result is of this run's (same content).
    here = {"model": str(req.model_dir), "adapter": str(req.adapter) if req.adapter else None}
    _write_task(task_dir, {**cached, **here, "variant": req.variant, "reused_from_cache": True}, rows)
    if progress:
        progress.task_done(f"eval {req.variant}: {task.name}", len(rows), cached.get("wall_s", 0.0), from_cache=True)
    return read_json(task_scores(task_dir))


def _run_pending(req: EvalRequest, pending: list[tuple[TaskInfo, str]], adapter_fp: str | None,
                 comet_settings: Any, progress: Any) -> dict[str, dict]:
    from lm_eval.tasks import TaskManager

    task_metadata = {"data_dir": str(req.data_dir)} if req.data_dir else {}
    include_path, include_defaults = lm_eval_paths([task for task, _ in pending])
    manager = TaskManager(include_path=include_path, include_defaults=include_defaults, metadata=task_metadata)
    session = _Session(manager, adapter_fp, comet_settings)
    by_route: dict[Route, list[tuple[TaskInfo, str]]] = {}
    for task, key in pending:  # tasks taking the same route share one engine, built once
        by_route.setdefault(task_route(req, task), []).append((task, key))
    results: dict[str, dict] = {}
    bar = progress.add_task(f"eval {req.variant}", total=len(pending)) if progress else None
    for served, tasks in by_route.items():
        lm = build_lm(req, served, adapter_fp)
        for call in _calls(lm, tasks, req.settings.max_gen_toks):
            if progress:
                progress.update(bar, description=f"eval {req.variant}: {_call_label(call, served)}")
            for name, (scores, rows) in _run_call(req, session, lm, served, call).items():
                _write_task(req.out_dir / name, scores, rows)
                publish_entry(shared_cache_dir() / scores["eval_key"], scores, rows, replace=not req.use_shared_cache)
                results[name] = scores
                if progress:
                    progress.task_done(f"eval {req.variant}: {name}", len(rows), scores["wall_s"])
                    progress.advance(bar)
        lm = None
        gc.collect()
    return results


@dataclass(frozen=True)
class _Call:
    """Tasks scored by one lm-eval call: one kind, one chat setting, one generation budget (lm-eval's
    gen_kwargs apply to every task of a call), so one engine pass per request type."""

    kind: str
    chat: bool
    tasks: list[tuple[TaskInfo, str]]
    max_gen_toks: int | None = None  # set only under --max-gen-toks: each task's own limit, capped by it


def _calls(lm: Any, tasks: list[tuple[TaskInfo, str]], cap: int | None = None) -> list[_Call]:
    """The route's tasks grouped into calls of at most TASKS_PER_CALL tasks: lm-eval then sends every
    request of a type in the call to the engine at once (vLLM: one generate for all of them). Under a
    --max-gen-toks cap, generation tasks are grouped by their capped budget too."""
    groups: dict[tuple[str, bool, int | None], list[tuple[TaskInfo, str]]] = {}
    for task, key in tasks:
        budget = genmetrics.task_max_gen_toks(task, cap) if cap and task.kind == "generation" else None
        groups.setdefault((task.kind, _uses_chat_template(lm, task), budget), []).append((task, key))
    return [_Call(kind, chat, group[i : i + TASKS_PER_CALL], budget)
            for (kind, chat, budget), group in groups.items() for i in range(0, len(group), TASKS_PER_CALL)]


def _call_label(call: _Call, served: Route) -> str:
    names = [task.name for task, _ in call.tasks]
    return names[0] if len(names) == 1 else f"{len(names)} {call.kind} tasks ({served.label})"


def _run_call(req: EvalRequest, session: _Session, lm: Any, served: Route, call: _Call) -> dict[str, tuple[dict, list[dict]]]:
    """One lm-eval call over the call's tasks: {task: (scores, sample rows)}."""
    get_engine(served.engine).before_task(lm, served.serving, call.kind)
    counted_before = dict(vars(lm.counts)) if hasattr(lm, "counts") else None
    started = time.perf_counter()
    out = _simple_evaluate(req, lm, [_task_spec(task) for task, _ in call.tasks], session.manager, call.chat, call.max_gen_toks)
    wall = time.perf_counter() - started
    rows = {task.name: sample_rows(out["samples"][task.name], task.kind) for task, _ in call.tasks}
    items = sum(len(r) for r in rows.values()) or 1
    shared = {"tasks": [task.name for task, _ in call.tasks], "wall_s": round(wall, 3)}
    if counted_before is not None and call.kind != "generation":
        # Tokens the model ran for the call's log-likelihoods, against one forward per (context, choice).
        shared["scoring_tokens"] = {k: v - counted_before[k] for k, v in vars(lm.counts).items()}
    results = {}
    for task, key in call.tasks:
        share = wall * len(rows[task.name]) / items  # the call's wall time, split by items
        scores = _task_scores(req, session, lm, served, task, key, out, rows[task.name], call.chat)
        window = context_length(req.model_dir, req.settings.max_model_len) if req.settings.max_model_len else None
        scores["overlong_items"] = overlong_items(out["samples"][task.name], _token_counter(lm), window,
                                                  genmetrics.task_max_gen_toks(task, req.settings.max_gen_toks))
        if scores["overlong_items"]:
            say(f"evaluate: warning: {overlong_line(task.name, scores['overlong_items'], len(rows[task.name]), window)}")
        results[task.name] = ({**scores, "wall_s": round(share, 3), "engine_call": shared}, rows[task.name])
    return results


def _task_scores(req: EvalRequest, session: _Session, lm: Any, served: Route, task: TaskInfo, key: str,
                 out: dict, rows: list[dict], chat: bool) -> dict:
    values = metric_values(out["results"][task.name])
    gen = genmetrics.GenSettings(genmetrics.task_max_gen_toks(task, req.settings.max_gen_toks),
                                 _token_counter(lm), session.comet_settings)
    genmetrics.enrich(task, rows, values, gen)
    return {
        "task": task.name, "family": task.family, "lang": task.lang, "kind": task.kind,
        "primary_metric": task.primary_metric, "metrics": values, "n_samples": len(rows),
        "signatures": _signatures(task), "metadata": task.metadata,
        "engine": served.engine, "engine_requested": req.engine, "model": str(req.model_dir),
        "adapter": str(req.adapter) if req.adapter else None, "adapter_sha256": session.adapter_fp,
        "adapter_served_as": None if served.serving == "none" else served.serving,
        "route_basis": served.basis,  # named by the user, measured here by `harness selftest`, or the design default
        "variant": req.variant, "chat_template": chat, "limit": req.limit, "eval_key": key,
    }


def _signatures(task: TaskInfo) -> dict[str, str]:
    """How the task's sacreBLEU scores were computed: a family task's metadata.sacrebleu settings, else
    the lm-eval metrics its YAML lists."""
    if (task.metadata or {}).get("sacrebleu"):
        return metrics.sacrebleu_signatures(task.metadata)
    listed = read_yaml(task.yaml_path).get("metric_list") or []
    return metrics.lm_eval_signatures([str(m.get("metric")) for m in listed if isinstance(m, dict)])


def _task_spec(task: TaskInfo) -> str | dict[str, Any]:
    """What lm-eval loads for `task`: its name, or for a plain task with local data files its YAML as
    lm-eval reads it with those files resolved against the YAML's folder (harness.evaluation.taskdata)."""
    kwargs = taskdata.dataset_kwargs(task)
    if kwargs is None:
        return task.name
    from lm_eval.tasks._yaml_loader import load_yaml  # what lm-eval's TaskFactory reads a task YAML with

    return {**load_yaml(task.yaml_path, resolve_func=True), "task": task.name, "dataset_kwargs": kwargs}


def _simple_evaluate(req: EvalRequest, lm: Any, tasks: list[str | dict[str, Any]], manager: Any, chat: bool,
                     max_gen_toks: int | None = None) -> dict:
    from lm_eval import simple_evaluate

    return simple_evaluate(
        model=lm,
        tasks=tasks,
        task_manager=manager,
        limit=req.limit,
        log_samples=True,
        apply_chat_template=chat,
        gen_kwargs={"max_gen_toks": max_gen_toks} if max_gen_toks else None,
        bootstrap_iters=0,  # intervals come from our own bootstrap in reports/
        random_seed=req.settings.seed,
        numpy_random_seed=req.settings.seed,
        torch_random_seed=req.settings.seed,
        fewshot_random_seed=req.settings.seed,
    )


def _write_task(task_dir: Path, scores: dict, rows: list[dict]) -> None:
    write_entry(task_dir, scores, rows)  # scores.json last, with the integrity record of both files
