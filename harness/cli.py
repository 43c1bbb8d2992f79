"""The `harness` command line. Bad input ends in one line naming the bad value and the valid ones."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

from harness.errors import HarnessError, unknown

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
    if not p.exists():
        raise HarnessError(f"config file {path!r} does not exist")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise HarnessError(f"config file {path!r} must hold a mapping of trainer settings")
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

        table = Table("trainer", "trains", "description")
        for name, cls in sorted(load_trainers().items()):
            table.add_row(name, "yes" if cls.trains else "no", cls.description)
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
    from harness.engines import EngineSettings, check_engine, check_parallel
    from harness.evaluate import EvalRequest, evaluate
    from harness.models import resolve_model
    from harness.pipeline import console, make_progress
    from harness.spec import default_run_name

    check_engine(args.engine)
    check_parallel(args.engine, args.tensor_parallel_size, args.data_parallel_size)
    suite, tasks = _suite_tasks(args.suite, args.langs, args.tasks)
    adapter = Path(args.adapter) if args.adapter else None
    if adapter is not None and not adapter.is_dir():
        raise HarnessError(f"adapter folder {args.adapter!r} does not exist")
    model_dir = resolve_model(args.model)
    out = Path(args.out) if args.out else Path(args.runs_dir) / default_run_name("eval", args.model, args.suite)
    variant = "adapter" if adapter else "base"
    req = EvalRequest(
        model_dir=model_dir, tasks=tasks, out_dir=out / "eval" / variant, variant=variant, adapter=adapter,
        engine=args.engine, data_dir=Path(args.data_dir).resolve() if args.data_dir else suite.data_dir,
        limit=args.limit, settings=EngineSettings(max_model_len=args.max_model_len, seed=args.seed, max_gen_toks=args.max_gen_toks,
                                lora_scoring=args.lora_scoring, tensor_parallel_size=args.tensor_parallel_size,
                                data_parallel_size=args.data_parallel_size),
    )
    with make_progress() as progress:
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


def cmd_run(args: argparse.Namespace) -> int:
    from harness.engines import check_engine
    from harness.pipeline import run
    from harness.spec import RunSpec, default_run_name
    from harness.tasks import get_suite
    from harness.trainer_api import build_config, get_trainer_class

    check_engine(args.engine)
    trainer_cls = get_trainer_class(args.trainer)
    suite = get_suite(args.suite, args.langs)
    # Settings, lowest to highest precedence: the suite's own trainer settings (e.g. the offline smoke
    # suite's shipped data), a --config file, then each --set.
    settings: dict[str, Any] = {}
    config_fields = set(trainer_cls.Config.__dataclass_fields__)
    settings.update({k: v for k, v in suite.trainer_settings.items() if k in config_fields})
    settings.update(_load_config_file(args.config))
    settings.update(_parse_settings(args.set or []))
    config = build_config(trainer_cls, settings)  # validates names and types before any work starts
    spec = RunSpec(
        name=args.name or default_run_name(args.trainer, args.model, args.suite),
        trainer=args.trainer,
        model=args.model,
        suite=args.suite,
        languages=tuple(suite.languages),
        trainer_config=dataclasses.asdict(config),
        engine=args.engine,
        seed=args.seed,
        limit=args.limit,
        data_dir=str(Path(args.data_dir).resolve()) if args.data_dir else None,
        max_model_len=args.max_model_len,
        max_gen_toks=args.max_gen_toks,
        lora_scoring=args.lora_scoring,
    )
    run_dir = run(spec, Path(args.runs_dir), force=args.force)
    print(run_dir)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from reports.build import build_report

    out = Path(args.out) if args.out else Path(args.runs[0])
    build_report([Path(r) for r in args.runs], out)
    print(out / "report.md")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from reports.check import check_run

    result = check_run(Path(args.run), Path(args.against))
    for note in result.notes:
        print(f"note: {note}")
    for problem in result.problems:
        print(f"REGRESSION: {problem}")
    print("check passed" if result.ok else f"check failed: {len(result.problems)} cell(s)")
    return 0 if result.ok else 1


def cmd_baseline(args: argparse.Namespace) -> int:
    from reports.check import record_baseline

    tolerance = {k: float(v) for k, v in _parse_settings(args.tolerance or []).items()}
    record_baseline(Path(args.run), Path(args.out), tolerance)
    print(args.out)
    return 0


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
        p.add_argument("--seed", type=int, default=0)
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

    p = sub.add_parser("run", help="data -> train -> evaluate -> report for one trainer")
    common(p)
    p.add_argument("--trainer", required=True, help="trainer plugin (harness list trainers)")
    p.add_argument("--name", help="run folder name (default <trainer>-<model>-<suite>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="trainer setting; repeatable")
    p.add_argument("--config", help="YAML file of trainer settings")
    p.add_argument("--force", metavar="STAGE", help="redo this stage and the ones after it: plan data train evaluate report")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="compare runs: Markdown, HTML and JSON")
    p.add_argument("runs", nargs="+", help="run folders")
    p.add_argument("--out", help="folder for report.{md,html,json} (default: the first run's folder)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("check", help="compare a run with a recorded baseline; exit 1 on regression")
    p.add_argument("run")
    p.add_argument("--against", required=True, help="baseline JSON in baselines/")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("baseline", help="record a run's scores as a baseline file")
    p.add_argument("run")
    p.add_argument("--out", required=True)
    p.add_argument("--tolerance", action="append", metavar="METRIC=POINTS", help="allowed drop, e.g. acc=0.05")
    p.set_defaults(func=cmd_baseline)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: interrupted; finished stages and tasks are kept, rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
