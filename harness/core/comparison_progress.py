"""A comparison's screen: one overall bar over its members, one line per finished member.

A comparison runs N members (trainer x seed), each a whole pipeline with its own stages and the
libraries' bars. Its screen shows, on one live display: the overall row ("members 2/6 · now
translate_sft, seed 0 · ETA 0:14:10", the ETA from the finished members' mean time, as members of
one comparison take alike budgets), the running member's stage row and the libraries' newest bar as
one sub-line (harness/core/progress.py); above it, one kept line per finished member with its time,
its run folder relative to where the user stands, and what it took from the shared evaluation cache,
summarised per variant. The members' own stage lines and trainer messages stay in their run folders
(`run_line`). The comparison's loop calls three methods: `member_started`, `member_finished`, `summary`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from rich.console import Console, RenderableType

from harness.core import progress
from harness.core.progress import RunProgress, shown_path


def active() -> "ComparisonProgress | None":
    """The comparison screen open now (the launchers report their jobs to it), if any."""
    return progress._quiet_members[-1] if progress._quiet_members else None


def _member(label: str, seed: int | None) -> str:
    return label + (f", seed {seed}" if seed is not None else "")


def clock_text(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ComparisonProgress(RunProgress):
    """The outermost display of `harness run` over several members (its stage row is the running member's)."""

    def __init__(self, name: str, members: int, console: Console = progress.console,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(console)
        self.name, self.members, self.clock = name, members, clock
        self.durations: list[float] = []
        self._started: dict[str, float] = {}  # the running jobs (several under --parallel), by label
        self.started_at: float | None = None
        self.began = clock()
        self.current = ""
        self._reuse: dict[str, list[float]] = {}  # this member's, per variant: tasks, original seconds
        self._reuse_total: dict[str, list[float]] = {}
        self._row = self.add_task(self._description(), total=members, completed=0, estimate=False)

    def __enter__(self) -> "ComparisonProgress":
        super().__enter__()
        progress._quiet_members.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        progress._quiet_members.remove(self)
        super().__exit__(*exc)

    def get_renderables(self) -> Iterable[RenderableType]:
        if hasattr(self, "_row"):  # (rich draws once while the display is built)
            self.update(self._row, description=self._description())  # the ETA counts down between members
        yield from super().get_renderables()

    def eta(self) -> float | None:
        """Seconds left: the finished members' mean time for each member not finished (less the running one's
        time so far); None before the first finishes."""
        if not self.durations:
            return None
        mean = sum(self.durations) / len(self.durations)
        running = self.clock() - self.started_at if self.started_at is not None else 0.0
        remaining = self.members - len(self.durations)
        return max(mean * remaining - min(running, mean), 0.0) if remaining else 0.0

    def _description(self) -> str:
        eta = self.eta()
        now = f" · now {self.current}" if self.current else ""
        return (f"comparison {self.name}: members {len(self.durations)}/{self.members}{now} · "
                f"ETA {clock_text(eta) if eta is not None else '-:--:-- (after the first member)'}")

    def member_started(self, label: str, seed: int | None, detail: str = "") -> None:
        key = _member(label, seed)
        self._started[key] = self.clock()
        self.started_at = min(self._started.values())
        self.current = ", ".join(self._started) + (f" ({detail})" if detail and len(self._started) == 1 else "")
        self._reuse = {}
        self.update(self._row, description=self._description())

    def reused(self, variant: str, tasks: int, seconds: float) -> None:
        """Task results of the running member restored from the shared evaluation cache (harness.core.progress)."""
        for table in (self._reuse, self._reuse_total):
            counted, total = table.get(variant, [0, 0.0])
            table[variant] = [counted + tasks, total + seconds]

    def member_finished(self, label: str, seed: int | None, run_dir: Any, counted: bool = True) -> None:
        """A finished job: one kept line; `counted` False for a job that is not a member (the shared base
        evaluation), which neither counts among the members nor enters the ETA."""
        key = _member(label, seed)
        started = self._started.pop(key, self.began)
        took = self.clock() - started
        if counted:
            self.durations.append(took)
        reuse = "; ".join(f"{variant}: {int(n)} task results from the shared evaluation cache"
                          for variant, (n, _) in self._reuse.items())
        position = f"member {len(self.durations)}/{self.members} " if counted else ""
        self.console.print(f"{position}{key}: done in {clock_text(took)} → {shown_path(run_dir)}"
                           + (f" ({reuse})" if reuse else ""), soft_wrap=True, markup=False, highlight=False)
        self.current = ", ".join(self._started)
        self.started_at = min(self._started.values()) if self._started else None
        self.update(self._row, completed=len(self.durations), description=self._description())

    def summary(self, report: Any = None) -> str:
        """The comparison's closing line: members, time, the evaluation cache's share, the report."""
        reuse = "; ".join(f"{variant}: {int(n)} task results reused (evaluated once in {clock_text(s)})"
                          for variant, (n, s) in self._reuse_total.items())
        return (f"comparison {self.name}: {len(self.durations)}/{self.members} members in "
                f"{clock_text(self.clock() - self.began)}" + (f"; {reuse}" if reuse else "")
                + (f"; report: {shown_path(report)}" if report is not None else ""))
