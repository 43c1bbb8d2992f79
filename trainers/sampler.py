"""Which records train together: batches sized in records (grouping decides which records share
one), the records per batch that give a target of tokens per step, and the optimizer steps of a
run from any position, so a resumed run sees the same batches.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Iterator

from harness.core.errors import HarnessError
from trainers.checkpoint import LoopState


# A sampler epoch sized in tokens holds at least this many steps: rounding to whole steps then misses
# the target by at most 5%.
MIN_EPOCH_STEPS = 10


@dataclass(frozen=True)
class Batching:
    """How GroupBatchSampler sizes batches: in records (a whole batch_size, one pass) or in tokens."""

    batch_size: float  # records per batch and process (a fraction when sized in tokens)
    passes: int  # passes over the records in one sampler epoch


def batching_for_tokens(tokens_per_step: int, total_tokens: int, n_records: int, batches_per_step: int) -> Batching:
    """The records per batch whose steps hold `tokens_per_step` of the records' `total_tokens` on average.

    A step is `batches_per_step` batches (gradient accumulation x processes). A sampler epoch is
    a whole number of steps that uses every record equally often: one pass over the records, or
    as many passes as give it MIN_EPOCH_STEPS steps when one pass holds fewer (a small data set;
    a batch may then straddle two passes). A step never holds more records than the data set has:
    a record twice in one step would add tokens, not information.
    """
    per_pass = total_tokens / tokens_per_step  # steps' worth of tokens in one pass
    passes = 1 if per_pass <= 1 else math.ceil(MIN_EPOCH_STEPS / per_pass)
    wanted = passes * per_pass
    steps = min({max(passes, math.floor(wanted)), max(passes, math.ceil(wanted))}, key=lambda m: (abs(wanted / m - 1), m))
    steps = max(1, min(steps, passes * n_records // batches_per_step))  # at least one record per batch
    return Batching(max(1.0, passes * n_records / (steps * batches_per_step)), passes)


class GroupBatchSampler:
    """Batches of `batch_size` record indices; grouping only decides which records share one.

    Batches are sized in records, never in groups, so trainers whose groups differ in size (SDRRL's
    ~19 variants of one instruction, translate-then-SFT's single records) train on the same number
    of records per step. With `same_batch=True` the records of one group are kept in one batch
    whenever the group fits: groups are taken in a shuffled order, and the space a group leaves
    at the end of a batch is filled with a later group that fits (looking `lookahead` groups
    ahead), so a group is split across two batches only when no later group fits the gap or the
    group is larger than a batch. With `same_batch=False` every record is its own group
    (ordinary shuffled batches). Order is shuffled per epoch with `seed + epoch`; records keep
    their order within a group. The last, short batch of an epoch is dropped (its records come
    back shuffled in the next epoch) unless it is the only one. With several processes (DDP) each
    takes every `world_size`-th batch, and the batch list is cut to a multiple of `world_size` so
    every process runs the same number of steps.

    Sized in tokens (batching_for_tokens), `batch_size` is a fraction and an epoch may be several
    `passes` over the records, shuffled one after another: the k-th batch of an epoch ends at its
    record round(k x batch_size), so batches hold the whole numbers around `batch_size` (3, 2, 3,
    ... for 2.7) and average it; a whole `batch_size` gives batches of exactly that many. The
    processes' batches of one step may then differ by a record: the loss is normalised over all
    processes' answer tokens (trainers.lora_model.StepRunner).
    """

    def __init__(
        self,
        groups: list[str],
        batch_size: float,
        seed: int = 0,
        same_batch: bool = True,
        rank: int = 0,
        world_size: int = 1,
        lookahead: int = 256,
        passes: int = 1,
    ):
        if batch_size < 1:
            raise HarnessError(f"batch_size must be >= 1, got {batch_size}")
        members: dict[str, list[int]] = {}
        for index, group in enumerate(groups):
            members.setdefault(group if same_batch else f"#{index}", []).append(index)
        self.groups = list(members.values())
        self.n_records = len(groups)
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.lookahead = lookahead
        self.passes = passes
        self.epoch = 0
        self.split_groups = 0  # groups the last all_batches() call had to split across batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _end(self, k: int) -> int:
        """Records in the epoch's first k batches (round half up: the same on every process)."""
        return math.floor(k * self.batch_size + 0.5)

    def size(self, k: int) -> int:
        """Records in the epoch's k-th batch (from 0)."""
        return self._end(k + 1) - self._end(k)

    def all_batches(self) -> list[list[int]]:
        """This epoch's batches across all processes."""
        pending: list[tuple[int, list[int]]] = []
        for one_pass in range(self.passes):
            order = list(range(len(self.groups)))
            random.Random(self.seed + self.epoch * self.passes + one_pass).shuffle(order)
            pending += [(g, list(self.groups[g])) for g in order]
        batches: list[list[int]] = []
        split: set[int] = set()
        while pending:
            batch: list[int] = []
            capacity = self.size(len(batches))
            while pending and len(batch) < capacity:
                space = capacity - len(batch)
                fits = next((k for k, (_, rest) in enumerate(pending[: self.lookahead]) if len(rest) <= space), None)
                if fits is None:  # nothing fits the gap: split the next group to keep the batch full
                    group, rest = pending[0]
                    split.add(group)
                    batch.extend(rest[:space])
                    pending[0] = (group, rest[space:])
                else:
                    batch.extend(pending.pop(fits)[1])
            batches.append(batch)
        self.split_groups = len(split)
        if len(batches) > 1 and len(batches[-1]) < self.size(len(batches) - 1):
            batches.pop()
        if self.world_size > 1:
            batches = batches[: len(batches) - len(batches) % self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.all_batches()[self.rank :: self.world_size])

    def __len__(self) -> int:
        n = 0  # the full batches of an epoch
        while self._end(n + 1) <= self.n_records * self.passes:
            n += 1
        n = max(1, n)
        if self.world_size > 1:
            n -= n % self.world_size
        return n // self.world_size


def optimizer_steps(sampler: GroupBatchSampler, grad_accum_steps: int, total_steps: int, state: LoopState) -> Iterator[tuple[int, int, list[list[int]]]]:
    """(epoch, index of the next batch, the batches of one optimizer step), from `state`'s position until total_steps.

    The position is the sampler's epoch and an index into that epoch's batch list, so a resumed
    run continues with exactly the batches an uninterrupted one would have seen.
    """
    step, epoch, start = state.step, state.epoch, state.batch
    while step < total_steps:
        sampler.set_epoch(epoch)
        batches = list(sampler)
        if start >= len(batches):
            raise HarnessError(f"cannot resume at batch {start} of epoch {epoch}: the sampler gives {len(batches)} batches")
        while start < len(batches) and step < total_steps:
            chunk = batches[start : start + grad_accum_steps]
            start += len(chunk)
            step += 1
            yield ((epoch, start) if start < len(batches) else (epoch + 1, 0)), chunk
        epoch, start = epoch + 1, 0
