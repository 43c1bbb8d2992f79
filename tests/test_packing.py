"""Padding-free micro-batches (`packing=true`): one row, positions restarting per record, the same loss."""

from __future__ import annotations

from pathlib import Path

import pytest

import lora_micro_batch
from lora_micro_batch import loss_and_grads, worst_relative_difference
from trainers.config import TrainConfig
from trainers.encoding import IGNORE_INDEX, collate, collate_packed
from trainers.lora import train_lora


@pytest.fixture(scope="module")
def examples(tiny_llama) -> list[dict]:
    encoded = lora_micro_batch.encoded(tiny_llama)
    assert len({len(e["input_ids"]) for e in encoded}) == 3  # three lengths: the padded batch pads two rows
    return encoded


def test_a_packed_row_joins_the_records_and_restarts_their_positions(examples):
    packed, padded = collate_packed(examples), collate(examples, pad_id=0)
    lengths = [len(e["input_ids"]) for e in examples]
    assert packed["input_ids"].shape == (1, sum(lengths)) and "attention_mask" not in packed
    assert packed["position_ids"][0].tolist() == [p for n in lengths for p in range(n)]
    starts = [sum(lengths[:k]) for k in range(len(lengths))]
    assert all(packed["labels"][0, s] == IGNORE_INDEX for s in starts)  # never a target: the token before is another record's
    # the same targets as the padded rows, in the same order
    targets = lambda labels: [t for t in labels[:, 1:].flatten().tolist() if t != IGNORE_INDEX]  # noqa: E731
    assert targets(packed["labels"]) == targets(padded["labels"])


def test_packed_and_padded_micro_batches_give_the_same_loss_and_gradients(tiny_llama, examples):
    import torch

    model = lora_micro_batch.lora_model(tiny_llama)
    padded_loss, padded_grads = loss_and_grads(model, collate(examples, pad_id=0))
    packed_loss, packed_grads = loss_and_grads(model, collate_packed(examples))
    assert packed_loss == pytest.approx(padded_loss, rel=1e-5)
    worst = worst_relative_difference(padded_grads, packed_grads)
    assert worst < 1e-4, worst

    # The guard fires on the fault it is for: positions that do not restart let each record attend to
    # the records before it (no boundary for transformers to see), and the loss moves.
    leaky = collate_packed(examples)
    leaky["position_ids"] = torch.arange(leaky["input_ids"].shape[1]).unsqueeze(0)
    leaky_loss, _ = loss_and_grads(model, leaky)
    assert abs(leaky_loss - padded_loss) / padded_loss > 1e-3, (leaky_loss, padded_loss)


def test_training_with_packing_follows_the_padded_loss_curve(tiny_llama, tmp_path: Path, capsys):
    records = lora_micro_batch.records(copies=2)
    fast = dict(lora_rank=8, learning_rate=2e-3, warmup_ratio=0.0, lr_scheduler="constant", batch_size=3, max_steps=4)
    padded = train_lora(tiny_llama, records, tmp_path / "padded", TrainConfig(**fast))
    assert "packed micro-batches" not in capsys.readouterr().err
    packed = train_lora(tiny_llama, records, tmp_path / "packed", TrainConfig(packing=True, **fast))
    assert "packed micro-batches" in capsys.readouterr().err  # the training log says so
    assert packed["first_loss"] == pytest.approx(padded["first_loss"], rel=1e-5)  # 3 records in one packed row
    # Later steps agree only as closely as any two summation orders do: Adam turns float noise in the tiny
    # model's near-zero gradients into whole-size updates (micro_batch_size=1 instead of 4 moves this
    # padded curve by up to 0.2%, packing by up to 0.7%).
    assert packed["losses"] == pytest.approx(padded["losses"], rel=2e-2)
    assert packed["input_tokens"] == padded["input_tokens"] and packed["train_tokens"] == padded["train_tokens"]
