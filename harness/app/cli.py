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
    cmd_report,
    cmd_run,
)
from harness.core.errors import HarnessError
from harness.core.progress import quiet_libraries

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
        p.add_argument("--engine", default="auto", help="auto (default: the fastest measured engine per request type and hardware, harness/engines/routing.py), vllm or hf")
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
    p.add_argument("--engine", default="auto", help="auto (default: the fastest measured engine per request type and hardware, harness/engines/routing.py), vllm or hf")
    p.add_argument("--data-dir", help="local data folder in the hub datasets' formats (default: the suite's, else the hub)")
    p.add_argument("--limit", type=int, help="at most N items per task (quick runs)")
    p.add_argument("--seed", type=int, help="the run's seed (data sampling, training; default 0; a comparison takes --seeds)")
    p.add_argument("--max-model-len", type=int, default=2048)
    p.add_argument("--max-gen-toks", type=int, help="cap on generated tokens per item (default: each task's own)")
    p.add_argument("--adapter-serving", default="auto",
                   help="how an adapter reaches the engine: auto (default: merged into a cached copy of the weights on CPU "
                        "and for vLLM multiple choice, LoRA otherwise), merged, or lora (vLLM multiple choice then "
                        "runs one request at a time)")
    p.add_argument("--runs-dir", default="runs", help="where run folders go (default ./runs)")


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model (and optional LoRA adapter) on a suite")
    _add_model_run_options(p)
    p.add_argument("--adapter", help="LoRA adapter folder (PEFT, safetensors)")
    p.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs one model is split over (default 1)")
    p.add_argument("--data-parallel-size", type=int, default=1, help="vLLM: model replicas, through ray (default 1)")
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
    p.add_argument("--steps", type=int, help="optimizer steps for every member (default: what the first trainer takes at its epochs)")
    p.add_argument("--name", help="run (or comparison) folder name (default <trainer>-<model>-<suite>, compare-<model>-<suite>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="trainer setting; repeatable")
    p.add_argument("--config", help="YAML file of trainer settings")
    p.add_argument("--force", metavar="STAGE", help="redo this stage and the ones after it: plan data train evaluate report "
                   "(evaluations are recomputed, not taken from the shared cache)")
    p.add_argument("--keep-cache", action="store_true", help="with --force: reuse evaluations from the shared cache")
    p.add_argument("--judge", metavar="MODEL", help="judge the open-ended answers pairwise against the base model's")
    p.add_argument("--judge-engine", default="auto", help="engine serving the judge: auto (default), vllm or hf")
    _add_min_effect(p)
    p.set_defaults(func=cmd_run)


def _add_min_effect(p: argparse.ArgumentParser) -> None:
    p.add_argument("--min-effect", action="append", metavar="METRIC=VALUE",
                   help="the smallest difference worth detecting, in the metric's units (acc=0.05, bleu=1.0: our "
                        "defaults); comparisons that could not detect it are marked underpowered; repeatable")


def _add_results(sub) -> None:
    """report, check and baseline: commands over finished run folders."""
    p = sub.add_parser("report", help="compare runs: Markdown, HTML and JSON")
    p.add_argument("runs", nargs="+", help="run folders")
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
    args = build_parser().parse_args(argv)
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
