"""Resumable checkpoints of the LoRA training loop.

A checkpoint is a folder `step-<N>` holding everything the loop needs to continue as if it had
never stopped: the LoRA weights, the optimiser and scheduler states, the sampler position
(epoch + index of the next batch in that epoch's batch list), the loop's running totals and
each process's RNG states (dropout draws from torch's RNG). It is written under a temporary
name and renamed when complete, so a kill while saving leaves the previous checkpoint intact.

A checkpoint records a fingerprint of what it was trained on (records, config, seed, number of
processes); one that does not match the current run is deleted, never resumed from.
"""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.runstore import read_json, sha256_json, write_json

STEP_DIR = re.compile(r"^step-(\d+)$")
# Settings that change how often we save or print, not what is trained.
NOT_FINGERPRINTED = ("checkpoint_every", "log_every")


@dataclass
class LoopState:
    """The loop's position and running totals after `step` optimiser steps."""

    step: int = 0
    epoch: int = 0  # the sampler epoch of the next batch
    batch: int = 0  # index of the next batch in that epoch's list (this process's batches)
    losses: list[float] = field(default_factory=list)
    train_tokens: int = 0
    input_tokens: int = 0
    seen: int = 0

    def add_step(self, loss: float, answer_tokens: int, input_tokens: int, records: int) -> None:
        """Count one optimizer step: its loss, and the answer tokens, input tokens and records of all processes."""
        self.step += 1
        self.losses.append(loss)
        self.train_tokens += answer_tokens
        self.input_tokens += input_tokens
        self.seen += records


def fingerprint(records: list[dict], config: Any, seed: int, world_size: int) -> str:
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_FINGERPRINTED}
    return sha256_json({"records": records, "config": settings, "seed": seed, "world_size": world_size})


def _rng_state() -> dict:
    import torch

    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trainable(model) -> dict:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def latest(checkpoint_dir: Path) -> Path | None:
    """The complete checkpoint with the highest step, if any."""
    found = [(int(m.group(1)), p) for p in Path(checkpoint_dir).glob("step-*") if (m := STEP_DIR.match(p.name))]
    found = [(step, p) for step, p in found if (p / "state.json").is_file()]
    return max(found)[1] if found else None


def save(checkpoint_dir: Path, digest: str, state: LoopState, model, optimizer, scheduler, accelerator) -> Path:
    """Write checkpoint `step-<state.step>` (all processes call this) and delete older ones."""
    import torch
    from safetensors.torch import save_file

    checkpoint_dir = Path(checkpoint_dir)
    final = checkpoint_dir / f"step-{state.step}"
    tmp = checkpoint_dir / f".step-{state.step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    torch.save(_rng_state(), tmp / f"rng-{accelerator.process_index}.pt")
    if accelerator.is_main_process:
        weights = {n: p.detach().cpu().contiguous() for n, p in _trainable(accelerator.unwrap_model(model)).items()}
        save_file(weights, tmp / "adapter.safetensors")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        # state.json last: a folder without it is incomplete and never resumed from.
        write_json(tmp / "state.json", {"fingerprint": digest, "world_size": accelerator.num_processes, **dataclasses.asdict(state)})
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in checkpoint_dir.glob("step-*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(checkpoint_dir: Path, digest: str, model, optimizer, scheduler, accelerator, log=print) -> LoopState | None:
    """Restore the latest matching checkpoint into model/optimizer/scheduler/RNG; None if there is none."""
    import torch
    from safetensors.torch import load_file

    path = latest(checkpoint_dir) if checkpoint_dir else None
    if path is None:
        return None
    saved = read_json(path / "state.json")
    if saved.get("fingerprint") != digest:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            log(f"checkpoint {path} is from other records or settings: ignored and deleted")
            shutil.rmtree(path, ignore_errors=True)
        accelerator.wait_for_everyone()
        return None
    weights = load_file(path / "adapter.safetensors")
    params = _trainable(accelerator.unwrap_model(model))
    if set(weights) != set(params):
        raise RuntimeError(f"checkpoint {path} holds other LoRA weights than the model: {sorted(set(weights) ^ set(params))[:4]}")
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name].to(p.device, p.dtype))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True))
    _set_rng_state(torch.load(path / f"rng-{accelerator.process_index}.pt", weights_only=True))
    fields = {f.name for f in dataclasses.fields(LoopState)}
    return LoopState(**{k: v for k, v in saved.items() if k in fields})
