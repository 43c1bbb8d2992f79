"""The tiny SDRRL run that the kill/resume and corruption tests share, and how a test takes its own copy.

One uninterrupted run (the session fixture `finished_tiny_run` in conftest.py) is computed once per
session: a test that only needs its result reads it, or copies it with `copy_run` when it damages it;
a test that must make a run itself (a kill, a fault) uses the same `tiny_run_args`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

NAME = "tiny"


def tiny_run_args(model: Path, runs: Path, *extra: str) -> list[str]:
    """`harness run` of a one-language SDRRL run on the tiny Llama: every stage, a few seconds each."""
    return [
        "run", "--trainer", "sdrrl", "--model", str(model), "--suite", "smoke", "--langs", "cs", "--engine", "hf",
        "--runs-dir", str(runs), "--name", NAME, "--limit", "1", "--max-gen-toks", "4", "--max-model-len", "256",
        "--set", "num_instructions=2", "--set", "answer_max_new_tokens=8", "--set", "keep_truncated_answers=true",
        "--set", "keep_wrong_language_answers=true", "--set", "parallel_per_lang=1",
        "--set", "max_steps=2", "--set", "max_seq_len=128", *extra,
    ]


@dataclass(frozen=True)
class FinishedRun:
    """A finished run of `tiny_run_args` (runs_dir/NAME) and the evaluation cache it filled. Read only."""

    runs_dir: Path
    eval_cache: Path

    @property
    def run(self) -> Path:
        return self.runs_dir / NAME


def copy_run(finished: FinishedRun, to: Path) -> FinishedRun:
    """A private copy of the run folder and its evaluation cache under `to`, to damage or resume."""
    copy = FinishedRun(to / "runs", to / "eval-cache")
    shutil.copytree(finished.runs_dir, copy.runs_dir)
    shutil.copytree(finished.eval_cache, copy.eval_cache)
    return copy
