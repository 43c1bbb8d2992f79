"""The `harness` command line. Bad input ends in one line naming the bad value and the valid ones."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from harness.app.commands import (
    LIST_WHATS,
    cmd_baseline,
    cmd_check,
    cmd_doctor,
    cmd_eval,
    cmd_fetch,
    cmd_list,
    cmd_member,
    cmd_report,
    cmd_run,
    cmd_selftest,
    cmd_status,
)
from harness.core.errors import HarnessError
from harness.core.progress import quiet_libraries
from harness.core.rules import DECIMAL_INT
from harness.engines.routing import engines_help


def integer(text: str) -> int:
    """A plain decimal integer: argparse's int() also reads "١٢", "1_0" and " 7" (its error then names the value)."""
    if not DECIMAL_INT.match(text):
        raise ValueError(text)
    return int(text)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + traceback-like noise
        if message.endswith(": expected one argument") and message.startswith("argument "):
            flag = message.removeprefix("argument ").split(":")[0].split("/")[-1]
            message += f" (a value starting with '-' is read as an option: write {flag}=VALUE)"
        self.exit(2, f"harness: error: {message}\n")


def _add_fetch_and_doctor(sub) -> None:
    def requirements(p: argparse.ArgumentParser, suite_default: str | None) -> None:
        p.add_argument("--suite", default=suite_default, help="task suite (harness list suites)")
        p.add_argument("--model", help="built-in name, local HF folder, or hub id")
        p.add_argument("--langs", help="restrict the suite to these languages, e.g. cs,ja")
        p.add_argument("--engine", default="auto", help=engines_help())
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="trainer setting; repeatable")
        p.add_argument("--config", help="YAML file of trainer settings")

    p = sub.add_parser("fetch", help="download what a suite and trainer need into a mirror for --data-dir")
    requirements(p, "paper15")
    p.add_argument("--trainer", default="sdrrl", help="trainer whose data to fetch (default sdrrl)")
    p.add_argument("--out", required=True, help="mirror folder (then: harness run ... --data-dir OUT)")
    p.add_argument("--seed", type=integer, default=0, help="the run's seed: parallel pairs are drawn with it")
    p.add_argument("--comet", metavar="HUB_ID", help="also a COMET model and its encoder's tokenizer, e.g. Unbabel/wmt22-comet-da")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("doctor", help="what a run needs, whether it is here, and the fix")
    requirements(p, None)
    p.add_argument("--trainer", help="trainer plugin (harness list trainers)")
    p.add_argument("--data-dir", help="local data / mirror folder the run will get")
    p.add_argument("--runs-dir", default="runs")
    p.set_defaults(func=cmd_doctor)


def _add_selftest(sub) -> None:
    p = sub.add_parser("selftest", help="check and time every installed engine on this machine; --engine auto then takes the fastest verified")
    p.add_argument("--model", default="smollm2-135m", help="the model to test on (default: the built-in smollm2-135m)")
    p.add_argument("--engine", help="only these engines, comma-separated (default: every installed one; harness list engines)")
    p.set_defaults(func=cmd_selftest)


def _add_include_path(p: argparse.ArgumentParser) -> None:
    p.add_argument("--include-path", action="append", metavar="DIR",
                   help="also a folder of lm-eval task YAML, as lm_eval's --include_path (repeatable or comma-separated)")


def _add_model_run_options(p: argparse.ArgumentParser) -> None:
    """What `eval` and `run` share: the model, the tasks, the engine and where results go."""
    p.add_argument("--model", required=True, help="built-in name (harness list models), local HF folder, or hub id")
    p.add_argument("--suite", default="smoke", help="task suite (harness list suites)")
    p.add_argument("--langs", help="restrict the suite to these languages, e.g. cs,ja")
    p.add_argument("--tasks", help="run exactly these tasks, comma-separated: the suite's, an --include-path folder's, "
                   "or lm-eval's built-in ones by name")
    _add_include_path(p)
    p.add_argument("--engine", default="auto", help=engines_help())
    p.add_argument("--data-dir", help="local data folder in the hub datasets' formats (default: the suite's, else the hub)")
    p.add_argument("--limit", type=integer, help="at most N items per task (quick runs)")
    p.add_argument("--seed", type=integer, help="the run's seed (data sampling, training; default 0; a comparison takes --seeds)")
    p.add_argument("--max-model-len", type=integer, default=2048)
    p.add_argument("--max-gen-toks", type=integer, help="cap on generated tokens per item: a task runs with the smaller of this "
                   "and its own max_gen_toks (default: each task's own)")
    p.add_argument("--adapter-serving", default="auto",
                   help="how an adapter reaches the engine: auto (default: merged into a cached copy of the weights on CPU "
                        "and for vLLM multiple choice, LoRA otherwise), merged, or lora (vLLM multiple choice then "
                        "runs one request at a time)")
    p.add_argument("--runs-dir", default="runs", help="where run folders go (default ./runs)")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model (and optional LoRA adapter) on a suite")
    _add_model_run_options(p)
    p.add_argument("--adapter", help="LoRA adapter folder (PEFT, safetensors)")
    p.add_argument("--tensor-parallel-size", type=integer, default=1, help="vLLM: GPUs one model is split over (default 1)")
    p.add_argument("--data-parallel-size", type=integer, default=1, help="vLLM: model replicas, through ray (default 1)")
    p.add_argument("--out", help="run folder to write into (default runs/eval-<model>-<suite>)")
    p.set_defaults(func=cmd_eval)


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="data -> train -> evaluate -> report, for one trainer or a comparison of several")
    _add_model_run_options(p)
    p.add_argument("--trainer", required=True,
                   help="trainer plugin (harness list trainers), or several for one comparison at an equal budget: "
                        "sdrrl,translate_sft,english_sft; <trainer>+<ablation> names an ablation preset")
    p.add_argument("--seeds", help="several seeds, e.g. 0,1,2: one run per trainer and seed, reported as seed means")
    p.add_argument("--ablations", action="store_true", help="add every ablation preset of each listed trainer")
    p.add_argument("--steps", type=integer, help="optimizer steps for every member (default: what the first trainer takes at its epochs)")
    p.add_argument("--name", help="run (or comparison) folder name (default <trainer>-<model>-<suite>, compare-<model>-<suite>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="trainer setting; repeatable")
    p.add_argument("--config", help="YAML file of trainer settings")
    p.add_argument("--force", metavar="STAGE", help="redo this stage and the ones after it: plan data train evaluate report "
                   "(evaluations are recomputed, not taken from the shared cache)")
    p.add_argument("--keep-cache", action="store_true", help="with --force: reuse evaluations from the shared cache")
    p.add_argument("--judge", metavar="MODEL", help="judge the open-ended answers pairwise against the base model's")
    p.add_argument("--judge-engine", default="auto", help="engine serving the judge: " + engines_help())
    p.add_argument("--report-to", metavar="TRACKERS",
                   help="log training loss, learning rate, tokens/s, held-out loss and final scores through accelerate's "
                        "trackers: tensorboard, wandb, mlflow, trackio or none; several comma-separated "
                        "(files under <run>/tracking/)")
    _add_min_effect(p)
    _add_launcher(p)
    p.set_defaults(func=cmd_run)


def _add_launcher(p: argparse.ArgumentParser) -> None:
    """How a comparison's member jobs start (harness/app/launchers.py); also a `launcher:` block in --config."""
    g = p.add_argument_group("launcher (a comparison's members as jobs; also a launcher: block in --config)")
    g.add_argument("--launcher", help="local (default: on this machine) or slurm (one Slurm job per member, through submitit)")
    g.add_argument("--parallel", type=integer, help="local: run up to N members at once, each pinned to its own GPU(s) (default 1)")
    g.add_argument("--gpus-per-member", type=integer, help="GPUs per member job (default 1)")
    g.add_argument("--partition", help="slurm: partition")
    g.add_argument("--account", help="slurm: account")
    g.add_argument("--cpus-per-member", type=integer, help="slurm: CPUs per member job")
    g.add_argument("--mem-gb", type=integer, help="slurm: memory per member job, GB")
    g.add_argument("--time-min", type=integer, help="slurm: time limit per member job in minutes (default 1440); a job that hits "
                   "it is requeued and resumes")
    g.add_argument("--detach", action="store_true", help="slurm: submit and return; then harness status / harness report RUN_DIR")


def _add_min_effect(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-effect", action="append", metavar="METRIC=VALUE",
                   help="the smallest difference worth detecting, in the metric's units (acc=0.05, bleu=1.0: our "
                        "defaults); comparisons that could not detect it are marked underpowered; repeatable")


def _add_results(sub) -> None:
    """report, check and baseline: commands over finished run folders; status and member: a comparison's jobs."""
    p = sub.add_parser("status", help="the state of each member job of a comparison (runs/<comparison>)")
    p.add_argument("comparison", help="comparison folder")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("member", help="run one job of a comparison's plan (what the launchers start)")
    p.add_argument("comparison", help="comparison folder holding plan.json")
    p.add_argument("job", help="the job's id in the plan: base or <member>-s<seed>")
    p.set_defaults(func=cmd_member)

    p = sub.add_parser("report", help="compare runs: Markdown, HTML and JSON")
    p.add_argument("runs", nargs="+", help="run folders, or one comparison folder (its finished members)")
    p.add_argument("--out", help="folder for report.{md,html,json} (default: the first run's folder)")
    _add_min_effect(p)
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("list", help="languages, tasks, suites, trainers, a trainer's settings or built-in models")
    p.add_argument("what", help=" | ".join(LIST_WHATS))
    p.add_argument("--trainer", help="with `list settings`: the trainer whose settings to list")
    _add_include_path(p)
    p.set_defaults(func=cmd_list)
    _add_eval(sub)
    _add_run(sub)
    _add_fetch_and_doctor(sub)
    _add_selftest(sub)
    _add_results(sub)
    for command in sub.choices.values():
        command.add_argument("-v", "--verbose", action="store_true", help="show the libraries' own progress bars and logs")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as an interrupt: the same cleanup (lock, temporary files,
    child processes) and the same message as Ctrl-C."""


def _terminate(signum: int, _frame: Any) -> None:
    raise Terminated


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """While a command runs, SIGTERM raises Terminated (only the main thread may set a handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()  # reads the installed engine plugins for the help texts
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    quiet_libraries(args.verbose)
    try:
        with _sigterm_interrupts():
            return args.func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("harness: interrupted; finished stages and tasks are kept, rerun the same command to resume", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    except Exception as exc:  # the last resort: one line, the traceback in a log file
        from harness.app.crashlog import crash_line

        print(crash_line(exc), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
