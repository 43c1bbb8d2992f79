"""The `harness` command line. Bad input ends in one line naming the bad value and the valid ones."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from harness.errors import HarnessError, unknown
from harness.progress import quiet_libraries

LIST_WHATS = ("langs", "tasks", "suites", "trainers", "models")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + traceback-like noise
        self.exit(2, f"harness: error: {message}\n")


def _parse_settings(pairs: Sequence[str]) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise HarnessError(f"--set expects key=value, got {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def _load_config_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"config file {path!r} does not exist or is not a file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"config file {path!r} cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise HarnessError(f"config file {path!r} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise HarnessError(f"config file {path!r} must hold a mapping of trainer settings (setting: value)")
    return data


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if args.what not in LIST_WHATS:
        raise unknown("list", args.what, LIST_WHATS)
    if args.what == "langs":
        from harness.langs import LANGUAGE_SETS, LANGUAGES

        table = Table("code", "name", "FLORES code", "sets")
        for lang in LANGUAGES.values():
            table.add_row(lang.code, lang.name, lang.flores, ", ".join(s for s, codes in LANGUAGE_SETS.items() if lang.code in codes))
    elif args.what == "tasks":
        from harness.tasks import all_tasks

        table = Table("task", "family", "lang", "kind", "metric")
        for task in all_tasks().values():
            table.add_row(task.name, task.family, task.lang, task.kind, task.primary_metric)
    elif args.what == "suites":
        from harness.tasks import all_suites

        table = Table("suite", "languages", "tasks", "data", "description")
        for suite in all_suites().values():
            table.add_row(suite.name, " ".join(suite.languages), str(len(suite.tasks)), str(suite.data_dir or "hub"), suite.description)
    elif args.what == "trainers":
        from harness.trainer_api import load_trainers

        table = Table("trainer", "trains", "ablations (<trainer>+<name>)", "description")
        for name, cls in sorted(load_trainers().items()):
            presets = ", ".join(f"{a} ({', '.join(f'{k}={v}' for k, v in p.items())})" for a, p in cls.ablations.items())
            table.add_row(name, "yes" if cls.trains else "no", presets or "-", cls.description)
    else:
        from harness.models import BUILTIN_MODELS

        table = Table("model", "description")
        for model in BUILTIN_MODELS.values():
            table.add_row(model.name, model.description)
    console.print(table)
    return 0


def _suite_tasks(suite_name: str, langs: str | None, task_names: str | None):
    from harness.tasks import get_suite, get_task

    suite = get_suite(suite_name, langs)
    if task_names:
        wanted = [get_task(n.strip()) for n in task_names.split(",") if n.strip()]
        in_suite = {t.name for t in suite.tasks}
        for task in wanted:
            if task.name not in in_suite:
                raise unknown(f"task in suite {suite_name!r}:", task.name, sorted(in_suite))
        return suite, wanted
    return suite, suite.tasks


def cmd_eval(args: argparse.Namespace) -> int:
    from harness import preflight
    from harness.engines import EngineSettings, check_parallel
    from harness.evaluate import EvalRequest, evaluate
    from harness.models import resolve_model
    from harness.progress import console, make_progress
    from harness.runstore import RunLock, RunPaths
    from harness.spec import default_run_name

    preflight.check_cli(args)
    check_parallel(args.engine, args.tensor_parallel_size, args.data_parallel_size)
    suite, tasks = _suite_tasks(args.suite, args.langs, args.tasks)
    adapter = Path(args.adapter) if args.adapter else None
    if adapter is not None:
        preflight.check_adapter(adapter, EngineSettings().max_lora_rank)
    out = Path(args.out) if args.out else Path(args.runs_dir) / default_run_name("eval", args.model, args.suite)
    preflight.check_writable(out, "--out" if args.out else "--runs-dir")
    preflight.check_data(tasks, Path(args.data_dir).resolve() if args.data_dir else suite.data_dir)
    model_dir = resolve_model(args.model)
    preflight.check_model(model_dir, needs_chat_template=False)
    variant = "adapter" if adapter else "base"
    req = EvalRequest(
        model_dir=model_dir, tasks=tasks, out_dir=RunPaths(out).eval_dir(variant), variant=variant, adapter=adapter,
        engine=args.engine, data_dir=Path(args.data_dir).resolve() if args.data_dir else suite.data_dir,
        limit=args.limit, settings=EngineSettings(max_model_len=args.max_model_len, seed=args.seed, max_gen_toks=args.max_gen_toks,
                                lora_scoring=args.lora_scoring, tensor_parallel_size=args.tensor_parallel_size,
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
    (harness.compare.member_settings). Validated before any work starts."""
    from harness.compare import Member, check_settings_known, member_settings
    from harness.trainer_api import build_config

    member = Member(trainer_cls.name, trainer_cls.name)
    explicit = [_load_config_file(args.config), _parse_settings(args.set or [])]
    check_settings_known([member], [suite.trainer_settings, *explicit], explicit)
    return build_config(trainer_cls, member_settings(member, [suite.trainer_settings, *explicit]))


def cmd_fetch(args: argparse.Namespace) -> int:
    from harness.fetch import fetch
    from harness.progress import console, make_progress
    from harness.tasks import get_suite
    from harness.trainer_api import TrainContext, get_trainer_class

    suite = get_suite(args.suite, args.langs)
    trainer_cls = get_trainer_class(args.trainer)
    config = _trainer_config(trainer_cls, suite, args)

    def translator():  # built only if a lexicon must be induced
        from harness.models import resolve_model
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

    from harness import mirror
    from harness.doctor import RunPlan, collect, render
    from harness.tasks import get_suite
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


def cmd_run(args: argparse.Namespace) -> int:
    from harness import preflight
    from harness.compare import check_settings_known, member_settings, parse_members, parse_seeds, plan_comparison, run_comparison
    from harness.pipeline import run
    from harness.spec import RunSpec, default_run_name
    from harness.tasks import get_suite
    from harness.runstore import RunPaths, read_json
    from harness.trainer_api import build_config, get_trainer_class, settings_of

    preflight.check_cli(args)
    if args.steps is not None and args.steps < 1:
        raise HarnessError(f"bad value for --steps: {args.steps}; expected an integer >= 1")
    judge_dir = None
    if args.judge:
        from harness.engines import check_engine
        from harness.models import resolve_model

        check_engine(args.judge_engine)
        judge_dir = resolve_model(args.judge)  # a bad judge name fails here, before any work
    members = parse_members(args.trainer, args.ablations)
    seeds = parse_seeds(args.seeds) if args.seeds else [args.seed]
    suite = get_suite(args.suite, args.langs)
    # Settings, lowest to highest precedence: the suite's own trainer settings (e.g. the offline smoke
    # suite's shipped data), a --config file, then each --set; a member's ablation preset wins over all.
    explicit = [_load_config_file(args.config), _parse_settings(args.set or [])]
    layers = [suite.trainer_settings, *explicit]
    check_settings_known(members, layers, explicit)

    def make_spec(member, settings: dict[str, Any], seed: int, name: str | None = None) -> RunSpec:
        config = build_config(get_trainer_class(member.trainer), settings)  # validates before any work
        return RunSpec(
            name=name or f"{member.label}-s{seed}",
            trainer=member.trainer,
            model=args.model,
            suite=args.suite,
            languages=tuple(suite.languages),
            trainer_config=settings_of(config),
            engine=args.engine,
            seed=seed,
            limit=args.limit,
            data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
            max_model_len=args.max_model_len,
            max_gen_toks=args.max_gen_toks,
            lora_scoring=args.lora_scoring,
        )

    if len(members) == 1 and len(seeds) == 1:
        member = members[0]
        if args.steps is not None:
            layers.append({"max_steps": args.steps})
        name = args.name or default_run_name(member.label, args.model, args.suite)
        spec = make_spec(member, member_settings(member, layers), seeds[0], name)
        run_dir = run(spec, Path(args.runs_dir), force=args.force, keep_cache=args.keep_cache)
        if judge_dir is not None:
            _judge([run_dir], run_dir, judge_dir, args.judge, args.judge_engine)
    else:
        name = args.name or default_run_name("compare", args.model, args.suite)
        comparison = plan_comparison(name, members, seeds, layers, make_spec, steps=args.steps)
        run_dir = run_comparison(comparison, Path(args.runs_dir), force=args.force, keep_cache=args.keep_cache)
        if judge_dir is not None:
            members = [run_dir / r for r in read_json(RunPaths(run_dir).comparison)["runs"]]
            _judge(members, run_dir, judge_dir, args.judge, args.judge_engine)
    print(run_dir)
    return 0


def _judge(run_dirs: list[Path], report_dir: Path, judge_dir: Path, judge_model: str, engine: str) -> None:
    from harness.judge import chat_generator, judge_run
    from reports.build import build_report

    generator = chat_generator(judge_dir, engine)
    n = sum(judge_run(run_dir, generator, judge_model) for run_dir in run_dirs)
    build_report(run_dirs, report_dir)  # again, now with the judge's verdicts
    print(f"judge {judge_model}: {n} open-ended task(s) judged")


def cmd_report(args: argparse.Namespace) -> int:
    from harness.runstore import RunPaths
    from reports.build import build_report

    out = Path(args.out) if args.out else Path(args.runs[0])
    build_report([Path(r) for r in args.runs], out)
    print(RunPaths(out).report_md)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from reports.check import check_run, moves_table, update_baseline

    if args.update:
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
    from harness.preflight import parse_tolerances
    from reports.check import DEFAULT_MULTIPLE, record_baseline

    tolerance = parse_tolerances(args.tolerance or [])
    b = record_baseline(Path(args.run), Path(args.out), [Path(p) for p in args.noise_run or []],
                        args.noise_multiple if args.noise_multiple is not None else DEFAULT_MULTIPLE, tolerance, args.command_line)
    print(f"{args.out}: {len(b['cells'])} cells, noise over {b['noise']['n_runs']} run(s)")
    for kind, tol in b["tolerance"].items():
        print(f"  {kind}: tolerance {tol:.3g} (spread {b['noise']['spread'].get(kind, 0.0):.3g})")
    for key, cell in b["cells"].items():
        if cell["kind"] == "heldout_drop" and "min" not in cell:
            print(f"  warning: {key} = {cell['value']:.4g}: the adapter did not lower the held-out loss")
    return 0


def _add_fetch_and_doctor(sub) -> None:
    def requirements(p: argparse.ArgumentParser, suite_default: str | None) -> None:
        p.add_argument("--suite", default=suite_default, help="task suite (harness list suites)")
        p.add_argument("--model", help="built-in name, local HF folder, or hub id")
        p.add_argument("--langs", help="restrict the suite to these languages, e.g. cs,ja")
        p.add_argument("--engine", default="vllm", help="vllm (default) or hf")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="trainer setting; repeatable")
        p.add_argument("--config", help="YAML file of trainer settings")

    p = sub.add_parser("fetch", help="download what a suite and trainer need into a mirror for --data-dir")
    requirements(p, "paper15")
    p.add_argument("--trainer", default="sdrrl", help="trainer whose data to fetch (default sdrrl)")
    p.add_argument("--out", required=True, help="mirror folder (then: harness run ... --data-dir OUT)")
    p.add_argument("--seed", type=int, default=0, help="the run's seed: parallel pairs are drawn with it")
    p.add_argument("--comet", metavar="HUB_ID", help="also a COMET model and its encoder's tokenizer, e.g. Unbabel/wmt22-comet-da")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("doctor", help="what a run needs, whether it is here, and the fix")
    requirements(p, None)
    p.add_argument("--trainer", help="trainer plugin (harness list trainers)")
    p.add_argument("--data-dir", help="local data / mirror folder the run will get")
    p.add_argument("--runs-dir", default="runs")
    p.set_defaults(func=cmd_doctor)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="languages, tasks, suites, trainers or built-in models")
    p.add_argument("what", help=" | ".join(LIST_WHATS))
    p.set_defaults(func=cmd_list)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", required=True, help="built-in name (harness list models), local HF folder, or hub id")
        p.add_argument("--suite", default="smoke", help="task suite (harness list suites)")
        p.add_argument("--langs", help="restrict the suite to these languages, e.g. cs,ja")
        p.add_argument("--engine", default="vllm", help="vllm (default) or hf")
        p.add_argument("--data-dir", help="local data folder in the hub datasets' formats (default: the suite's, else the hub)")
        p.add_argument("--limit", type=int, help="at most N items per task (quick runs)")
        p.add_argument("--seed", type=int, default=0, help="the run's seed (data sampling, training; a comparison takes --seeds)")
        p.add_argument("--max-model-len", type=int, default=2048)
        p.add_argument("--max-gen-toks", type=int, help="cap on generated tokens per item (default: each task's own)")
        p.add_argument("--lora-scoring", default="merge",
                       help="vLLM multiple choice with an adapter: merge (adapter merged into the weights, batched; default) "
                            "or serial (LoRA served as such, one request at a time)")
        p.add_argument("--runs-dir", default="runs", help="where run folders go (default ./runs)")

    p = sub.add_parser("eval", help="evaluate a model (and optional LoRA adapter) on a suite")
    common(p)
    p.add_argument("--adapter", help="LoRA adapter folder (PEFT, safetensors)")
    p.add_argument("--tasks", help="only these tasks of the suite, comma-separated")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs one model is split over (default 1)")
    p.add_argument("--data-parallel-size", type=int, default=1, help="vLLM: model replicas, through ray (default 1)")
    p.add_argument("--out", help="run folder to write into (default runs/eval-<model>-<suite>)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("run", help="data -> train -> evaluate -> report, for one trainer or a comparison of several")
    common(p)
    p.add_argument("--trainer", required=True,
                   help="trainer plugin (harness list trainers), or several for one comparison at an equal budget: "
                        "sdrrl,translate_sft,english_sft; <trainer>+<ablation> names an ablation preset")
    p.add_argument("--seeds", help="several seeds, e.g. 0,1,2: one run per trainer and seed, reported as seed means")
    p.add_argument("--ablations", action="store_true", help="add every ablation preset of each listed trainer")
    p.add_argument("--steps", type=int, help="optimizer steps for every member (default: what the first trainer takes at its epochs)")
    p.add_argument("--name", help="run (or comparison) folder name (default <trainer>-<model>-<suite>, compare-<model>-<suite>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="trainer setting; repeatable")
    p.add_argument("--config", help="YAML file of trainer settings")
    p.add_argument("--force", metavar="STAGE", help="redo this stage and the ones after it: plan data train evaluate report "
                   "(evaluations are recomputed, not taken from the shared cache)")
    p.add_argument("--keep-cache", action="store_true", help="with --force: reuse evaluations from the shared cache")
    p.add_argument("--judge", metavar="MODEL", help="judge the open-ended answers pairwise against the base model's")
    p.add_argument("--judge-engine", default="vllm", help="engine serving the judge: vllm (default) or hf")
    p.set_defaults(func=cmd_run)

    _add_fetch_and_doctor(sub)

    p = sub.add_parser("report", help="compare runs: Markdown, HTML and JSON")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", help="folder for report.{md,html,json} (default: the first run's folder)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("check", help="compare a run with a recorded baseline; exit 1 on regression")
    p.add_argument("run")
    p.add_argument("--against", required=True, help="baseline JSON in baselines/")
    p.add_argument("--update", action="store_true", help="rewrite the baseline's values from this run on purpose (shows old and new)")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("baseline", help="record a run's scores as a baseline file")
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.add_argument("--noise-run", action="append", metavar="RUN",
                   help="a rerun of the same command; the spread over all runs sets the tolerances (repeatable)")
    p.add_argument("--noise-multiple", type=float, help="tolerance = this x the measured spread (default 3)")
    p.add_argument("--tolerance", action="append", metavar="KIND=VALUE", help="set a cell kind's tolerance by hand, e.g. acc=0.05")
    p.add_argument("--command", dest="command_line", help="the command the runs were made with, kept in the file")
    p.set_defaults(func=cmd_baseline)
    for command in sub.choices.values():
        command.add_argument("-v", "--verbose", action="store_true", help="show the libraries' own progress bars and logs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries(args.verbose)
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; finished stages and tasks are kept, rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # the last resort: one line, the traceback in a log file
        from harness.crashlog import crash_line

        print(crash_line(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
