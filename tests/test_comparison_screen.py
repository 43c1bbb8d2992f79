"""Issue 28 item 11: a comparison's screen a researcher can follow: one overall bar (members done of N,
an ETA from the finished members), one line per finished member, cache reuse summarised per variant,
no machine paths, the libraries' bars as one sub-line, trainer messages kept off the bar lines."""

from __future__ import annotations

import io
import re

from rich.console import Console

from harness.core.comparison_progress import ComparisonProgress
from harness.core.progress import RunProgress, run_line, shown_path, stage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _frame(display: RunProgress) -> str:
    """What the live display draws now."""
    console = Console(file=io.StringIO(), width=160)
    console.print(*display.get_renderables())
    return console.file.getvalue()


def _member(screen: ComparisonProgress, console: Console, clock: Clock, label: str, seed: int, run_dir, seconds: float,
            cached: int) -> None:
    """One member as the pipeline runs it: its own display (stage rows, evaluations, cache hits), a trainer message."""
    screen.member_started(label, seed, "20 steps, 11250 tokens per step")
    with RunProgress(console) as run_display:
        stage("data")
        run_line(f"{label}: 8 English instructions from /home/me/data/instr.json; answers: self")  # a trainer message
        stage("evaluate")
        for i in range(cached):
            run_display.task_done(f"eval base: belebele_{i}", 8, 88.5, from_cache=True)
        run_display.task_done("eval adapter: belebele_cs", 8, 3.0)
        run_line(f"report: {run_dir / 'report.md'}")
    clock.now += seconds
    screen.member_finished(label, seed, run_dir)


def test_the_comparison_screen_has_one_overall_bar_and_one_line_per_member(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    record = Console(file=io.StringIO(), width=160, record=True)
    clock = Clock()
    root = tmp_path / "runs" / "cmp"
    with ComparisonProgress("cmp", 6, console=record, clock=clock) as screen:
        assert "comparison cmp: members 0/6" in _frame(screen) and "ETA -:--:--" in _frame(screen)
        _member(screen, record, clock, "sdrrl", 0, root / "sdrrl-s0", 100.0, cached=13)
        screen.member_started("translate_sft", 0)
        clock.now += 30.0
        frame = _frame(screen)
        # 5 members to go at 100 s each, 30 s of the running one done
        assert re.search(r"comparison cmp: members 1/6 · now translate_sft, seed 0 · ETA 0:07:50", frame), frame
        assert frame.count("comparison cmp") == 1  # one overall line
        clock.now += 70.0
        screen.member_finished("translate_sft", 0, root / "translate_sft-s0")
        summary = screen.summary(root / "report.md")
    screen_text = record.export_text()
    lines = screen_text.splitlines()
    assert [line for line in lines if line.startswith("member ")] == [
        "member 1/6 sdrrl, seed 0: done in 0:01:40 → runs/cmp/sdrrl-s0 "
        "(base: 13 task results from the shared evaluation cache)",
        "member 2/6 translate_sft, seed 0: done in 0:01:40 → runs/cmp/translate_sft-s0"]
    assert "shared evaluation cache" not in "\n".join(l for l in lines if not l.startswith("member "))  # no per-task line
    assert "8 English instructions" not in screen_text and "report: " not in screen_text  # members' own lines: in their folders
    assert str(tmp_path) not in screen_text + summary and "/home/me" not in screen_text
    assert summary == ("comparison cmp: 2/6 members in 0:03:20; base: 13 task results reused (evaluated once in 0:19:10); "
                       "report: runs/cmp/report.md")


def test_outside_a_comparison_a_runs_lines_are_shown_and_cache_hits_are_one_line_per_variant(capsys):
    console = Console(file=io.StringIO(), width=160, record=True)
    with RunProgress(console) as display:
        for i in range(13):
            display.task_done(f"eval base: belebele_{i}", 8, 10.0, from_cache=True)
        display.task_done("eval adapter: belebele_cs", 8, 2.0)
    text = console.export_text()
    assert text.count("shared evaluation cache") == 1
    assert "eval base: 13 task results (104 items) from the shared evaluation cache (evaluated once in 130.0 s)" in text
    assert "eval adapter: belebele_cs: 8 items in 2.0 s" in text
    run_line("train: done (20 steps, loss 1.2)")
    assert "train: done (20 steps, loss 1.2)" in capsys.readouterr().err


def test_paths_on_the_screen_are_relative_to_where_the_user_stands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "runs" / "cmp" / "report.md") == "runs/cmp/report.md"
    assert shown_path("/somewhere/else/runs/x") == "…/x"


def test_the_libraries_bars_are_one_sub_line_the_newest_one():
    from tqdm.std import tqdm

    with ComparisonProgress("cmp", 2, console=Console(file=io.StringIO())) as screen:
        with RunProgress(Console(file=io.StringIO())) as inner:
            outer_bar = tqdm(total=52, desc="Running generate_until requests", file=io.StringIO())
            inner_bar = tqdm(total=52, desc="Processed prompts", file=io.StringIO())
            inner_bar.update(12)
            shown = _frame(inner)
            assert "Running generate_until requests" not in shown  # the waiting outer bar
            assert re.search(r"↳ Processed prompts \(\+1 more\) 12/52", shown), shown
            assert shown.count("↳") == 1
            inner_bar.close()
            outer_bar.close()
        assert "↳" not in _frame(screen)
