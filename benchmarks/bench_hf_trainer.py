"""Can `transformers.Trainer` carry our LoRA loop? The same records, model and update, two loops.

    python benchmarks/bench_hf_trainer.py --loop ours --model smollm2-135m --steps 8
    python benchmarks/bench_hf_trainer.py --loop hf   --model smollm2-135m --steps 8

`--loop hf` runs `transformers.Trainer` with what our loop needs and Trainer lacks: the
same-batch sampler (a `get_train_dataloader` override), the loss summed over answer tokens and
divided by the step's answer tokens (`compute_loss` with `num_items_in_batch`), and logits only
where an answer token is predicted. Both print answer tokens/s over the steps after `--warmup`
and the per-step losses, which must agree for the comparison to mean anything.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_train import synthetic_records  # noqa: E402


def run_ours(model_dir: Path, records: list[dict], config, seed: int) -> tuple[list[float], list[float], list[int]]:
    from trainers.lora import train_lora

    steps: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        stats = train_lora(model_dir, records, Path(tmp) / "adapter", config, seed=seed, on_step=steps.append)
    return stats["losses"], [s["time"] for s in steps], [s["answer_tokens"] for s in steps]


def run_hf(model_dir: Path, records: list[dict], config, seed: int) -> tuple[list[float], list[float], list[int]]:
    import torch
    from torch.utils.data import DataLoader
    from transformers import AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

    from trainers.encoding import collate
    from trainers.lora import encode_records
    from trainers.lora_model import forward_sum, load_lora_model
    from trainers.sampler import GroupBatchSampler

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded, groups, _ = encode_records(tokenizer, records, config.max_seq_len)
    sampler = GroupBatchSampler(groups, config.batch_size, seed, config.same_batch)
    model = load_lora_model(model_dir, config, "fp32", checkpointing=False)
    times: list[float] = []
    tokens: list[int] = []
    losses: list[float] = []

    class GroupedTrainer(Trainer):
        def get_train_dataloader(self):
            pad = tokenizer.pad_token_id or 0
            return DataLoader(encoded, batch_sampler=sampler, collate_fn=lambda rows: collate(rows, pad))

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss_sum = forward_sum(model, inputs)
            denominator = num_items_in_batch if num_items_in_batch is not None else (inputs["labels"][:, 1:] != -100).sum()
            losses.append(float(loss_sum.detach()))
            tokens.append(int((inputs["labels"][:, 1:] != -100).sum()))
            return loss_sum / denominator

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            times.append(time.time())

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, max_steps=config.max_steps, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
            lr_scheduler_type=config.lr_scheduler, warmup_steps=int(config.warmup_ratio * config.max_steps + 0.999),
            gradient_accumulation_steps=config.grad_accum_steps, max_grad_norm=config.max_grad_norm, optim="adamw_torch",
            logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=True, seed=seed, data_seed=seed,
            dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True,
        )
        GroupedTrainer(model=model, args=args, train_dataset=encoded, callbacks=[Clock()]).train()
    per_step = [sum(losses[i : i + config.grad_accum_steps]) for i in range(0, len(losses), config.grad_accum_steps)]
    step_tokens = [sum(tokens[i : i + config.grad_accum_steps]) for i in range(0, len(tokens), config.grad_accum_steps)]
    return [loss / n for loss, n in zip(per_step, step_tokens)], times, step_tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop", choices=["ours", "hf"], required=True)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--records", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from harness.core.models import resolve_model
    from trainers.config import TrainConfig

    model_dir = resolve_model(args.model)
    # One batch per step, no micro-batching, no dropout: the two loops must then give the same update.
    config = TrainConfig(
        max_steps=args.warmup + args.steps, max_seq_len=args.seq_len, batch_size=4, micro_batch_size=64,
        lora_dropout=0.0, warmup_ratio=0.0, lr_scheduler="constant", log_every=10**6,
    )
    records = synthetic_records(args.records, args.seq_len, 4, args.seed)
    losses, times, tokens = (run_ours if args.loop == "ours" else run_hf)(model_dir, records, config, args.seed)
    seconds = times[-1] - times[args.warmup - 1]
    print(json.dumps({
        "loop": args.loop,
        "answer_tokens_per_s": round(sum(tokens[args.warmup :]) / seconds, 1),
        "s_per_step": round(seconds / (len(times) - args.warmup), 3),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "losses": [round(x, 4) for x in losses],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
