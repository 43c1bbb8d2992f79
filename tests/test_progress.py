"""The quiet screen: libraries' bars and logs off by default and back with -v, no stray "fatal:" line."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from harness.core.progress import QUIET_ENV, QUIET_LOGGERS, RunProgress, quiet_libraries, silence_git_probe, stage

TQDM_BAR = re.compile(r"\d+%\|")  # tqdm's "100%|███|"; rich's bars never print a percent sign and a pipe
# A process that makes a library bar, counts two of three items, closes it; it prints what RunProgress saw.
BAR_SCRIPT = """
import sys
from harness.core.progress import open_bars, quiet_libraries
quiet_libraries(verbose=sys.argv[1] == "-v")
from tqdm.auto import tqdm  # as vLLM imports it; lm-eval's `from tqdm import tqdm` is the same class's base
bar = tqdm(total=3, desc="Running loglikelihood requests")
bar.update(2)
bar.refresh()  # vLLM refreshes its bar explicitly once all prompts are done
print([(b.desc, b.n) for b in open_bars()])
bar.close()
print(open_bars())
"""


def _clean_env() -> dict[str, str]:
    """This environment without the variables quiet_libraries sets (an in-process CLI call may have)."""
    return {name: value for name, value in os.environ.items() if name not in QUIET_ENV}


@pytest.fixture()
def untouched_libraries(monkeypatch):
    """The process as before quiet_libraries: its variables unset; logger levels restored after."""
    for name in QUIET_ENV:
        monkeypatch.delenv(name, raising=False)
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_quiet_mode_turns_the_libraries_bars_and_logs_off(untouched_libraries, monkeypatch):
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")  # a user's own value wins
    quiet_libraries(verbose=False)
    assert {name: os.environ[name] for name in QUIET_ENV} == {**QUIET_ENV, "VLLM_LOGGING_LEVEL": "DEBUG"}
    assert {name: logging.getLogger(name).level for name in QUIET_LOGGERS} == QUIET_LOGGERS
    with warnings.catch_warnings(record=True) as shown:
        warnings.warn("a library's deprecation notice", FutureWarning)
    assert not shown


def test_verbose_leaves_the_libraries_alone(untouched_libraries):
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    quiet_libraries(verbose=True)
    assert not [name for name in QUIET_ENV if name in os.environ]
    assert {name: logging.getLogger(name).level for name in QUIET_LOGGERS} == levels


@pytest.mark.parametrize("flag", ["", "-v"])
def test_a_library_bar_counts_for_the_display_and_draws_only_with_verbose(flag):
    proc = subprocess.run([sys.executable, "-c", BAR_SCRIPT, flag], capture_output=True, text=True, env=_clean_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[('Running loglikelihood requests', 2)]", "[]"]
    assert bool(TQDM_BAR.search(proc.stderr)) == (flag == "-v"), proc.stderr


def test_lm_evals_git_probe_is_quiet_outside_a_checkout(tmp_path, monkeypatch, capfd):
    import lm_eval.evaluator
    from lm_eval.loggers.utils import get_git_commit_hash

    monkeypatch.chdir(tmp_path)
    assert subprocess.run(["git", "rev-parse"], capture_output=True).returncode != 0, "tmp_path is inside a git checkout"
    unsilenced = get_git_commit_hash()
    assert "fatal:" in capfd.readouterr().err  # the line lm-eval's own probe leaves on the terminal
    monkeypatch.setattr(lm_eval.evaluator, "get_git_commit_hash", get_git_commit_hash)
    silence_git_probe()
    assert lm_eval.evaluator.get_git_commit_hash() == unsilenced
    assert capfd.readouterr().err == ""


def _start_eval(model: Path, cwd: Path, name: str, *extra: str) -> subprocess.Popen:
    """`harness eval` on two items of one task, in its own run folder and evaluation cache (nothing reused)."""
    env = _clean_env()
    env["SDRRL_EVAL_CACHE"] = str(cwd / name / "cache")
    argv = [sys.executable, "-m", "harness", "eval", "--model", str(model), "--suite", "smoke", "--engine", "hf",
            "--tasks", "belebele_en", "--limit", "2", "--out", str(cwd / name / "run"), *extra]
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_eval_shows_no_library_bars_or_git_noise_unless_verbose(tiny_llama, tmp_path):
    assert subprocess.run(["git", "rev-parse"], cwd=tmp_path, capture_output=True).returncode != 0
    runs = {name: _start_eval(tiny_llama, tmp_path, name, *extra) for name, extra in (("quiet", ()), ("verbose", ("-v",)))}
    (out, err), (_, verbose_err) = (run.communicate(timeout=300) for run in runs.values())  # side by side: half the wait
    assert runs["quiet"].returncode == 0, err
    assert "fatal:" not in err and not TQDM_BAR.search(err + out), err
    assert "eval base: belebele_en: 2 items in" in err  # the display's own line per task
    assert runs["verbose"].returncode == 0, verbose_err
    assert TQDM_BAR.search(verbose_err) and "fatal:" not in verbose_err, verbose_err


def _screen(display: RunProgress) -> str:
    console = Console(file=io.StringIO(), width=120)
    console.print(*display.get_renderables())
    return console.file.getvalue()


def test_the_display_shows_the_stage_and_the_running_library_bar():
    from tqdm.std import tqdm

    with RunProgress(Console(file=io.StringIO())) as display:
        stage("train")
        bar = tqdm(total=8, desc="Running loglikelihood requests", file=io.StringIO())
        bar.update(3)
        shown = _screen(display)
        assert "stage train" in shown and "3/5" in shown
        assert re.search(r"↳ Running loglikelihood requests 3/8 .*ETA", shown), shown
        bar.close()
        assert "Running loglikelihood" not in _screen(display)
