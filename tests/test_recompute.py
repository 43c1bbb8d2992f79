"""Gradient checkpointing only when it is needed: trainers.recompute's rule, checked by its inputs
(model shape, tokens per micro-batch, free GPU memory) on a CPU-only machine."""

from __future__ import annotations

from pathlib import Path

from harness.core.device import ModelShape
from trainers.config import TrainConfig
from trainers.recompute import decide, training_memory_bytes

GIB = 2**30
SMOLLM2 = ModelShape(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, vocab=49152, tied_embeddings=True, head_dim=64)
LLAMA7B = ModelShape(layers=32, hidden=4096, intermediate=11008, heads=32, kv_heads=32, vocab=32000, tied_embeddings=False, head_dim=128)


def test_auto_leaves_recomputation_off_where_the_micro_batch_fits():
    small = decide("auto", None, SMOLLM2, 4 * 1024, 2, 139 * GIB)  # the 135M model on an H200
    assert not small.on and "off (auto)" in small.reason
    # A 7B LoRA at 4 x 512 tokens on an 80 GB GPU (benchmarks/RESULTS.md: fits, and 1.42x faster without it).
    weights, activations = training_memory_bytes(LLAMA7B, 4 * 512, 2)
    assert 12 * GIB < weights < 13 * GIB and 8 * GIB < activations < 10 * GIB
    assert not decide("auto", None, LLAMA7B, 4 * 512, 2, 79 * GIB).on


def test_auto_turns_it_on_when_activations_would_not_fit():
    tight = decide("auto", None, LLAMA7B, 16 * 4096, 2, 79 * GIB)  # 65,536 tokens: ~280 GiB of activations
    assert tight.on and "on (auto)" in tight.reason and "79.0 GiB free" in tight.reason
    assert decide("auto", None, LLAMA7B, 4 * 512, 2, 20 * GIB).on  # the 7B weights alone nearly fill 20 GiB


def test_no_gpu_means_off_and_a_set_word_wins():
    assert decide("auto", None, None, 10**9, 4, None) == decide("auto", None, LLAMA7B, 10**9, 4, None)
    assert not decide("auto", None, LLAMA7B, 10**9, 4, None).on
    assert decide("on", True, SMOLLM2, 1, 2, 139 * GIB).on
    assert not decide("false", False, LLAMA7B, 16 * 4096, 2, 1 * GIB).on


def test_the_rule_is_said_in_the_settings_listing_and_the_placement_says_why():
    from harness.app.commands import settings_listing
    from trainers.lora_model import place

    listing = settings_listing("settings", "sdrrl")
    assert "gradient_checkpointing" in listing and "85% of the free GPU memory" in listing
    placement = place(TrainConfig(), Path("not-read-on-cpu"))
    assert not placement.checkpointing and placement.checkpointing_reason.startswith("gradient checkpointing off (auto): no GPU")
