"""Whether training recomputes activations (gradient checkpointing): `auto` turns it on only when the
memory a micro-batch needs without it would not fit the free GPU memory.

The estimate (ours, a rule of thumb, not a measurement):
  weights     = parameters x bytes per value (bf16: 2; LoRA weights and their optimiser state are small)
  activations = tokens x layers x hidden x 17 values x bytes per value   (34 bytes in bf16: Korthikanti et al.
                2022's per-layer count without the attention-score term, which SDPA / flash attention do not keep)
              + tokens x vocab x 8 bytes                                  (fp32 logits and their gradient)
  tokens      = micro_batch_size x max_seq_len (records are cut there, so no micro-batch holds more)
Checkpointing is on when weights + activations exceed 85% of the free GPU memory (our default share: the
rest is allocator slack and the runtime's buffers). On a CPU it is off: memory there is not the limit.
A 7B Llama at 4 x 512 tokens needs about 21.5 GiB (12.6 weights + 9.0 activations), so it trains without
recomputation on an 80 GB GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.device import ModelShape

TRAIN_MEMORY_SHARE = 0.85
ACTIVATION_VALUES_PER_HIDDEN = 17
GIB = 2**30


@dataclass(frozen=True)
class Recompute:
    on: bool
    reason: str  # one line for the training log


def training_memory_bytes(shape: ModelShape, tokens: int, dtype_bytes: int) -> tuple[int, int]:
    """(weights, activations) in bytes of one micro-batch of `tokens` without recomputation."""
    weights = shape.parameters * dtype_bytes
    activations = tokens * shape.layers * shape.hidden * ACTIVATION_VALUES_PER_HIDDEN * dtype_bytes + tokens * shape.vocab * 8
    return weights, activations


def decide(setting: str, forced: bool | None, shape: ModelShape | None, tokens: int, dtype_bytes: int,
           free_bytes: int | None) -> Recompute:
    """`forced` is the setting's true/false word read as a bool (None for auto); free_bytes None: no GPU."""
    if forced is not None:
        return Recompute(forced, f"gradient checkpointing {'on' if forced else 'off'}: gradient_checkpointing={setting}")
    if free_bytes is None or shape is None:
        return Recompute(False, "gradient checkpointing off (auto): no GPU, memory is not the limit")
    weights, activations = training_memory_bytes(shape, tokens, dtype_bytes)
    budget = free_bytes * TRAIN_MEMORY_SHARE
    on = weights + activations > budget
    return Recompute(on, f"gradient checkpointing {'on' if on else 'off'} (auto): weights {weights / GIB:.1f} GiB + "
                         f"activations of {tokens} tokens {activations / GIB:.1f} GiB {'>' if on else '<='} "
                         f"{TRAIN_MEMORY_SHARE:.0%} of {free_bytes / GIB:.1f} GiB free")
