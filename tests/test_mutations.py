"""Proof by mutation: `harness check` catches a broken trainer, not only a crash.

One tiny-model SDRRL run is recorded as a baseline; an unmutated rerun passes; then each fault
below is injected in-process (monkeypatch, no switch in production code) into a fresh run, and
the check must fail naming the cells that moved. The tiny run trains at a high learning rate for
a few steps so that it learns measurably (its held-out loss falls), which is what lets a fault show.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import pytest

import harness.evaluation.evaluate as evaluate_mod
from harness.engines import Route
import trainers.lora as lora
import trainers.sdrrl as sdrrl
from harness.app.cli import main
from reports.check import check_run, moves_table, record_baseline
from trainers.encoding import IGNORE_INDEX

pytestmark = pytest.mark.slow


def _args(model: Path, runs: Path, *extra: str) -> list[str]:
    """The reference run's arguments; a fault's own `--set key=value` replaces the reference's (a key is given once)."""
    overridden = {arg.split("=", 1)[0] for arg in extra if "=" in arg}
    settings = ["num_instructions=6", "answer_max_new_tokens=12", "keep_truncated_answers=true", "keep_wrong_language_answers=true",
                "parallel_per_lang=2", "max_steps=6", "learning_rate=0.01", "warmup_ratio=0"]
    kept = [arg for s in settings if s.split("=", 1)[0] not in overridden for arg in ("--set", s)]
    return [
        "run", "--trainer", "sdrrl", "--model", str(model), "--suite", "smoke", "--langs", "cs", "--engine", "hf",
        "--runs-dir", str(runs), "--name", "tiny", "--limit", "2", "--max-gen-toks", "8", "--max-model-len", "512",
        *kept, *extra,
    ]


# --------------------------------------------------------------------------- the faults


def all_token_loss(monkeypatch) -> None:
    """The loss taken on every token, the prompt included."""
    real = lora.encode_chat

    def encode(tokenizer, messages, max_seq_len):
        example = real(tokenizer, messages, max_seq_len)
        return example and {**example, "labels": list(example["input_ids"])}

    monkeypatch.setattr(lora, "encode_chat", encode)


def no_chat_template(monkeypatch) -> None:
    """Training text without the chat template: bare question and answer, loss still on the answer."""

    def encode(tokenizer, messages, max_seq_len):
        ids, labels = [], []
        for m in messages:
            piece = tokenizer(m["content"] + "\n", add_special_tokens=False)["input_ids"]
            ids += piece
            labels += piece if m["role"] == "assistant" else [IGNORE_INDEX] * len(piece)
        return {"input_ids": ids[:max_seq_len], "labels": labels[:max_seq_len]}

    monkeypatch.setattr(lora, "encode_chat", encode)


def adapter_eval_on_base(monkeypatch) -> None:
    """The adapter's evaluation silently served by the base weights."""
    real = evaluate_mod.build_lm
    monkeypatch.setattr(evaluate_mod, "build_lm",
                        lambda req, served, fp=None: real(dataclasses.replace(req, adapter=None), Route(served.engine, "none"), None))


def english_instead_of_target(monkeypatch) -> None:
    """Target-language records (translated, code-switched) replaced by their English source."""
    real = sdrrl.SDRRLTrainer.build_dataset

    def build(self, ctx):
        records = real(self, ctx)
        english = {r["group"]: r["messages"] for r in records if r["kind"] == "en_self"}
        return [{**r, "messages": english[r["group"]]} if r["lang"] != "en" and r["group"] in english else r
                for r in records]

    monkeypatch.setattr(sdrrl.SDRRLTrainer, "build_dataset", build)


# fault -> (how to inject it, extra CLI arguments, cell groups that must move)
FAULTS: dict[str, tuple[Callable | None, tuple[str, ...], set[str]]] = {
    "learning rate 0": (None, ("--set", "learning_rate=0"), {"train/loss", "heldout/cs"}),
    "loss on all tokens": (all_token_loss, (), {"train/loss", "heldout/cs"}),
    "adapter eval on base weights": (adapter_eval_on_base, (), {"adapter/belebele_cs"}),
    "target records replaced by English": (english_instead_of_target, (), {"train/loss", "heldout/cs"}),
    "no chat template in training": (no_chat_template, (), {"train/loss", "heldout/cs"}),
}


def test_each_injected_fault_fails_the_check_and_names_the_moved_cells(tiny_llama, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "eval-cache"  # shared by the runs: base-model evaluations are computed once
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(cache))
    assert main(_args(tiny_llama, tmp_path / "ref")) == 0
    ref = tmp_path / "ref" / "tiny"
    baseline = tmp_path / "baseline.json"
    b = record_baseline(ref, baseline)
    assert {c["kind"] for c in b["cells"].values()} >= {
        "acc", "bleu", "gold_ll", "chosen_ll", "item_chrf", "output_sha256", "heldout_loss", "heldout_drop", "train_loss"}
    # The unmutated tiny run learns: held-out loss falls in every language, so a fault has room to show.
    drops = {k: c for k, c in b["cells"].items() if c["kind"] == "heldout_drop"}
    assert set(drops) == {"heldout/en/loss_drop", "heldout/cs/loss_drop"}
    assert all(c["value"] > 0.05 and c.get("min") for c in drops.values()), drops

    assert main(_args(tiny_llama, tmp_path / "rerun")) == 0
    rerun = check_run(tmp_path / "rerun" / "tiny", baseline)
    assert rerun.ok, moves_table(rerun.moves)

    summary = []
    for i, (fault, (inject, extra, must_move)) in enumerate(FAULTS.items()):
        with monkeypatch.context() as m:
            if inject is adapter_eval_on_base:
                # Same adapter as the reference: give it a cache of its own, so the evaluation really runs.
                m.setenv("SDRRL_EVAL_CACHE", str(tmp_path / f"cache-{i}"))
            if inject is not None:
                inject(m)
            assert main(_args(tiny_llama, tmp_path / f"fault-{i}", *extra)) == 0, fault
        result = check_run(tmp_path / f"fault-{i}" / "tiny", baseline)
        moved_groups = {"/".join(mv.key.split("/")[:2]) for mv in result.moves}
        assert not result.ok, f"{fault}: the check passed"
        assert must_move <= moved_groups, f"{fault}: moved {sorted(moved_groups)}"
        worst = max((mv.units for mv in result.moves if mv.units is not None), default=float("inf"))
        summary.append(f"| {fault} | {len(result.moves)} cells: {', '.join(sorted(moved_groups))} | {worst:.3g} |")
    with capsys.disabled():
        print("\n| fault | cells that failed | largest deviation (tolerance units) |\n|---|---|--:|")
        print("\n".join(summary))
