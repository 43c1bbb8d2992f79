"""The one LoRA training loop every trainer shares.

`train_lora` reads top to bottom in its steps: place (devices, precision) -> encode the records and
plan their batches (trainers.encoding; trainers.sampler: batches sized in records, or in tokens with
`tokens_per_step`; grouping decides which records share one) -> the base model wrapped in a fresh LoRA -> optimiser and schedule
(trainers.lora_model) -> the loop, resumed from a checkpoint if one matches (trainers.checkpoint)
-> the adapter saved as safetensors -> statistics. No HF Trainer: the loop is plain PyTorch, with
`accelerate` only for device placement, mixed precision and DDP, so `accelerate launch -m
harness ...` on several GPUs gives data parallelism with the same code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import HarnessError
from harness.core.progress import run_line, shown_path
from harness.trainer_api import Trainer, TrainContext
from trainers import checkpoint as ckpt
from trainers import kernels
from trainers.checkpoint import LoopState
from trainers.config import TrainConfig
from trainers.encoding import encode_chat, n_targets
from trainers.lora_model import Placement, StepRunner, device_name, load_lora_model, optimiser_and_schedule, place, save_adapter
from trainers.sampler import Batching, GroupBatchSampler, batching_for_tokens, optimizer_steps


@dataclass
class TrainingData:
    """The records as token ids, how they are batched, and how many optimizer steps the run takes."""

    tokenizer: Any
    pad_id: int
    encoded: list[dict]
    dropped: int  # records with no answer token left after cutting to max_seq_len
    sampler: GroupBatchSampler
    batching: Batching  # config.batch_size records, or sized to config.tokens_per_step
    steps_per_epoch: float  # optimizer steps per pass over the records
    total_steps: int


def encode_records(tokenizer, records: list[dict], max_seq_len: int) -> tuple[list[dict], list[str], int]:
    """Encoded examples, their groups, and how many records were dropped (no answer token left)."""
    encoded: list[dict] = []
    groups: list[str] = []
    for record in records:
        example = encode_chat(tokenizer, record["messages"], max_seq_len)
        if example is not None:
            encoded.append(example)
            groups.append(record["group"])
    if not encoded:
        raise HarnessError(f"all {len(records)} records were dropped: no answer token fits in max_seq_len={max_seq_len}")
    return encoded, groups, len(records) - len(encoded)


def encode(model_dir: Path, records: list[dict], config: TrainConfig, seed: int, accelerator) -> TrainingData:
    """The records tokenized with the base model's tokenizer, this process's sampler, and the step count."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded, groups, dropped = encode_records(tokenizer, records, config.max_seq_len)
    batching = _batching(config, encoded, accelerator.num_processes)
    sampler = GroupBatchSampler(groups, batching.batch_size, seed, config.same_batch, accelerator.process_index,
                                accelerator.num_processes, passes=batching.passes)
    batches_per_epoch = len(sampler)
    if batches_per_epoch == 0:
        raise HarnessError(f"{len(sampler.groups)} groups are too few for {accelerator.num_processes} processes")
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum_steps) / batching.passes
    total_steps = config.max_steps if config.max_steps > 0 else max(1, round(steps_per_epoch * config.epochs))
    return TrainingData(tokenizer, pad_id, encoded, dropped, sampler, batching, steps_per_epoch, total_steps)


def _batching(config: TrainConfig, encoded: list[dict], processes: int) -> Batching:
    """config.batch_size records per batch, or with tokens_per_step the records that give a step that many
    tokens (every process encodes all records, so all derive the same batches)."""
    if not config.tokens_per_step:
        return Batching(config.batch_size, 1)
    total_tokens = sum(len(e["input_ids"]) for e in encoded)
    return batching_for_tokens(config.tokens_per_step, total_tokens, len(encoded), config.grad_accum_steps * processes)


@dataclass
class Checkpoints:
    """Where and how often the loop saves resumable checkpoints, and what they must match to be resumed."""

    folder: Path
    digest: str  # trainers.checkpoint.fingerprint of the records, settings, seed and processes
    every: int

    def resume(self, step: StepRunner, log: Callable[[str], None]) -> LoopState | None:
        return ckpt.load(self.folder, self.digest, step.model, step.optimizer, step.scheduler, step.accelerator, log)

    def due(self, step_number: int, total_steps: int) -> bool:
        return self.every > 0 and step_number % self.every == 0 and step_number < total_steps

    def save(self, state: LoopState, step: StepRunner) -> None:
        ckpt.save(self.folder, self.digest, state, step.model, step.optimizer, step.scheduler, step.accelerator)


@dataclass
class LoopResult:
    state: LoopState
    loop_s: float = 0.0  # this session's steps (a resumed run counts only its own), for the rates
    answer_tokens: int = 0  # this session's, all processes
    input_tokens: int = 0  # this session's, all processes


def _progress(main: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not main,
    )


def run_loop(step: StepRunner, data: TrainingData, state: LoopState, checkpoints: Checkpoints | None, progress,
             log_every: int, on_step: Callable[[dict], None] | None) -> LoopResult:
    """The optimizer steps from `state` to the last: train one, count it, report it, save a checkpoint when due."""
    main = step.accelerator.is_main_process
    result = LoopResult(state)
    started = time.time()
    with progress:
        task = progress.add_task("train", total=data.total_steps, completed=state.step, loss="-")
        for (state.epoch, state.batch), step_batches in optimizer_steps(data.sampler, step.config.grad_accum_steps, data.total_steps, state):
            examples = [data.encoded[i] for batch in step_batches for i in batch]
            loss, answer_tokens, input_tokens, records = step(examples)
            state.add_step(loss, answer_tokens, input_tokens, records)
            result.answer_tokens += answer_tokens
            result.input_tokens += input_tokens
            lr = step.scheduler.get_last_lr()[0]
            if on_step is not None:
                on_step({"step": state.step, "loss": loss, "lr": lr, "answer_tokens": sum(n_targets(e) for e in examples),
                         "input_tokens": sum(len(e["input_ids"]) for e in examples), "time": time.time()})
            progress.update(task, advance=1, loss=f"{loss:.4f}")
            if main and (state.step % log_every == 0 or state.step == data.total_steps):
                run_line(f"step {state.step}/{data.total_steps} loss {loss:.4f} lr {lr:.2e}")
            if checkpoints is not None and checkpoints.due(state.step, data.total_steps):
                checkpoints.save(state, step)
    result.loop_s = time.time() - started
    return result


def train_lora(
    model_dir: Path,
    records: list[dict],
    adapter_dir: Path,
    config: TrainConfig,
    seed: int = 0,
    on_step: Callable[[dict], None] | None = None,
    checkpoint_dir: Path | None = None,
) -> dict:
    """Train a LoRA adapter on `records` (see harness.trainer_api) and save it into `adapter_dir`.

    `on_step`, if given, is called after every optimizer step with
    {step, loss, lr, answer_tokens, input_tokens, time} (this process's tokens; time.time()).
    With `checkpoint_dir`, a resumable checkpoint is written there every `config.checkpoint_every`
    steps, and a run finding a matching one continues from it (trainers.checkpoint).
    """
    import torch

    config.validate()
    if not records:
        raise HarnessError("no training records")
    kernels.check_here(config.kernels, model_dir)
    started = time.time()
    placement = place(config, model_dir)
    accelerator = placement.accelerator
    torch.manual_seed(seed)
    data = encode(model_dir, records, config, seed, accelerator)

    model = load_lora_model(model_dir, config, placement.precision, placement.checkpointing)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    optimizer, scheduler = optimiser_and_schedule(trainable, config, data.total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    step = StepRunner(model, optimizer, scheduler, accelerator, trainable, config, data.pad_id)

    progress = _progress(accelerator.is_main_process)
    checkpoints = None
    if checkpoint_dir:
        checkpoints = Checkpoints(checkpoint_dir, ckpt.fingerprint(records, config, seed, accelerator.num_processes), config.checkpoint_every)
    state = checkpoints.resume(step, progress.console.print) if checkpoints else None
    resumed_from = state.step if state else 0
    if placement.on_gpu:
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    if accelerator.is_main_process:
        run_line(_announcement(config, data, n_trainable, placement)
                 + (f"; resumed after step {resumed_from} from {shown_path(checkpoint_dir)}" if resumed_from else ""))
        run_line(placement.checkpointing_reason)
    loop = run_loop(step, data, state or LoopState(), checkpoints, progress, config.log_every or max(1, data.total_steps // 20), on_step)

    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        save_adapter(accelerator.unwrap_model(model), data.tokenizer, adapter_dir)
    accelerator.wait_for_everyone()
    return _stats(config, data, placement, loop, resumed_from, n_trainable, started)


def _announcement(config: TrainConfig, data: TrainingData, n_trainable: int, placement: Placement) -> str:
    return (
        f"LoRA r={config.lora_rank} on {len(data.encoded)} records ({len(data.sampler.groups)} groups, {data.dropped} dropped), "
        f"{data.total_steps} steps"
        + (f" of {data.batching.batch_size:.2f} records per batch (sized to {config.tokens_per_step} tokens per step)" if config.tokens_per_step else "")
        + f", {n_trainable:,} trainable parameters, {placement.precision}"
        f"{', gradient checkpointing' if placement.checkpointing else ''}{', packed micro-batches' if config.packing else ''}{', liger kernels' if config.kernels == 'liger' else ''}, "
        f"{device_name(placement.accelerator)}"
    )


def _stats(config: TrainConfig, data: TrainingData, placement: Placement, loop: LoopResult, resumed_from: int,
           n_trainable: int, started: float) -> dict:
    import torch

    state, losses, processes = loop.state, loop.state.losses, placement.accelerator.num_processes
    stats = {
        "steps": len(losses),
        "resumed_from_step": resumed_from,
        "epochs": round(len(losses) / data.steps_per_epoch, 3),
        "examples": len(data.encoded),
        "examples_dropped": data.dropped,
        "groups": len(data.sampler.groups),
        "examples_seen": state.seen,
        "train_tokens": state.train_tokens,  # answer tokens the loss counted, all processes
        "first_loss": round(losses[0], 5),
        "final_loss": round(losses[-1], 5),
        "mean_loss": round(sum(losses) / len(losses), 5),
        "losses": [round(x, 5) for x in losses],
        "trainable_params": n_trainable,
        "precision": placement.precision,
        "gradient_checkpointing": placement.checkpointing,
        "kernels": config.kernels,
        "num_processes": processes,
        "device": device_name(placement.accelerator),
        "records_per_step": round(data.batching.batch_size * config.grad_accum_steps * processes, 2),  # a fraction when sized in tokens
        "tokens_per_step_target": config.tokens_per_step,  # 0: batches sized in records (batch_size)
        "input_tokens": state.input_tokens,  # prompt and answer tokens trained on, all processes
        "tokens_per_step": round(state.input_tokens / len(losses), 1),
        "split_groups": data.sampler.split_groups,  # groups split across batches in the last epoch's order
        "train_wall_s": round(time.time() - started, 2),  # loading, training and saving ("wall_s" is the manifest's own field)
        "loop_s": round(loop.loop_s, 2),  # the training loop alone (this session's steps)
        "train_tokens_per_s": round(loop.answer_tokens / loop.loop_s, 1) if loop.loop_s > 0 else None,
        "input_tokens_per_s": round(loop.input_tokens / loop.loop_s, 1) if loop.loop_s > 0 else None,
    }
    if placement.on_gpu:
        stats["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated(placement.accelerator.device) / 2**30, 2)
    return stats


class LoRATrainer(Trainer):
    """A trainer whose `train` is the shared loop; subclasses only write `build_dataset`, and their
    Config holds the loop's settings as `train` (trainers.config.TrainConfig)."""

    def check_model(self, model_dir: Path) -> None:
        check_target_modules(self.config.train.target_modules, model_dir)
        # Not the GPU: a plan may be made on a login node that trains nothing (train_lora checks it).
        kernels.check_installed(self.config.train.kernels, model_dir)

    def train(self, ctx: TrainContext, records: list[dict], adapter_dir: Path) -> dict:
        return train_lora(ctx.model_dir, records, adapter_dir, self.config.train, seed=ctx.seed, on_step=ctx.on_step,
                          checkpoint_dir=ctx.checkpoint_dir)


# PEFT's own special value: every linear layer but the output head
PEFT_ALL_LINEAR = "all-linear"


def check_target_modules(target_modules: list[str], model_dir: Path) -> None:
    """Each of `target_modules` names a layer of the model, as PEFT matches them (a module whose name
    is it or ends in ".<it>"), from the safetensors headers: a typo is refused at plan time, not after
    the data stage (minutes of self-distillation)."""
    from harness.core.safetensors_header import linear_modules

    try:
        modules = linear_modules(model_dir)
    except HarnessError:
        return  # no weights to read here: the model check names that
    names = sorted({m.rsplit(".", 1)[-1] for m in modules})
    for target in target_modules:
        if target == PEFT_ALL_LINEAR:
            continue
        if not any(m == target or m.endswith(f".{target}") for m in modules):
            raise HarnessError(f"target_modules {target!r} names no layer of model {str(model_dir)!r}; its layers: {', '.join(names)}")
