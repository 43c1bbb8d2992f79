"""The one LoRA training loop every trainer shares.

Read top to bottom: config -> tokenization (loss on assistant tokens only) -> the batch sampler
(batches sized in records; grouping decides which records share a batch) -> `train_lora` (load base, wrap in PEFT, loop,
save the adapter as safetensors). No HF Trainer: the loop is plain PyTorch, with `accelerate` only
for device placement, mixed precision and DDP, so `accelerate launch -m harness.cli ...` on several
GPUs gives data parallelism with the same code.

Precision: fp32 on CPU; bf16 autocast (base weights in bf16, LoRA weights in fp32) plus gradient
checkpointing on GPU.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from harness.errors import HarnessError
from harness.rules import Rule, above, at_least, between, check_rules, one_of
from harness.trainer_api import Trainer, TrainContext
from trainers import checkpoint as ckpt
from trainers.checkpoint import LoopState

# The projection layers of Llama/Mistral/Qwen-style decoders; vLLM serves LoRA adapters on these.
DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MAX_VLLM_LORA_RANK = 64  # harness.engines.EngineSettings.max_lora_rank
LR_SCHEDULERS = ("constant", "cosine", "linear")
IGNORE_INDEX = -100


@dataclass
class TrainConfig:
    """LoRA and optimisation knobs. Trainers' Config dataclasses inherit these.

    Whether the SDRRL paper fine-tuned with LoRA or fully is not known (DESIGN.md); we train LoRA
    adapters (vLLM serves them). The defaults below are common LoRA instruction-tuning values: our
    defaults, not the paper's.
    """

    lora_rank: int = 16  # LoRA r; <= 64 so vLLM can serve the adapter (paper's value unknown)
    lora_alpha: int = 32  # LoRA scaling numerator (scale = alpha / r); paper's value unknown
    lora_dropout: float = 0.05  # dropout on the LoRA input; paper's value unknown
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))  # vLLM-servable set
    learning_rate: float = 2e-4  # peak AdamW learning rate; paper's value unknown
    epochs: int = 3  # passes over the training set; paper's value unknown
    max_steps: int = 0  # > 0: train exactly this many optimizer steps (overrides epochs); 0: use epochs
    batch_size: int = 16  # records per batch and process, whatever the grouping (equal budgets across trainers); our default
    grad_accum_steps: int = 1  # batches per optimizer step (records per step = batch_size x grad_accum_steps x processes)
    micro_batch_size: int = 4  # records per forward pass (memory only: a step is one update either way)
    max_seq_len: int = 1024  # tokens per record; longer ones are cut, ones left with no answer token dropped
    warmup_ratio: float = 0.03  # fraction of optimizer steps with linear warm-up
    lr_scheduler: str = "cosine"  # after warm-up: cosine | linear | constant
    weight_decay: float = 0.0  # AdamW weight decay on the LoRA weights
    max_grad_norm: float = 1.0  # gradient clipping; 0 disables
    gradient_checkpointing: str = "auto"  # auto (on GPU only) | true | false
    precision: str = "auto"  # auto (bf16 on a bf16-capable GPU, else fp32) | bf16 | fp32
    same_batch: bool = True  # keep the records of one group in one batch where they fit (grouping; see GroupBatchSampler)
    log_every: int = 0  # print the loss every N steps; 0: about 20 lines per run
    checkpoint_every: int = 100  # save a resumable checkpoint every N optimizer steps (when the run gives a folder); 0: never

    RULES: ClassVar[dict] = {
        "lora_rank": between(1, MAX_VLLM_LORA_RANK, int),  # vLLM serves adapters up to rank 64
        "lora_alpha": above(0),  # the LoRA scale is alpha / r
        "lora_dropout": between(0, 1, hi_open=True),
        "target_modules": Rule(list, non_empty=True),
        "learning_rate": at_least(0, float),  # 0 is allowed: the regression check's mutation test trains with it
        "epochs": Rule(int, lo=0, note=">= 1 unless max_steps >= 1"),
        "max_steps": at_least(0),
        "batch_size": at_least(1),
        "grad_accum_steps": at_least(1),
        "micro_batch_size": at_least(1),
        "max_seq_len": at_least(8),
        "warmup_ratio": between(0, 1),
        "lr_scheduler": one_of(*LR_SCHEDULERS),
        "weight_decay": at_least(0, float),
        "max_grad_norm": at_least(0, float),
        "gradient_checkpointing": one_of("auto", "true", "false", "1", "0", "yes", "no", "on", "off"),
        "precision": one_of("auto", "bf16", "fp32"),
        "log_every": at_least(0),
    }

    def validate(self, owner: str = "train") -> None:
        """Type, range and choice of every setting (harness.rules); called by build_config at plan time."""
        check_rules(self, owner)
        if self.epochs < 1 and self.max_steps < 1:
            raise HarnessError(f"bad value for {owner}.epochs: {self.epochs!r} with max_steps={self.max_steps!r} trains nothing; set epochs >= 1 or max_steps >= 1")


# --------------------------------------------------------------------------------------------
# Tokenization: chat template, loss on assistant tokens only
# --------------------------------------------------------------------------------------------


def _render(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def chat_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """Split the rendered conversation into (text, is_trained) pieces.

    Each assistant turn is trained from just after the generation prompt (the text a model sees
    when asked to answer, `<|im_start|>assistant\\n` for ChatML) through its end-of-turn marker, so
    the model learns to stop. Splitting exactly at the generation prompt makes the prompt tokens
    the same as at inference time.
    """
    if tokenizer.chat_template is None:
        raise HarnessError(f"tokenizer of {tokenizer.name_or_path!r} has no chat template; use an instruction-tuned model")
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], add_generation_prompt=True)
        full = _render(tokenizer, messages[: i + 1], add_generation_prompt=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise HarnessError(
                f"the chat template of {tokenizer.name_or_path!r} does not render turns as prefixes of each other; "
                "cannot locate the assistant tokens"
            )
        segments.append((prompt[len(done) :], False))
        segments.append((full[len(prompt) :], True))
        done = full
    rest = _render(tokenizer, messages, add_generation_prompt=False)
    if rest.startswith(done) and len(rest) > len(done):
        segments.append((rest[len(done) :], False))
    return [(text, trained) for text, trained in segments if text]


def encode_chat(tokenizer, messages: list[dict], max_seq_len: int) -> dict | None:
    """input_ids and labels (IGNORE_INDEX outside assistant turns), cut to max_seq_len.

    The whole conversation is tokenized once, as the model sees it, and each token is trained when
    it starts inside an assistant segment (character offsets). Tokenizing the segments one by one
    would differ from that at their seams: a SentencePiece tokenizer (LLaMA-2, SeaLLM) prefixes a
    separately tokenized answer with a space piece of its own. Tokenizers without offsets fall back
    to segment by segment. None when nothing trainable is left after cutting.
    """
    segments = chat_segments(tokenizer, messages)
    if getattr(tokenizer, "is_fast", False):
        text = "".join(t for t, _ in segments)
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        spans, at = [], 0
        for piece, trained in segments:
            if trained:
                spans.append((at, at + len(piece)))
            at += len(piece)
        input_ids = list(enc["input_ids"])
        labels = [tok if any(a <= start < b for a, b in spans) else IGNORE_INDEX
                  for tok, (start, _) in zip(input_ids, enc["offset_mapping"])]
    else:
        input_ids, labels = [], []
        for piece, trained in segments:
            ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
            input_ids.extend(ids)
            labels.extend(ids if trained else [IGNORE_INDEX] * len(ids))
    input_ids, labels = input_ids[:max_seq_len], labels[:max_seq_len]
    # labels[0] can never be predicted (nothing before it), so it does not count.
    if not any(label != IGNORE_INDEX for label in labels[1:]):
        return None
    return {"input_ids": input_ids, "labels": labels}


# --------------------------------------------------------------------------------------------
# The batch sampler
# --------------------------------------------------------------------------------------------


class GroupBatchSampler:
    """Batches of exactly `batch_size` record indices; grouping only decides which records share one.

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
    """

    def __init__(
        self,
        groups: list[str],
        batch_size: int,
        seed: int = 0,
        same_batch: bool = True,
        rank: int = 0,
        world_size: int = 1,
        lookahead: int = 256,
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
        self.epoch = 0
        self.split_groups = 0  # groups the last all_batches() call had to split across batches

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def all_batches(self) -> list[list[int]]:
        """This epoch's batches across all processes."""
        order = list(range(len(self.groups)))
        random.Random(self.seed + self.epoch).shuffle(order)
        pending = [(g, list(self.groups[g])) for g in order]
        batches: list[list[int]] = []
        split: set[int] = set()
        while pending:
            batch: list[int] = []
            while pending and len(batch) < self.batch_size:
                space = self.batch_size - len(batch)
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
        if len(batches) > 1 and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.world_size > 1:
            batches = batches[: len(batches) - len(batches) % self.world_size]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.all_batches()[self.rank :: self.world_size])

    def __len__(self) -> int:
        n = max(1, self.n_records // self.batch_size)
        if self.world_size > 1:
            n -= n % self.world_size
        return n // self.world_size


def collate(examples: list[dict], pad_id: int):
    """Right-padded tensors: input_ids, attention_mask, labels."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def n_targets(example: dict) -> int:
    """Tokens the loss counts: labels after the causal shift."""
    return sum(1 for label in example["labels"][1:] if label != IGNORE_INDEX)


# --------------------------------------------------------------------------------------------
# Helpers: schedule, precision, saving
# --------------------------------------------------------------------------------------------


def lr_lambda(kind: str, warmup: int, total: int):
    if kind not in ("cosine", "linear", "constant"):
        raise HarnessError(f"unknown lr_scheduler {kind!r}; valid: constant, cosine, linear")

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


def _flag(value: Any, auto: bool, name: str) -> bool:
    text = str(value).lower()
    if text == "auto":
        return auto
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise HarnessError(f"{name} must be auto, true or false, got {value!r}")


def resolve_precision(precision: str) -> str:
    import torch

    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return "bf16" if gpu_bf16 else "fp32"
    if precision not in ("bf16", "fp32"):
        raise HarnessError(f"precision must be auto, bf16 or fp32, got {precision!r}")
    return precision


def check_config(config: TrainConfig) -> None:
    config.validate()


def device_name(accelerator) -> str:
    import torch

    if accelerator.device.type == "cuda":
        return f"{torch.cuda.get_device_name(accelerator.device)} x{accelerator.num_processes}"
    return f"{accelerator.device.type} x{accelerator.num_processes} ({torch.get_num_threads()} threads)"


def save_adapter(model, tokenizer, adapter_dir: Path) -> None:
    """adapter_model.safetensors + adapter_config.json + tokenizer, written to a temp folder, then renamed."""
    adapter_dir = Path(adapter_dir)
    adapter_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{adapter_dir.name}.", dir=adapter_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True, save_embedding_layers=False)
        tokenizer.save_pretrained(tmp)
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        os.replace(tmp, adapter_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


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


def forward_sum(model, batch: dict):
    """Summed next-token cross-entropy over the answer tokens of one micro-batch.

    Logits are computed only at positions that predict an answer token in some row
    (`logits_to_keep`): the vocabulary projection of the prompt tokens is skipped.
    """
    import torch.nn.functional as F

    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], logits_to_keep=keep).logits
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

    def __call__(self, step_examples: list[dict]) -> tuple[float, int]:
        """(mean loss per answer token, answer tokens) of this step over all processes."""
        import torch

        acc, config = self.accelerator, self.config
        # Sorted by length so each micro-batch pads little; the update is the same in any order.
        step_examples = sorted(step_examples, key=lambda e: len(e["input_ids"]))
        local_targets = torch.tensor(float(sum(n_targets(e) for e in step_examples)), device=acc.device)
        # The loss is per answer token of the whole step, all processes together; DDP averages the
        # processes' gradients, so each process scales its sum by num_processes / all targets.
        all_targets = acc.reduce(local_targets, "sum")
        scale = acc.num_processes / all_targets
        micro = [step_examples[i : i + config.micro_batch_size] for i in range(0, len(step_examples), config.micro_batch_size)]
        loss_sum = torch.zeros((), device=acc.device)
        for k, chunk in enumerate(micro):
            batch = {key: t.to(acc.device) for key, t in collate(chunk, self.pad_id).items()}
            # DDP all-reduces gradients only on the last micro-batch of the step.
            sync = acc.no_sync(self.model) if k < len(micro) - 1 else nullcontext()
            with sync, acc.autocast():
                chunk_loss = forward_sum(self.model, batch)
                acc.backward(chunk_loss * scale)
            loss_sum += chunk_loss.detach()
        if config.max_grad_norm > 0:
            acc.clip_grad_norm_(self.trainable, config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return (acc.reduce(loss_sum, "sum") / all_targets).item(), int(all_targets.item())


def _progress(main: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not main,
    )


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
    from accelerate import Accelerator
    from transformers import AutoTokenizer

    check_config(config)
    if not records:
        raise HarnessError("no training records")
    started = time.time()
    precision = resolve_precision(config.precision)
    accelerator = Accelerator(mixed_precision="bf16" if precision == "bf16" else "no")
    main = accelerator.is_main_process
    on_gpu = accelerator.device.type == "cuda"
    checkpointing = _flag(config.gradient_checkpointing, on_gpu, "gradient_checkpointing")
    torch.manual_seed(seed)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded, groups, dropped = encode_records(tokenizer, records, config.max_seq_len)
    sampler = GroupBatchSampler(
        groups, config.batch_size, seed, config.same_batch, accelerator.process_index, accelerator.num_processes
    )
    batches_per_epoch = len(sampler)
    if batches_per_epoch == 0:
        raise HarnessError(f"{len(sampler.groups)} groups are too few for {accelerator.num_processes} processes")
    steps_per_epoch = math.ceil(batches_per_epoch / config.grad_accum_steps)
    total_steps = config.max_steps if config.max_steps > 0 else steps_per_epoch * config.epochs

    model = load_lora_model(model_dir, config, precision, checkpointing)
    trainable = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    warmup = math.ceil(config.warmup_ratio * total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.lr_scheduler, warmup, total_steps))
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    run_step = StepRunner(model, optimizer, scheduler, accelerator, trainable, config, pad_id)

    progress = _progress(main)
    digest = ckpt.fingerprint(records, config, seed, accelerator.num_processes)
    state = (ckpt.load(checkpoint_dir, digest, model, optimizer, scheduler, accelerator, progress.console.print) if checkpoint_dir else None)
    resumed_from = state.step if state else 0
    state = state or LoopState()
    log_every = config.log_every or max(1, total_steps // 20)
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    if main:
        progress.console.print(
            f"LoRA r={config.lora_rank} on {len(encoded)} records ({len(sampler.groups)} groups, {dropped} dropped), "
            f"{total_steps} steps, {n_trainable:,} trainable parameters, {precision}"
            f"{', gradient checkpointing' if checkpointing else ''}, {device_name(accelerator)}"
            + (f"; resumed after step {resumed_from} from {checkpoint_dir}" if resumed_from else "")
        )
    loop_started = time.time()
    session_tokens = session_inputs = 0  # this session's, for the rates (a resumed run counts only its own steps)
    with progress:
        task = progress.add_task("train", total=total_steps, completed=state.step, loss="-")
        for (state.epoch, state.batch), step_batches in optimizer_steps(sampler, config.grad_accum_steps, total_steps, state):
            indices = [i for batch in step_batches for i in batch]
            step_examples = [encoded[i] for i in indices]
            step_inputs = sum(len(e["input_ids"]) for e in step_examples)
            loss, answer_tokens = run_step(step_examples)
            state.step += 1
            state.losses.append(loss)
            state.train_tokens += answer_tokens
            state.seen += len(indices) * accelerator.num_processes
            state.input_tokens += step_inputs
            session_tokens += answer_tokens
            session_inputs += step_inputs
            if on_step is not None:
                local_targets = sum(n_targets(e) for e in step_examples)
                on_step({"step": state.step, "loss": loss, "lr": scheduler.get_last_lr()[0], "answer_tokens": local_targets, "input_tokens": step_inputs, "time": time.time()})
            progress.update(task, advance=1, loss=f"{loss:.4f}")
            if main and (state.step % log_every == 0 or state.step == total_steps):
                progress.console.print(f"step {state.step}/{total_steps} loss {loss:.4f} lr {scheduler.get_last_lr()[0]:.2e}")
            if checkpoint_dir and config.checkpoint_every > 0 and state.step % config.checkpoint_every == 0 and state.step < total_steps:
                ckpt.save(checkpoint_dir, digest, state, model, optimizer, scheduler, accelerator)
    loop_s = time.time() - loop_started

    accelerator.wait_for_everyone()
    if main:
        save_adapter(accelerator.unwrap_model(model), tokenizer, adapter_dir)
    accelerator.wait_for_everyone()
    stats = _stats(state, resumed_from, steps_per_epoch, encoded, dropped, sampler, n_trainable, precision, checkpointing, accelerator)
    nproc = accelerator.num_processes
    stats["records_per_step"] = config.batch_size * config.grad_accum_steps * nproc  # the budget compared across runs
    stats["input_tokens"] = state.input_tokens * nproc  # prompt and answer tokens trained on, all processes
    stats["tokens_per_step"] = round(state.input_tokens * nproc / len(state.losses), 1)
    stats["split_groups"] = sampler.split_groups  # groups split across batches in the last epoch's order
    stats["train_wall_s"] = round(time.time() - started, 2)  # loading, training and saving ("wall_s" is the manifest's own field)
    stats["loop_s"] = round(loop_s, 2)  # the training loop alone (this session's steps)
    stats["train_tokens_per_s"] = round(session_tokens / loop_s, 1) if loop_s > 0 else None
    stats["input_tokens_per_s"] = round(session_inputs * accelerator.num_processes / loop_s, 1) if loop_s > 0 else None
    if on_gpu:
        stats["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated(accelerator.device) / 2**30, 2)
    return stats


def _stats(state: LoopState, resumed_from: int, steps_per_epoch: int, encoded: list[dict], dropped: int, sampler, n_trainable: int, precision: str, checkpointing: bool, accelerator) -> dict:
    losses = state.losses
    return {
        "steps": len(losses),
        "resumed_from_step": resumed_from,
        "epochs": round(len(losses) / steps_per_epoch, 3),
        "examples": len(encoded),
        "examples_dropped": dropped,
        "groups": len(sampler.groups),
        "examples_seen": state.seen,
        "train_tokens": state.train_tokens,  # answer tokens the loss counted, all processes
        "first_loss": round(losses[0], 5),
        "final_loss": round(losses[-1], 5),
        "mean_loss": round(sum(losses) / len(losses), 5),
        "losses": [round(x, 5) for x in losses],
        "trainable_params": n_trainable,
        "precision": precision,
        "gradient_checkpointing": checkpointing,
        "num_processes": accelerator.num_processes,
        "device": device_name(accelerator),
    }


class LoRATrainer(Trainer):
    """A trainer whose `train` is the shared loop; subclasses only write `build_dataset`."""

    def train(self, ctx: TrainContext, records: list[dict], adapter_dir: Path) -> dict:
        return train_lora(ctx.model_dir, records, adapter_dir, self.config, seed=ctx.seed, checkpoint_dir=ctx.checkpoint_dir)
