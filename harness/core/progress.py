"""The run's one progress display, with the libraries' own bars and logs kept off the screen.

`quiet_libraries(verbose)` runs at CLI start, before any library is imported. By default it turns
the libraries' logs off (only their errors reach the screen) and holds every tqdm bar back from
drawing (TQDM_DELAY): the bars still count, and `RunProgress` shows the running ones' count, rate and
ETA on one line each under the stage and task rows. TQDM_DISABLE would not do: lm-eval and vLLM pass
`disable=` explicitly, which wins over it, and vLLM divides by a disabled bar's elapsed time (0).
`-v` leaves the libraries alone. `silence_git_probe()` keeps lm-eval's `git describe` from printing
"fatal:" outside a git checkout.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from typing import Any, Iterable

import rich
from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, Task, TextColumn, TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

# One console for every rich display in the process: the training bar (trainers/lora.py) and
# engines' `track` use rich's global console, and rich nests live displays only on one console. It
# writes to stderr, so a command's stdout carries only what scripts read (the run folder).
rich.reconfigure(stderr=True)
console = rich.get_console()

# Read by the libraries when they are imported, here and in subprocesses (accelerate workers, the COMET venv).
QUIET_ENV = {
    "TQDM_DELAY": "1e9",  # seconds before a bar first draws: never; it counts all the same
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # huggingface_hub's downloads and transformers' "Loading weights"
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",
    "VLLM_LOGGING_LEVEL": "ERROR",
    "TORCH_LOGS": "-all",  # torch's Python loggers at ERROR ("Triton not available")
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # torch's C++ warnings ("NUMA binding")
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning",  # subprocesses; this one: QUIET_WARNINGS
}
# Deprecation notices meant for a library's developers, e.g. vLLM's use of a deprecated torch name.
QUIET_WARNINGS = (FutureWarning, DeprecationWarning)
# Loggers no variable reaches: lm-eval reads LMEVAL_LOG_LEVEL only in its own CLI (and warns once per
# task about settings the harness passes on purpose: custom_dataset, gen_kwargs); peft has none.
QUIET_LOGGERS = {"lm_eval": logging.ERROR, "peft": logging.ERROR}

_active_displays: list["RunProgress"] = []


def quiet_libraries(verbose: bool) -> None:
    """Libraries' bars and logs off (a user's own environment values win); with `verbose`, untouched."""
    if verbose:
        return
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    for category in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", category=category)
    hold_back_delayed_bars()


def hold_back_delayed_bars() -> None:
    """A tqdm bar still inside its TQDM_DELAY does not draw on an explicit `refresh()` either.

    tqdm honours the delay in `update()` only; vLLM calls `pbar.refresh()` once all its prompts are
    done, which printed a "Processed prompts: 100%" line per generate call into a quiet run. Applies
    in this process; the vLLM generation child calls it too (harness/engines/vllm_engine.py)."""
    from tqdm.std import tqdm

    if getattr(tqdm.refresh, "holds_back_delayed", False):
        return
    drawing_refresh = tqdm.refresh

    def refresh(self, *args: Any, **kwargs: Any) -> Any:
        if self.delay and self.last_print_t < self.start_t + self.delay:  # never drawn: the delay holds
            return None
        return drawing_refresh(self, *args, **kwargs)

    refresh.holds_back_delayed = True  # type: ignore[attr-defined]
    tqdm.refresh = refresh


def open_bars() -> list[Any]:
    """The tqdm bars of this process now running, oldest first. tqdm lists its live bars in
    `tqdm._instances` (the set tqdm.write uses); a closed or disabled bar leaves it."""
    from tqdm.std import tqdm

    try:
        bars = list(getattr(tqdm, "_instances", ()))
    except RuntimeError:  # the set changed while copied, from another thread: skip this frame
        return []
    started = [bar for bar in bars if getattr(bar, "start_t", None) is not None and not bar.disable]  # __init__ done
    return sorted(started, key=lambda bar: bar.start_t)


def silence_git_probe() -> None:
    """lm-eval's simple_evaluate runs `git describe` for its results' git_hash; outside a git checkout
    git prints "fatal: not a git repository" on the terminal. The same probe, git's stderr sent
    nowhere; call it after lm_eval.evaluator is imported (it holds its own reference)."""
    import lm_eval.evaluator
    from lm_eval.loggers.utils import get_commit_from_path

    def git_commit_hash() -> str | None:
        try:
            return subprocess.check_output(["git", "describe", "--always"], stderr=subprocess.DEVNULL).strip().decode()
        except (subprocess.CalledProcessError, FileNotFoundError):  # as lm-eval: not a checkout, or no git
            return get_commit_from_path(os.getcwd())

    lm_eval.evaluator.get_git_commit_hash = git_commit_hash


class EstimateColumn(TimeRemainingColumn):
    """Time left at the recent pace; blank for a row whose steps differ too much to estimate (stages)."""

    def render(self, task: Task) -> Text:
        return super().render(task) if task.fields.get("estimate", True) else Text("")


def _eta(done: float, total: float | None, rate: float | None) -> str:
    if not total or not rate:
        return "-:--:--"
    seconds = int(max(total - done, 0) / rate)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _bar_rows(bars: list[Any]) -> Table:
    """The libraries' bars as one sub-line: the newest running one (the one that moves: lm-eval's outer
    request bar waits while vLLM's prompt bar under it counts), what it counts, done/total, items/s, ETA;
    how many others are open."""
    table = Table.grid(padding=(0, 1))
    bar = bars[-1]
    stats = bar.format_dict
    done, total = stats["n"], stats["total"]
    rate = stats["rate"] or (done / stats["elapsed"] if stats["elapsed"] else None)
    more = f" (+{len(bars) - 1} more)" if len(bars) > 1 else ""
    table.add_row(
        Text(f"  ↳ {bar.desc or 'working'}{more}", style="dim"),
        Text(f"{done}/{int(total)}" if total else f"{done}", style="progress.download"),
        Text(f"{rate:.2f} {stats['unit']}/s" if rate else "", style="progress.data.speed"),
        Text(f"ETA {_eta(done, total, rate)}", style="progress.remaining"),
    )
    return table


def shown_path(path: Any) -> str:
    """A path as the screen shows it: relative to where the user stands, else only its last part (a
    machine's absolute paths stay off the screen)."""
    absolute = os.path.abspath(str(path))
    relative = os.path.relpath(absolute, os.getcwd())
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return "…/" + os.path.basename(absolute.rstrip(os.sep))
    return relative


def run_line(text: str) -> None:
    """A run's own progress line (stage results, trainer messages): on the screen for a single run; in a
    comparison the member's folder keeps its details and the screen shows one line per finished member
    (harness/core/comparison_progress.py)."""
    if not _quiet_members:
        say(text)


_quiet_members: list[Any] = []  # the comparison screens open now


class RunProgress(Progress):
    """One line per stage and per evaluation (done/total, ETA, elapsed); under them the library bars
    running now (lm-eval's requests, vLLM's prompts; held back from drawing by quiet_libraries) with their items/s and
    ETA; and a kept line per finished task with its items/s.

    lm-eval scores a whole task in one call, so a task's live count is the library's own request count
    (a multiple-choice item is one request per choice), not items. The rich API (add_task, update,
    advance) is unchanged; `stage` and `task_done` add to it. Displays nest (rich does it): the
    innermost one draws the library bars."""

    def __init__(self, console: Console = console) -> None:
        super().__init__(
            SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
            EstimateColumn(), TimeElapsedColumn(), console=console, transient=False,
            disable=os.environ.get("RANK", "0") != "0",  # under `accelerate launch`, the first process draws
        )
        self._stage_row: Any = None
        self._reused: dict[str, list[float]] = {}  # per "eval <variant>": tasks, items, original seconds

    def __enter__(self) -> "RunProgress":
        super().__enter__()
        _active_displays.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _active_displays.remove(self)
        self.print_reused()
        super().__exit__(*exc)

    def print_reused(self) -> None:
        """One line per variant for the task results restored from the shared evaluation cache (in a
        comparison, the member's line says it instead)."""
        for group, (tasks, items, seconds) in self._reused.items():
            if _quiet_members:
                _quiet_members[-1].reused(group.removeprefix("eval "), int(tasks), seconds)
                continue
            self.console.print(f"{group}: {int(tasks)} task result{'s' if tasks != 1 else ''} ({int(items)} items) from the "
                               f"shared evaluation cache (evaluated once in {seconds:.1f} s)", soft_wrap=True, markup=False)
        self._reused.clear()

    def get_renderables(self) -> Iterable[RenderableType]:
        yield self.make_tasks_table(self.tasks)
        bars = open_bars() if _active_displays and _active_displays[-1] is self else []
        if bars:
            yield _bar_rows(bars)

    def stage(self, name: str, number: int, total: int) -> None:
        """The stage row: `name`, the number-th of `total`."""
        description = f"stage {name}"
        if self._stage_row is None:
            self._stage_row = self.add_task(description, total=total, completed=number, estimate=False)
        self.update(self._stage_row, description=description, completed=number)

    def task_done(self, label: str, items: int, seconds: float, from_cache: bool = False) -> None:
        """A kept line per finished task; those restored from the shared cache are counted per variant
        (the label's part before ": ") and said in one line when the display closes (`seconds`: their
        original evaluation's time)."""
        if self.disable:
            return
        if from_cache:
            group = label.split(": ", 1)[0]
            tasks, counted, total = self._reused.get(group, [0, 0, 0.0])
            self._reused[group] = [tasks + 1, counted + items, total + seconds]
            return
        rate = f", {items / seconds:.2f} items/s" if seconds > 0 else ""
        line = f"{label}: {items} items in {seconds:.1f} s{rate}"
        if _quiet_members:
            return
        self.console.print(line, soft_wrap=True, markup=False)


def say(line: str) -> None:
    """One line on the run's console as it is: never wrapped at the terminal's width, no markup read
    in it (paths may hold brackets)."""
    console.print(line, soft_wrap=True, markup=False, highlight=False)


def make_progress() -> RunProgress:
    return RunProgress(console)


def stage(name: str) -> None:
    """Show the run's current stage (the k-th of harness.core.runstore.STAGES) on the outermost live display."""
    from harness.core.runstore import STAGES

    if _active_displays:
        _active_displays[0].stage(name, STAGES.index(name) + 1, len(STAGES))
