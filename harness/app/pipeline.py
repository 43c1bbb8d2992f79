"""`harness run`: the five stages of one run, in order, each cached in the run folder.

    plan -> data -> train -> evaluate -> report

A stage is skipped when the manifest holds it with the same input hash (and its output exists);
`force` redoes one stage and every stage after it. This is the only place that knows the order.
"""

from __future__ import annotations

import os

import dataclasses
import gc
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.services.doctor import preflight_run
from harness.engines import EngineSettings
from harness.core.errors import HarnessError, unknown
from harness.evaluation.disjoint import check_disjoint, heldout_docs
from harness.evaluation.evaluate import EvalRequest, evaluate
from harness.services.heldout import HELDOUT_VERSION, evaluate_heldout, split_heldout
from harness.core.langs import get_language
from harness.core.models import adapter_fingerprint, resolve_model
from harness.services.preflight import check_run
from harness.services.tracking import RunTracker, start_tracking
from harness.core.progress import console, make_progress, run_line, say, shown_path, stage
from harness.core.runstore import STAGES, Manifest, RunLock, RunPaths, atomic_dir, read_jsonl, sha256_file, sha256_json, write_jsonl
from harness.app.spec import RunSpec, check_same_run, save_spec, spec_digest
from harness.evaluation.registry import Suite, check_include_paths, get_suite, with_tasks
from harness.trainer_api import TrainContext, Trainer, build_config, get_trainer_class, settings_of

def _forget(paths: RunPaths, manifest: Manifest, force: str, keep_cache: bool = False) -> None:
    if force not in STAGES:
        raise unknown("stage for --force", force, STAGES)
    redo = STAGES[STAGES.index(force) :]
    manifest.forget(redo)
    # Outputs of redone stages go; caches (translations, self-distilled answers) stay: they are content-keyed.
    if "data" in redo:
        paths.train_data.unlink(missing_ok=True)
        paths.heldout_data.unlink(missing_ok=True)
    if "train" in redo:
        shutil.rmtree(paths.adapter, ignore_errors=True)
        shutil.rmtree(paths.train_checkpoints, ignore_errors=True)  # a forced retrain starts at step 1
    if "evaluate" in redo:
        for output in paths.eval_root.glob("*"):
            if keep_cache and output == paths.heldout_scores:
                continue  # content-keyed like the shared cache: --keep-cache reuses it (scoring it again took minutes in silence)
            shutil.rmtree(output) if output.is_dir() else output.unlink()
    if "plan" in redo:
        paths.spec.unlink(missing_ok=True)


def check_plan(spec: RunSpec) -> Trainer:
    """Everything about a run that can be checked without a model: settings, suite, the trainer's
    resources (lexicons, parallel data, files). Returns the configured trainer."""
    trainer_cls = get_trainer_class(spec.trainer)
    trainer = trainer_cls(build_config(trainer_cls, spec.trainer_config))
    run_suite(spec)
    trainer.check([get_language(code) for code in spec.languages])
    return trainer


def run_suite(spec: RunSpec) -> Suite:
    """The run's suite with the tasks its spec froze (--tasks, --include-path), resolved as `harness eval` does."""
    suite = get_suite(spec.suite, ",".join(spec.languages))
    return with_tasks(suite, list(spec.tasks) or None, check_include_paths(spec.include_paths))


def shown_model(model: str) -> str:
    """A model as the screen shows it: a local folder relative to where the user stands, a hub id or name as is."""
    return shown_path(model) if os.path.isabs(str(model)) else str(model)


def eval_summary(scores: dict[str, dict], cached: bool) -> str:
    n = sum(len(by_task) for by_task in scores.values())
    shared = sum(1 for by_task in scores.values() for s in by_task.values() if s.get("reused_from_cache"))
    head = "evaluate: cached" if cached else "evaluate: done"
    return f"{head} ({n} task results, {shared} from the shared evaluation cache)"


def check_inputs(spec: RunSpec, runs_dir: Path, force: str | None = None) -> tuple[Trainer, Any, Path | None]:
    """Every input of a run (check_plan, then harness.services.preflight: model folder, data, run folder;
    then harness.services.doctor's: what comes from outside), before anything is written or loaded.
    Returns the trainer, the suite and the data folder."""
    trainer = check_plan(spec)
    suite = run_suite(spec)
    data_dir = Path(spec.data_dir) if spec.data_dir else suite.data_dir
    model_dir = check_run(spec, type(trainer).trains, suite.tasks, data_dir, Path(runs_dir))
    trainer.check_model(model_dir)
    # What must come from outside (hub data, instructions, models), before the run folder is written
    data_built = RunPaths(Path(runs_dir) / spec.name).train_data.exists() and force not in STAGES[: STAGES.index("data") + 1]
    preflight_run(spec, suite, trainer, runs_dir, data_built=data_built)
    return trainer, suite, data_dir


def run(spec: RunSpec, runs_dir: Path, force: str | None = None, keep_cache: bool = False,
        min_effect: dict[str, float] | None = None, report_to: tuple[str, ...] = ()) -> Path:
    """Check every input, then run the stages holding the run folder's lock; `min_effect` reaches the
    report (reports.power), `report_to` names the trackers (harness.services.tracking); neither is part
    of the run's identity."""
    trainer, suite, data_dir = check_inputs(spec, runs_dir, force)  # nothing is written before this
    with RunLock(Path(runs_dir) / spec.name) as lock, make_progress():
        if lock.stale_owner:
            console.print(f"run folder lock: taking over from pid {lock.stale_owner.get('pid')} on {lock.stale_owner.get('host')}, which is gone")
        tracker = start_tracking(report_to, spec.name, Path(runs_dir) / spec.name, spec.to_dict())
        try:
            return _run_stages(spec, Path(runs_dir), trainer, suite, data_dir, force, keep_cache, min_effect, tracker)
        finally:
            if tracker is not None:
                tracker.finish()


def evaluate_base(spec: RunSpec, runs_dir: Path, force: str | None = None, keep_cache: bool = False) -> Path:
    """The base model's evaluation as `spec`'s run would do it, into runs_dir/base/eval/base: a comparison
    runs it once as its own job, and its members then find every base result in the shared cache."""
    check_plan(spec)
    suite = run_suite(spec)
    data_dir = Path(spec.data_dir) if spec.data_dir else suite.data_dir
    paths = RunPaths(Path(runs_dir) / "base")
    fresh_eval = bool(force) and force != "report" and not keep_cache
    settings = EngineSettings(max_model_len=spec.max_model_len, seed=spec.seed, max_gen_toks=spec.max_gen_toks, adapter_serving=spec.adapter_serving)
    request = EvalRequest(model_dir=resolve_model(spec.model), tasks=suite.tasks, out_dir=paths.eval_dir("base"), engine=spec.engine,
                          data_dir=data_dir, limit=spec.limit, settings=settings, use_shared_cache=not fresh_eval, variant="base")
    with RunLock(paths.root), make_progress() as progress:
        stage("evaluate")
        if fresh_eval:
            shutil.rmtree(paths.eval_root, ignore_errors=True)
        scores = evaluate(request, progress)
    run_line(eval_summary({"base": scores}, cached=False))
    return paths.root


@dataclass(frozen=True)
class _RunState:
    """One run while its stages go: what it is, where it lives, what is done."""

    spec: RunSpec
    paths: RunPaths
    manifest: Manifest
    digest: str  # the run's identity, an input of every stage (harness.app.spec.check_same_run's view)


def _run_stages(spec: RunSpec, runs_dir: Path, trainer: Any, suite: Any, data_dir: Path | None, force: str | None,
                keep_cache: bool, min_effect: dict[str, float] | None = None, tracker: RunTracker | None = None) -> Path:
    paths = RunPaths(Path(runs_dir) / spec.name)
    manifest = Manifest(paths.root)
    if force:
        _forget(paths, manifest, force, keep_cache)
    # A forced evaluation is recomputed, not copied from the shared cache, unless --keep-cache.
    fresh_eval = bool(force) and force != "report" and not keep_cache

    # 1 plan: everything checkable without a model was checked (run, check_plan) before this
    stage("plan")
    # A setting added since the folder was made, at its default, keeps the folder's spec and hashes.
    frozen = check_same_run(paths.spec, spec, settings_of(type(trainer).Config()))
    state = _RunState(spec, paths, manifest, spec_digest(frozen))
    languages = [get_language(code) for code in spec.languages]
    settings = EngineSettings(max_model_len=spec.max_model_len, seed=spec.seed, max_gen_toks=spec.max_gen_toks, adapter_serving=spec.adapter_serving)
    if not manifest.is_done("plan", state.digest):
        save_spec(frozen, paths.spec)
        manifest.record("plan", state.digest, 0.0, seed=spec.seed)
    run_line(f"run {spec.name}  trainer={spec.trainer} model={shown_model(spec.model)} suite={spec.suite} -> {shown_path(paths.root)}")
    model_dir = resolve_model(spec.model)
    ctx = TrainContext(model_dir=model_dir, languages=languages, work_dir=paths.work, engine=spec.engine, seed=spec.seed,
                       settings=settings, checkpoint_dir=paths.train_checkpoints,
                       on_step=tracker.on_step if tracker is not None else None)

    adapter: Path | None = None
    if type(trainer).trains:
        _data_stage(state, trainer, ctx)
        check_disjoint(read_jsonl(paths.train_data), heldout_docs(suite.tasks, data_dir))
        adapter = _train_stage(state, trainer, ctx)
        gc.collect()
    # out_dir, variant and adapter are set per variant
    request = EvalRequest(model_dir=model_dir, tasks=suite.tasks, out_dir=paths.eval_root, engine=spec.engine,
                          data_dir=data_dir, limit=spec.limit, settings=settings, use_shared_cache=not fresh_eval)
    eval_hash = _evaluate_stage(state, request, adapter, tracker)
    _report_stage(state, eval_hash, min_effect)
    return paths.root


def _cached(state: _RunState, stage_name: str, input_hash: str, redo: str) -> bool:
    """The stage is done with this input and the outputs it recorded are intact; a damaged one is
    named in one line (then the stage is redone, `redo` says how)."""
    if not state.manifest.is_done(stage_name, input_hash):
        return False
    damage = state.manifest.damage(stage_name)
    if damage:
        say(f"{stage_name}: {damage}; {redo}")
    return damage is None


def _data_stage(state: _RunState, trainer: Trainer, ctx: TrainContext) -> None:
    stage("data")
    spec, paths, manifest = state.spec, state.paths, state.manifest
    data_hash = sha256_json({"spec": state.digest, "stage": "data", "heldout": HELDOUT_VERSION})
    if _cached(state, "data", data_hash, "rebuilding the data stage") and paths.train_data.exists() and paths.heldout_data.exists():
        run_line(f"data: cached ({shown_path(paths.train_data)})")
        return
    started = time.perf_counter()
    records = trainer.build_dataset(ctx)
    if not records:
        raise HarnessError(f"trainer {spec.trainer!r} built an empty training set; check its data settings")
    records, heldout = split_heldout(records, spec.seed)  # never trained on: the learning signal
    write_jsonl(paths.heldout_data, heldout)
    write_jsonl(paths.train_data, records)
    kinds = Counter(r.get("kind", "?") for r in records)
    langs = Counter(r.get("lang", "?") for r in records)
    manifest.record(
        "data", data_hash, time.perf_counter() - started, seed=spec.seed,
        records=len(records), heldout_records=len(heldout), groups=len({r.get("group") for r in records}), kinds=dict(kinds), langs=dict(langs),
        trainer_stats=trainer.data_stats, outputs=[paths.train_data, paths.heldout_data],
    )
    run_line(f"data: {len(records)} records ({dict(kinds)})")


def _train_stage(state: _RunState, trainer: Trainer, ctx: TrainContext) -> Path:
    stage("train")
    spec, paths, manifest = state.spec, state.paths, state.manifest
    train_hash = sha256_json({"data": sha256_file(paths.train_data), "spec": state.digest})
    if _cached(state, "train", train_hash, "training again") and paths.adapter_weights.exists():
        run_line(f"train: cached ({shown_path(paths.adapter)})")
        return paths.adapter
    records = read_jsonl(paths.train_data)
    started = time.perf_counter()
    with atomic_dir(paths.adapter, scratch=paths.adapter_partial) as partial:
        stats = trainer.train(ctx, records, partial)
        shutil.rmtree(ctx.checkpoint_dir, ignore_errors=True)
    manifest.record("train", train_hash, time.perf_counter() - started, seed=spec.seed,
                    outputs=[f for f in paths.adapter.rglob("*") if f.is_file()], **stats)
    run_line(f"train: done ({stats.get('steps', '?')} steps, loss {stats.get('final_loss', '?')})")
    return paths.adapter


def _evaluate_stage(state: _RunState, request: EvalRequest, adapter: Path | None, tracker: RunTracker | None = None) -> str:
    """The base model always, the adapter when there is one; returns the stage's input hash."""
    stage("evaluate")
    spec, paths, manifest = state.spec, state.paths, state.manifest
    variants: list[tuple[str, Path | None]] = [("base", None)] + ([("adapter", adapter)] if adapter else [])
    eval_hash = sha256_json({"spec": state.digest, "adapter": adapter_fingerprint(adapter)})
    started = time.perf_counter()
    scores: dict[str, Any] = {}
    with make_progress() as progress:
        for variant, adapter_dir in variants:
            req = dataclasses.replace(request, out_dir=paths.eval_dir(variant), variant=variant, adapter=adapter_dir)
            scores[variant] = evaluate(req, progress)
            gc.collect()
    heldout = None
    if adapter is not None:
        heldout = evaluate_heldout(request.model_dir, adapter, paths.heldout_data, paths.heldout_scores,
                                   int(spec.trainer_config.get("max_seq_len", 1024)))
    if tracker is not None:
        tracker.log_results(heldout, scores, (manifest.stages.get("train") or {}).get("steps"))
    run_line(eval_summary(scores, cached=manifest.is_done("evaluate", eval_hash)))
    if not manifest.is_done("evaluate", eval_hash):
        # Per-task times add up across resumed sessions; this session's elapsed time alone would not.
        # A result reused from the shared cache cost this run nothing: its original time is recorded apart.
        results = [s for by_task in scores.values() for s in by_task.values()]
        task_wall = sum(s["wall_s"] for s in results if not s.get("reused_from_cache"))
        reused_wall = sum(s["wall_s"] for s in results if s.get("reused_from_cache"))
        manifest.record("evaluate", eval_hash, max(time.perf_counter() - started, task_wall), seed=spec.seed,
                        task_wall_s=round(task_wall, 3), reused_wall_s=round(reused_wall, 3), tasks=len(request.tasks),
                        variants=[v for v, _ in variants])
    return eval_hash


def _report_stage(state: _RunState, eval_hash: str, min_effect: dict[str, float] | None = None) -> None:
    stage("report")
    from reports.build import build_report

    started = time.perf_counter()
    build_report([state.paths.root], state.paths.root, min_effect=min_effect)
    state.manifest.record("report", eval_hash, time.perf_counter() - started)
    run_line(f"report: {shown_path(state.paths.report_md)}")
