"""The model side of the training loop (trainers.lora): where it runs (precision, gradient
checkpointing), the base model wrapped in a fresh LoRA, the optimiser and its schedule, one
optimizer step, and the adapter saved as safetensors.

Precision: fp32 on CPU; bf16 autocast (base weights in bf16, LoRA weights in fp32) on GPU. Gradient
checkpointing on a GPU only where the memory estimate says it is needed (trainers.recompute).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core import device as devices  # its probes are looked up at call time: tests set them
from harness.core.errors import HarnessError, unknown
from harness.core.rules import TRUE_WORDS
from harness.core.runstore import atomic_dir
from trainers import kernels
from trainers.config import LR_SCHEDULERS, TrainConfig
from trainers.encoding import IGNORE_INDEX, collate, collate_packed, n_targets
from trainers.recompute import decide


@dataclass
class Placement:
    """Where and how the loop computes: the accelerator (devices, processes), bf16 or fp32, and
    whether activations are recomputed (gradient checkpointing)."""

    accelerator: Any
    precision: str
    checkpointing: bool
    checkpointing_reason: str = ""  # one line for the training log: which, and why

    @property
    def on_gpu(self) -> bool:
        return self.accelerator.device.type == "cuda"


def place(config: TrainConfig, model_dir: Path) -> Placement:
    """The accelerator for `config.precision` (auto: bf16 on a bf16-capable GPU, else fp32), and whether
    activations are recomputed (auto: only when the memory estimate of trainers.recompute needs it)."""
    from accelerate import Accelerator

    gpu_bf16 = devices.cuda_available() and devices.bf16_supported()
    precision = ("bf16" if gpu_bf16 else "fp32") if config.precision == "auto" else config.precision
    accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no")
    on_gpu = accelerator.device.type == "cuda"
    # config.validate() accepts auto and the true/false words (harness.core.rules.FLAG_WORDS) only.
    word = config.gradient_checkpointing
    recompute = decide(word, None if word == "auto" else word.lower() in TRUE_WORDS,
                       devices.model_shape(model_dir) if on_gpu and word == "auto" else None,
                       config.micro_batch_size * config.max_seq_len, 2 if precision == "bf16" else 4,
                       devices.free_memory_bytes(accelerator.device) if on_gpu else None)
    return Placement(accelerator, precision, recompute.on, recompute.reason)


def device_name(accelerator) -> str:
    import torch

    if accelerator.device.type == "cuda":
        return f"{torch.cuda.get_device_name(accelerator.device)} x{accelerator.num_processes}"
    return f"{accelerator.device.type} x{accelerator.num_processes} ({torch.get_num_threads()} threads)"


def load_lora_model(model_dir: Path, config: TrainConfig, precision: str, checkpointing: bool):
    """The base model (safetensors only) wrapped in a fresh PEFT LoRA."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            model_dir,
            dtype=torch.bfloat16 if precision == "bf16" else torch.float32,
            use_safetensors=True,
            trust_remote_code=False,
        )
    except OSError as exc:
        raise HarnessError(f"cannot load base model {model_dir} as safetensors: {exc}".splitlines()[0]) from None
    model.config.use_cache = False
    kernels.apply(model, config.kernels)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lora)  # LoRA weights stay fp32 (autocast_adapter_dtype)
    except ValueError as exc:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise HarnessError(f"target_modules {config.target_modules} do not fit this model ({exc}); its linear layers: {linear}") from None


def optimiser_and_schedule(trainable: list, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW over the LoRA weights and its learning-rate schedule (warm-up, then config.lr_scheduler)."""
    import torch

    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = math.ceil(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.lr_scheduler, warmup, total_steps))
    return optimizer, scheduler


def lr_lambda(kind: str, warmup: int, total: int):
    """The learning-rate factor of each step: linear warm-up over `warmup` steps, then `kind`."""
    if kind not in LR_SCHEDULERS:
        raise unknown("lr_scheduler", kind, LR_SCHEDULERS)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        return 1.0

    return factor


def forward_sum(model, batch: dict, fused_loss: bool = False):
    """Summed next-token cross-entropy over the answer tokens of one micro-batch (padded rows with an
    attention mask, or one packed row with position ids: trainers.encoding).

    Logits are computed only at positions that predict an answer token in some row
    (`logits_to_keep`): the vocabulary projection of the prompt tokens is skipped. With `fused_loss`
    (a model patched by trainers.kernels for liger), the model's own forward computes the loss from
    the kept hidden states without holding their logits.
    """
    import torch.nn.functional as F

    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
    # use_cache=False: with a cache, transformers does not look for packed records in the position ids
    if fused_loss:
        # Liger's loss: shift_labels are the kept positions' targets (no further shift), and the sum over
        # them is divided by num_items_in_batch, so 1 leaves the sum.
        return model(**inputs, use_cache=False, logits_to_keep=keep, shift_labels=targets[:, keep].contiguous(),
                     num_items_in_batch=1, skip_logits=True).loss
    logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
    return F.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)),
        targets[:, keep].reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


@dataclass
class StepRunner:
    """One optimizer step: micro-batched forward/backward, clipping, update, the loss over all processes."""

    model: Any
    optimizer: Any
    scheduler: Any
    accelerator: Any
    trainable: list
    config: TrainConfig
    pad_id: int

    def __call__(self, step_examples: list[dict]) -> tuple[float, int, int, int]:
        """(mean loss per answer token, answer tokens, input tokens, records) of this step over all processes."""
        import torch

        acc, config = self.accelerator, self.config
        # Sorted by length so each micro-batch pads little; the update is the same in any order.
        step_examples = sorted(step_examples, key=lambda e: len(e["input_ids"]))
        local = torch.tensor([float(sum(n_targets(e) for e in step_examples)),
                              float(sum(len(e["input_ids"]) for e in step_examples)), float(len(step_examples))], device=acc.device)
        # The loss is per answer token of the whole step, all processes together; DDP averages the
        # processes' gradients, so each process scales its sum by num_processes / all targets.
        # (The processes' input tokens and records are summed with them: batches sized in tokens
        # differ between processes, so one process's counts times num_processes would not do.)
        totals = acc.reduce(local, "sum")
        all_targets = totals[0]
        scale = acc.num_processes / all_targets
        micro = [step_examples[i : i + config.micro_batch_size] for i in range(0, len(step_examples), config.micro_batch_size)]
        loss_sum = torch.zeros((), device=acc.device)
        for k, chunk in enumerate(micro):
            tensors = collate_packed(chunk) if config.packing else collate(chunk, self.pad_id)
            batch = {key: t.to(acc.device) for key, t in tensors.items()}
            # DDP all-reduces gradients only on the last micro-batch of the step.
            sync = acc.no_sync(self.model) if k < len(micro) - 1 else nullcontext()
            with sync, acc.autocast():
                chunk_loss = forward_sum(self.model, batch, fused_loss=config.kernels == "liger")
                acc.backward(chunk_loss * scale)
            loss_sum += chunk_loss.detach()
        if config.max_grad_norm > 0:
            acc.clip_grad_norm_(self.trainable, config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return (acc.reduce(loss_sum, "sum") / all_targets).item(), int(all_targets.item()), int(totals[1].item()), int(totals[2].item())


def save_adapter(model, tokenizer, adapter_dir: Path) -> None:
    """adapter_model.safetensors + adapter_config.json + tokenizer, written to a temporary folder, then renamed."""
    with atomic_dir(adapter_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, save_embedding_layers=False)
        tokenizer.save_pretrained(tmp)
