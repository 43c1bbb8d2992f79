"""Training throughput of the shared LoRA loop: answer tokens/s, all tokens/s, peak memory.

Run by hand (not by pytest):

    python benchmarks/bench_train.py --model smollm2-135m --steps 10
    python benchmarks/bench_train.py --model /path/to/hf-folder --records 64 --seq-len 512 --set micro_batch_size=4
    accelerate launch benchmarks/bench_train.py --model meta-llama/Llama-2-7b-chat-hf   # several GPUs (DDP)

Records are synthetic: a question of about `--seq-len / 4` tokens and an answer filling the rest,
grouped `--group-size` to a group as SDRRL's transfer set is. The first `--warmup` steps (allocation,
kernel selection) are left out of the rates, as are loading the model and saving the adapter.
"""

from __future__ import annotations

import dataclasses
import argparse
import random
import resource
import sys
import tempfile
from pathlib import Path

from emit import emit  # benchmarks/ is on the path: scripts run as python benchmarks/<name>.py

WORDS = (
    "the a cat dog water house tree river mountain city small large red blue green quickly slowly "
    "because after before always never people language world morning evening answer question"
).split()


def synthetic_records(n: int, seq_len: int, group_size: int, seed: int) -> list[dict]:
    rng = random.Random(seed)

    def text(n_words: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n_words))

    # Roughly one token per word for common English words in BPE vocabularies.
    q_words, a_words = max(4, seq_len // 4), max(4, seq_len - seq_len // 4 - 32)
    return [
        {
            "id": f"b{i}",
            "group": f"g{i // group_size}",
            "kind": "bench",
            "lang": "en",
            "messages": [{"role": "user", "content": text(q_words)}, {"role": "assistant", "content": text(a_words)}],
        }
        for i in range(n)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="built-in name, local HF folder or hub id")
    parser.add_argument("--records", type=int, default=32)
    parser.add_argument("--group-size", type=int, default=4, help="records per group (same batch)")
    parser.add_argument("--seq-len", type=int, default=256, help="approximate tokens per record (also max_seq_len)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of the rates")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="TrainConfig overrides, e.g. lora_rank=64 micro_batch_size=4")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)

    import torch

    from harness.core.models import resolve_model
    from harness.trainer_api import build_config
    from trainers.encoding import encode_chat
    from trainers.sdrrl import SDRRLTrainer

    model_dir = resolve_model(args.model)
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides.setdefault("max_seq_len", str(args.seq_len))
    config = build_config(SDRRLTrainer, overrides).train  # any LoRA trainer's loop settings (trainers.config.TrainConfig)
    records = synthetic_records(args.records, args.seq_len, args.group_size, args.seed)

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    lengths = [len(e["input_ids"]) for e in (encode_chat(tokenizer, r["messages"], config.max_seq_len) for r in records) if e]

    from trainers.lora import train_lora

    steps: list[dict] = []
    cfg = dataclasses.replace(config, max_steps=args.warmup + args.steps, log_every=args.warmup + args.steps)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        stats = train_lora(model_dir, records, Path(tmp) / "adapter", cfg, seed=args.seed, on_step=steps.append)

    # Steady state: from the end of the last warm-up step to the end of the last step.
    measured = steps[args.warmup :]
    start = steps[args.warmup - 1]["time"] if args.warmup > 0 else steps[0]["time"] - (steps[1]["time"] - steps[0]["time"] if len(steps) > 1 else 0)
    seconds = measured[-1]["time"] - start
    n = stats["num_processes"]
    summary = {
        "model": str(args.model),
        "device": stats["device"],
        "precision": stats["precision"],
        "gradient_checkpointing": stats["gradient_checkpointing"],
        "kernels": stats["kernels"],
        "packing": config.packing,
        "lora_rank": config.lora_rank,
        "micro_batch_size": config.micro_batch_size,
        "records": len(records),
        "mean_record_tokens": round(sum(lengths) / len(lengths), 1),
        "warmup_steps": args.warmup,
        "measured_steps": len(measured),
        "s_per_step": round(seconds / len(measured), 3),
        "input_tokens_per_s": round(sum(s["input_tokens"] for s in measured) * n / seconds, 1),
        "answer_tokens_per_s": round(sum(s["answer_tokens"] for s in measured) * n / seconds, 1),
        "peak_gpu_mem_gb": stats.get("peak_gpu_mem_gb"),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "wall_s_including_load_and_save": stats["train_wall_s"],
        "final_loss": stats["final_loss"],
        "losses": stats["losses"],  # every step's: settings that should not change the loss are compared on them
    }
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
