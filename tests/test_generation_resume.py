"""A run killed during self-distillation keeps every finished batch of answers (and of LLM
translations): the rerun generates only the unfinished ones and builds the same training set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.engines import Generation
from harness.engines.hf_engine import HFEngine
from harness.core.langs import LANGUAGES
from harness.core.runstore import read_jsonl
from harness.trainer_api import TrainContext, build_config
from trainers.sdrrl import SDRRLTrainer
from trainers.translators import make_translator

ROOT = Path(__file__).resolve().parent.parent
EN, CS = LANGUAGES["en"], LANGUAGES["cs"]
SETTINGS = {"instructions": "builtin:alpaca-smoke", "num_instructions": "4", "translator": "lexicon",
            "parallel_data": "builtin:opus-smoke", "parallel_per_lang": "1", "code_switch_variants": "1",
            "answer_max_new_tokens": "8", "keep_truncated_answers": "true"}
BATCH = 2  # conversations per HF generation batch (and per kept window) in these tests: 4 instructions are 2 batches

# Builds the SDRRL data set with the HF engine and SIGKILLs itself right after the first batch of
# self-answers is stored.
DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path

    import trainers.generation as generation
    from harness.engines.hf_engine import HFEngine
    from harness.core.langs import LANGUAGES
    from harness.trainer_api import TrainContext, build_config
    from trainers.sdrrl import SDRRLTrainer

    HFEngine.generate_batch_size = int(sys.argv[4])
    HFEngine.keep_every_batches = 1
    real_call = generation.CacheBatches.__call__

    def call_then_die(self, start, answers):
        real_call(self, start, answers)
        os.kill(os.getpid(), signal.SIGKILL)

    generation.CacheBatches.__call__ = call_then_die
    ctx = TrainContext(model_dir=Path(sys.argv[1]), languages=[LANGUAGES["en"], LANGUAGES["cs"]],
                       work_dir=Path(sys.argv[2]), engine="hf", seed=3)
    SDRRLTrainer(build_config(SDRRLTrainer, json.loads(sys.argv[3]))).build_dataset(ctx)
""")


def _ctx(model: Path, work: Path) -> TrainContext:
    return TrainContext(model_dir=model, languages=[EN, CS], work_dir=work, engine="hf", seed=3)


def _recording_generate_chat(monkeypatch) -> list[str]:
    """harness.engines.generate_chat, recording the questions it is asked."""
    import harness.engines as engines

    asked: list[str] = []
    real = engines.generate_chat

    def recording(model_dir, conversations, *args, **kwargs):
        asked.extend(c[-1]["content"] for c in conversations)
        return real(model_dir, conversations, *args, **kwargs)

    monkeypatch.setattr(engines, "generate_chat", recording)
    return asked


def test_a_kill_during_self_distillation_keeps_the_finished_answers(tiny_llama, tmp_path, monkeypatch):
    work = tmp_path / "killed"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.run([sys.executable, str(driver), str(tiny_llama), str(work), json.dumps(SETTINGS), str(BATCH)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    cache = work / "self_answers.jsonl"
    kept = [row["question"] for row in read_jsonl(cache)]
    assert len(kept) == BATCH  # the first batch, stored before the kill
    with open(cache, "a", encoding="utf-8") as fh:
        fh.write('{"key": "torn", "answer": "half a li')  # a writer killed mid-line: ignored, never a row

    monkeypatch.setattr(HFEngine, "generate_batch_size", BATCH)
    monkeypatch.setattr(HFEngine, "keep_every_batches", 1)
    asked = _recording_generate_chat(monkeypatch)
    resumed = SDRRLTrainer(build_config(SDRRLTrainer, SETTINGS)).build_dataset(_ctx(tiny_llama, work))
    assert len(asked) == 4 - BATCH and not set(asked) & set(kept)  # only the unfinished answers

    asked.clear()
    uninterrupted = SDRRLTrainer(build_config(SDRRLTrainer, SETTINGS)).build_dataset(_ctx(tiny_llama, tmp_path / "whole"))
    assert len(asked) == 4
    assert resumed == uninterrupted  # the same records, so the same train.jsonl


class _Interrupted(Exception):
    pass


def _fake_generate_chat(fail_after_batches: int | None, asked: list[str]):
    """Answers in batches of BATCH, calling on_batch after each; raises after `fail_after_batches` batches."""

    def fake(model_dir, conversations, max_new_tokens, engine="vllm", settings=None, on_batch=None):
        answers: list[Generation] = []
        for start in range(0, len(conversations), BATCH):
            if fail_after_batches is not None and start // BATCH == fail_after_batches:
                raise _Interrupted
            batch = conversations[start : start + BATCH]
            asked.extend(c[-1]["content"] for c in batch)
            answers.extend(Generation(f"T({c[-1]['content'][-12:]})", False) for c in batch)
            if on_batch is not None:
                on_batch(start, answers[start:])
        return answers

    return fake


def test_llm_translations_are_kept_batch_by_batch(tmp_path, monkeypatch):
    texts = [f"Sentence number {i}." for i in range(5)]
    asked: list[str] = []
    monkeypatch.setattr("harness.engines.generate_chat", _fake_generate_chat(1, asked))
    with pytest.raises(RuntimeError, match="_Interrupted"):  # as the generation wrapper passes it on
        make_translator("llm", model_dir=tmp_path, engine="hf", cache_dir=tmp_path).translate(texts, EN, CS)
    first = list(asked)
    assert len(first) == BATCH and len(read_jsonl(tmp_path / "translations.jsonl")) == BATCH

    asked.clear()
    monkeypatch.setattr("harness.engines.generate_chat", _fake_generate_chat(None, asked))
    out = make_translator("llm", model_dir=tmp_path, engine="hf", cache_dir=tmp_path).translate(texts, EN, CS)
    assert len(asked) == len(texts) - BATCH and not set(asked) & set(first)
    assert all(t[-12:] in o for t, o in zip(texts, out))  # each text got its own translation back
