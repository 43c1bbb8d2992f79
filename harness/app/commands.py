"""What each `harness` subcommand does, once its arguments are parsed (the parser: harness/app/cli.py).

Heavy imports stay inside the commands, so that `harness list` and bad input answer at once.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any, Sequence

from harness.core.configfile import load_config_file
from harness.core.errors import HarnessError, shown, unknown
from harness.core.rules import MAX_STEPS

LIST_WHATS = ("langs", "tasks", "suites", "trainers", "settings", "models", "engines")


def _parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HarnessError(f"--set expects key=value, got {shown(pair)}")
        if key.strip() in settings:  # as a config file's repeated key: which one was meant is a guess
            raise HarnessError(f"--set {shown(key.strip())} is given twice ({shown(settings[key.strip()])} and {shown(value.strip())}); give each setting once")
        settings[key.strip()] = value.strip()
    return settings


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if args.what not in LIST_WHATS:
        raise unknown("list", args.what, LIST_WHATS)
    if args.what == "settings" or getattr(args, "trainer", None):
        print(settings_listing(args.what, args.trainer))
        return 0
    if args.what == "langs":
        from harness.core.langs import LANGUAGE_SETS, LANGUAGES

        table = Table("code", "name", "FLORES code", "sets")
        for lang in LANGUAGES.values():
            table.add_row(lang.code, lang.name, lang.flores, ", ".join(s for s, codes in LANGUAGE_SETS.items() if lang.code in codes))
    elif args.what == "tasks":
        from harness.evaluation.registry import all_tasks, check_include_paths

        table = Table("task", "family", "lang", "kind", "metric", "from")
        for task in all_tasks(include_paths=check_include_paths(args.include_path or [])).values():
            table.add_row(task.name, task.family, task.lang, task.kind, task.primary_metric, str(task.root or task.source))
    elif args.what == "suites":
        from harness.evaluation.registry import all_suites

        table = Table("suite", "languages", "tasks", "data", "description")
        for suite in all_suites().values():
            table.add_row(suite.name, " ".join(suite.languages), str(len(suite.tasks)), str(suite.data_dir or "hub"), suite.description)
    elif args.what == "trainers":
        from harness.trainer_api import load_trainers

        table = Table("trainer", "trains", "ablations (<trainer>+<name>)", "description")
        for name, cls in sorted(load_trainers().items()):
            presets = ", ".join(f"{a} ({', '.join(f'{k}={v}' for k, v in p.items())})" for a, p in cls.ablations.items())
            table.add_row(name, "yes" if cls.trains else "no", presets or "-", cls.description)
    elif args.what == "engines":
        from harness.engines import all_engines

        table = Table("engine", "request types", "adapter servings", "LoRA served on a GPU for", "here")
        for name, cls in all_engines().items():
            table.add_row(name, ", ".join(cls.request_types), ", ".join(cls.adapter_servings),
                          ", ".join(cls.lora_preferred_for) or "-", cls.missing() or "installed")
    else:
        from harness.core.models import BUILTIN_MODELS

        table = Table("model", "description")
        for model in BUILTIN_MODELS.values():
            table.add_row(model.name, model.description)
    console.print(table)
    return 0


def _shown_default(value: Any) -> str:
    """A default as it is written after --set NAME=."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return '""' if value == "" else str(value)


def settings_listing(what: str, trainer: str | None) -> str:
    """Every setting of `trainer`: name = default, then its concern, rule and evidence, then its help.
    Plain lines, not a table: help texts are sentences, and each line stays greppable."""
    from harness.trainer_api import get_trainer_class, load_trainers, setting_infos

    if what != "settings":
        raise HarnessError(f"--trainer goes with `harness list settings` only, not `harness list {what}`")
    if not trainer:
        raise HarnessError(f"`harness list settings` needs --trainer T; valid: {', '.join(sorted(load_trainers()))}")
    infos = setting_infos(get_trainer_class(trainer))
    if not infos:
        return f"trainer {trainer!r} takes no settings"
    lines = [f"settings of trainer {trainer!r} (--set NAME=VALUE or --config FILE); paper: what backs the default: "
             "confirmed (the paper's own text) | third-party (a third party's report) | unknown (our default) | n/a (how the harness runs)"]
    for info in infos:
        where = f"concern: {info.concern}; " if info.concern else ""
        lines += ["", f"{info.name} = {_shown_default(info.default)}",
                  f"    {where}rule: {info.rule}; paper: {info.paper or '-'}",
                  f"    {info.help or '(no help text)'}"]
    return "\n".join(lines)


def _suite_tasks(args: argparse.Namespace):
    """The suite (--suite, --langs) running --tasks, and the --include-path folders, all checked."""
    from harness.evaluation.registry import check_include_paths, get_suite, parse_task_names, with_tasks

    include = check_include_paths(args.include_path or [])
    suite = get_suite(args.suite, args.langs)
    names = parse_task_names(args.tasks, suite) if args.tasks is not None else None
    return with_tasks(suite, names, include), include


def cmd_eval(args: argparse.Namespace) -> int:
    from harness.services import adapter_check, preflight
    from harness.engines import EngineSettings, check_parallel
    from harness.engines.routing import check_routes
    from harness.evaluation.evaluate import EvalRequest, evaluate
    from harness.core.models import resolve_model
    from harness.core.progress import console, make_progress
    from harness.core.runstore import RunLock, RunPaths
    from harness.app.spec import default_run_name

    preflight.check_cli(args)
    check_parallel(args.engine, args.tensor_parallel_size, args.data_parallel_size)
    suite, _ = _suite_tasks(args)
    tasks = suite.tasks
    check_routes(args.engine, {t.kind for t in tasks}, bool(args.adapter), args.adapter_serving)
    adapter = Path(args.adapter) if args.adapter else None
    if adapter is not None:
        adapter_check.check_adapter(adapter, EngineSettings().max_lora_rank)
    out = Path(args.out) if args.out else Path(args.runs_dir) / default_run_name("eval", args.model, args.suite)
    preflight.check_writable(out, "--out" if args.out else "--runs-dir")
    preflight.check_data(tasks, Path(args.data_dir).resolve() if args.data_dir else suite.data_dir)
    model_dir = resolve_model(args.model)
    preflight.check_model(model_dir, needs_chat_template=False)
    if adapter is not None:
        adapter_check.check_adapter_fits(adapter, model_dir, args.model)
    preflight.check_eval_out(out, args.model, model_dir, adapter)
    variant = "adapter" if adapter else "base"
    req = EvalRequest(
        model_dir=model_dir, tasks=tasks, out_dir=RunPaths(out).eval_dir(variant), variant=variant, adapter=adapter,
        engine=args.engine, data_dir=Path(args.data_dir).resolve() if args.data_dir else suite.data_dir,
        limit=args.limit, settings=EngineSettings(max_model_len=args.max_model_len, seed=args.seed, max_gen_toks=args.max_gen_toks,
                                adapter_serving=args.adapter_serving, tensor_parallel_size=args.tensor_parallel_size,
                                data_parallel_size=args.data_parallel_size),
    )
    with RunLock(out), make_progress() as progress:
        results = evaluate(req, progress)
    _print_scores(results, console)
    console.print(f"results: {req.out_dir}")
    return 0


def _print_scores(results: dict[str, dict], console: Any) -> None:
    from rich.table import Table

    table = Table("task", "lang", "metric", "score", "n", "wall s")
    for name, s in results.items():
        metric = s["primary_metric"]
        table.add_row(name, s["lang"], metric, f"{s['metrics'].get(metric, float('nan')):.4f}", str(s["n_samples"]), f"{s['wall_s']:.1f}")
    console.print(table)


def _trainer_config(trainer_cls, suite, args: argparse.Namespace):
    """One trainer's settings for fetch and doctor, layered as `harness run` layers them
    (harness.app.compare.member_settings). Validated before any work starts."""
    from harness.app.compare import Member, check_settings_known, member_settings
    from harness.trainer_api import build_config

    member = Member(trainer_cls.name, trainer_cls.name)
    config = load_config_file(args.config)
    config.pop("launcher", None)  # how `harness run` starts a comparison's members, not a trainer setting
    explicit = [config, _parse_settings(args.set or [])]
    check_settings_known([member], [suite.trainer_settings, *explicit], explicit)
    return build_config(trainer_cls, member_settings(member, [suite.trainer_settings, *explicit]))


def cmd_fetch(args: argparse.Namespace) -> int:
    from harness.services.fetch import fetch
    from harness.core.progress import console, make_progress
    from harness.evaluation.registry import get_suite
    from harness.trainer_api import TrainContext, get_trainer_class

    suite = get_suite(args.suite, args.langs)
    trainer_cls = get_trainer_class(args.trainer)
    config = _trainer_config(trainer_cls, suite, args)

    def translator():  # built only if a lexicon must be induced
        from harness.core.models import resolve_model
        from trainers.sources import make_config_translator

        model_dir = resolve_model(args.model) if args.model else None
        ctx = TrainContext(model_dir=model_dir, languages=[], work_dir=Path(args.out) / "lexicons" / ".cache", engine=args.engine)
        return make_config_translator(config.translation, ctx)

    with make_progress() as progress:
        result = fetch(suite, Path(args.out), model=args.model, config=config, trains=trainer_cls.trains, seed=args.seed,
                       make_translator=translator, progress=progress, comet=args.comet)
    console.print(f"fetched {len(result.fetched)}, already there {len(result.skipped)}, failed {len(result.failed)}; manifest: "
                  f"{Path(args.out) / 'fetch_manifest.json'}")
    if result.failed:
        raise HarnessError(f"{len(result.failed)} resource(s) not fetched (reasons above); fix them and rerun: finished ones are kept")
    print(f"harness run --trainer {args.trainer} --suite {args.suite} --data-dir {Path(args.out).resolve()} --model {args.model or 'MODEL'}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.core import mirror
    from harness.services.doctor import RunPlan, collect, render
    from harness.evaluation.registry import get_suite
    from harness.trainer_api import get_trainer_class

    suite = get_suite(args.suite, args.langs) if args.suite else None
    trainer_cls = get_trainer_class(args.trainer) if args.trainer else None
    config = _trainer_config(trainer_cls, suite, args) if trainer_cls and suite else None
    data_dir = Path(args.data_dir).resolve() if args.data_dir else None
    mirror.activate(data_dir)
    checks = collect(RunPlan(suite=suite, model=args.model, config=config, trains=bool(trainer_cls and trainer_cls.trains),
                             data_dir=data_dir, engine=args.engine, runs_dir=Path(args.runs_dir)))
    Console().print(render(checks))
    failed = sum(c.status == "fail" for c in checks)
    print(f"{failed} failing requirement(s)" if failed else "ready")
    return 1 if failed else 0


def cmd_selftest(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from harness.core.models import resolve_model
    from harness.engines import all_engines
    from harness.services.selftest import run_selftest

    wanted = [n.strip() for n in (args.engine or "").split(",") if n.strip()] or None
    for name in wanted or []:
        if name not in all_engines():
            raise unknown("engine to test", name, list(all_engines()))
    model_dir = resolve_model(args.model)
    console = Console(stderr=True)
    result = run_selftest(model_dir, wanted, on_served=lambda s: console.print(
        f"selftest: {s.label}: " + (s.error or ", ".join(f"{k} {v:.1f} items/s" for k, v in s.items_per_s.items()))))
    table = Table("engine", "adapter", "log-likelihood items/s", "generation items/s", "result")
    failed = set(result.table.failed)
    for s in result.served:
        rates = [f"{s.items_per_s[k]:.1f}" if k in s.items_per_s else "-" for k in ("loglikelihood", "generation")]
        table.add_row(s.engine, s.serving, *rates, "error" if s.error else ("FAIL" if s.engine in failed else "ok"))
    Console().print(table)
    for name, why in result.skipped.items():
        print(f"skipped {name}: {why}")
    for kind, chosen in result.table.routes.items():
        print(f"auto on this machine: {kind} -> {chosen.engine} (an adapter {chosen.serving}), {chosen.items_per_s:.1f} items/s")
    if result.routes_path:
        print(f"route table written to {result.routes_path} (--engine auto reads it)")
    for finding in result.findings:
        print(f"harness: {finding.line()}", file=sys.stderr)
    return 0 if result.passed else 1


def cmd_run(args: argparse.Namespace) -> int:
    from harness.services import preflight
    from harness.app.compare import check_settings_known, member_settings, parse_members, parse_seeds, plan_comparison, run_comparison
    from harness.app.launchers import LaunchOptions
    from harness.app.pipeline import run
    from harness.core.runstore import RunPaths, read_json
    from harness.services.tracking import parse_report_to
    from harness.app.spec import default_run_name
    from harness.engines.routing import check_routes
    from harness.trainer_api import get_trainer_class

    preflight.check_cli(args)
    from reports.power import parse_min_effect

    min_effect = parse_min_effect(args.min_effect)
    report_to = parse_report_to(args.report_to)  # an unknown or uninstalled tracker: one line, before any model
    if args.steps is not None and not 1 <= args.steps <= MAX_STEPS:
        raise HarnessError(f"bad value for --steps: {args.steps}; expected an integer in [1, {MAX_STEPS}]")
    from harness.engines import check_engine_name

    check_engine_name(args.judge_engine)
    if args.judge_engine != "auto" and not args.judge:
        raise HarnessError(f"--judge-engine {shown(args.judge_engine)} applies with --judge MODEL only")
    members = parse_members(args.trainer, args.ablations)
    if args.steps is not None and not any(get_trainer_class(m.trainer).trains for m in members):
        raise HarnessError(f"--steps {args.steps} applies to a trainer that trains; {', '.join(repr(m.trainer) for m in members)} train(s) nothing")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else [args.seed]
    judge_dir = None
    if args.judge:
        from harness.core.models import resolve_model

        judge_dir = resolve_model(args.judge)  # a bad judge name fails here, before any work
    suite, include = _suite_tasks(args)  # the task list and include paths are the run's (its spec keeps them)
    check_routes(args.engine, {t.kind for t in suite.tasks}, True, args.adapter_serving)
    # Settings, lowest to highest precedence: the suite's own trainer settings (e.g. the offline smoke
    # suite's shipped data), a --config file, then each --set; a member's ablation preset wins over all.
    config = load_config_file(args.config)
    launcher_block = config.pop("launcher", None)  # how members start, not a trainer setting
    explicit = [config, _parse_settings(args.set or [])]
    layers = [suite.trainer_settings, *explicit]
    check_settings_known(members, layers, explicit)

    make_spec = functools.partial(_run_spec, args, suite, include)
    launch = _launch_options(args, launcher_block)
    if len(members) == 1 and len(seeds) == 1 and launch != LaunchOptions():
        raise HarnessError("--launcher, --parallel and the other launcher settings run a comparison's members as jobs: "
                           "give several trainers (--trainer a,b) or seeds (--seeds 0,1)")
    if len(members) == 1 and len(seeds) == 1:
        member = members[0]
        if args.steps is not None:
            layers.append({"max_steps": args.steps})
        name = args.name or default_run_name(member.label, args.model, args.suite)
        spec = make_spec(member, member_settings(member, layers), seeds[0], name)
        run_dir = run(spec, Path(args.runs_dir), force=args.force, keep_cache=args.keep_cache, min_effect=min_effect,
                      report_to=report_to)
        if judge_dir is not None:
            _judge([run_dir], run_dir, judge_dir, args.judge, args.judge_engine, min_effect)
    else:
        name = args.name or default_run_name("compare", args.model, args.suite)
        comparison = plan_comparison(name, members, seeds, layers, make_spec, steps=args.steps)
        if launch.detach and judge_dir is not None:
            raise HarnessError("--judge waits for every member: drop --detach, or judge later with harness run ... --judge")
        run_dir, states = run_comparison(comparison, Path(args.runs_dir), force=args.force, keep_cache=args.keep_cache,
                                         min_effect=min_effect, launch=launch,
                                         report_to=report_to)
        unfinished = sorted(job for job, state in (states or {}).items() if state != "done")
        if unfinished:
            print(run_dir)
            print(f"harness: {len(unfinished)} job(s) did not finish: {', '.join(unfinished)} (why: above, or harness status "
                  f"{run_dir}); the report leaves them out and names them; rerun the same command to run them again", file=sys.stderr)
            return 1
        if judge_dir is not None and states is not None:
            members = [run_dir / r for r in read_json(RunPaths(run_dir).comparison)["runs"]]
            _judge(members, run_dir, judge_dir, args.judge, args.judge_engine, min_effect)
    print(run_dir)
    return 0


def _launch_options(args: argparse.Namespace, block: Any) -> Any:
    from harness.app.launchers import launch_options

    flags = {name: getattr(args, name, None) for name in ("launcher", "parallel", "gpus_per_member", "partition", "account",
                                                          "cpus_per_member", "mem_gb", "time_min", "detach")}
    return launch_options(block, flags)


def cmd_member(args: argparse.Namespace) -> int:
    from harness.app.plan import run_job

    print(run_job(Path(args.comparison), args.job))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from rich.console import Console

    from harness.app.launchers import failure_text, job_states, states_table
    from harness.app.plan import read_plan

    root = Path(args.comparison)
    plan = read_plan(root)
    rows = job_states(plan, root)
    console = Console()
    console.print(states_table(plan, rows))
    for row in rows:
        if row["state"] in ("failed", "cancelled"):
            console.print(f"[red]{row['job']} {row['state']}[/]" + failure_text(root, row["job"]), markup=True, highlight=False)
    done = sum(row["state"] == "done" for row in rows)
    print(f"{done} of {len(rows)} jobs done" + ("; harness report " + str(root) + " builds the report" if done == len(rows) else ""))
    return 0


def _run_spec(args: argparse.Namespace, suite: Any, include: Sequence[Path], member: Any, settings: dict[str, Any],
              seed: int, name: str | None = None) -> Any:
    """The RunSpec of one member and seed; building its trainer config validates the settings before any work."""
    from harness.app.spec import RunSpec
    from harness.trainer_api import build_config, get_trainer_class, settings_of

    config = build_config(get_trainer_class(member.trainer), settings)
    return RunSpec(
        name=name or f"{member.label}-s{seed}",
        trainer=member.trainer,
        model=args.model,
        suite=args.suite,
        languages=tuple(suite.languages),
        tasks=tuple(t.name for t in suite.tasks) if args.tasks is not None else (),
        include_paths=tuple(str(p) for p in include),
        trainer_config=settings_of(config),
        engine=args.engine,
        seed=seed,
        limit=args.limit,
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
        max_model_len=args.max_model_len,
        max_gen_toks=args.max_gen_toks,
        adapter_serving=args.adapter_serving,
    )


def _judge(run_dirs: list[Path], report_dir: Path, judge_dir: Path, judge_model: str, engine: str,
           min_effect: dict[str, float] | None = None) -> None:
    from harness.evaluation.judge import chat_generator, judge_run
    from reports.build import build_report

    generator = chat_generator(judge_dir, engine)
    n = sum(judge_run(run_dir, generator, judge_model) for run_dir in run_dirs)
    build_report(run_dirs, report_dir, min_effect=min_effect)  # again, now with the judge's verdicts
    print(f"judge {judge_model}: {n} open-ended task(s) judged")


def cmd_report(args: argparse.Namespace) -> int:
    from harness.core.progress import say
    from harness.services.preflight import check_report_out
    from harness.core.runstore import RunPaths
    from reports.build import build_report
    from reports.load import check_exists
    from reports.power import parse_min_effect

    min_effect = parse_min_effect(args.min_effect)
    from harness.app.plan import finish, plan_path, read_plan

    if len(args.runs) == 1 and plan_path(Path(args.runs[0])).is_file() and not args.out:
        report, missing = finish(Path(args.runs[0]), read_plan(Path(args.runs[0])))
        if missing:
            print(f"note: not finished, so not in the report: {', '.join(missing)} (harness status {args.runs[0]})", file=sys.stderr)
        print(report)
        return 0
    for run in args.runs:  # before --out is made: a report of nothing leaves no empty folder
        check_exists(Path(run))
    out = Path(args.out) if args.out else Path(args.runs[0])
    check_report_out(out, given=bool(args.out))
    report = build_report([Path(r) for r in args.runs], out, min_effect=min_effect)
    for line in report["unfinished"]:
        say(f"warning: {line}; the report covers the task results it has")
    print(RunPaths(out).report_md)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from harness.services.preflight import check_output_file
    from reports.check import check_run, moves_table, update_baseline

    if args.update:
        check_output_file(Path(args.against), "check --update: baseline")
        changed = update_baseline(Path(args.run), Path(args.against))
        if changed:
            print(moves_table(changed, limit=len(changed), names=("new", "old")))
        print(f"baseline updated: {args.against} ({len(changed)} cell(s) changed)")
        return 0
    result = check_run(Path(args.run), Path(args.against))
    for note in result.notes:
        print(f"note: {note}")
    for problem in result.problems:
        print(f"REGRESSION: {problem}")
    if result.moves:
        print(moves_table(result.moves))
    n = len(result.moves) + len(result.problems)
    print(f"check passed: {result.checked} cells within tolerance" if result.ok else f"check failed: {n} cell(s) moved")
    return 0 if result.ok else 1


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.services.preflight import check_output_file, parse_tolerances
    from reports.check import DEFAULT_MULTIPLE, record_baseline

    tolerance = parse_tolerances(args.tolerance or [])
    check_output_file(Path(args.out), "--out")
    b = record_baseline(Path(args.run), Path(args.out), [Path(p) for p in args.noise_run or []],
                        args.noise_multiple if args.noise_multiple is not None else DEFAULT_MULTIPLE, tolerance, args.command_line)
    print(f"{args.out}: {len(b['cells'])} cells, noise over {b['noise']['n_runs']} run(s)")
    for kind, tol in b["tolerance"].items():
        print(f"  {kind}: tolerance {tol:.3g} (spread {b['noise']['spread'].get(kind, 0.0):.3g})")
    for key, cell in b["cells"].items():
        if cell["kind"] == "heldout_drop" and "min" not in cell:
            print(f"  warning: {key} = {cell['value']:.4g}: the adapter did not lower the held-out loss")
    return 0


