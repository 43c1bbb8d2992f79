"""Padded vs packed micro-batches (`packing=false|true`): forward and backward time of the LoRA loop's
loss (trainers.lora_model.forward_sum) on the same micro-batches, in one process, A B A B.

    python benchmarks/bench_packing.py                      # SmolLM2-135M (built in), on this machine's device
    python benchmarks/bench_packing.py --model DIR --micro-batch 8 --rounds 5

Records are chat turns of uneven lengths (our choice: answers of 10 to 300 words, the spread of
self-distilled answers), sorted by length as the loop sorts a step. Each round times all the
micro-batches one way, then the other; prints each way's median round time, the median of the
rounds' packed/padded ratios, the pad share of the padded batches and the largest loss difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = "the dog runs to the house and the cat sees a big red tree near the water".split()
ANSWER_WORDS = (10, 25, 40, 60, 90, 120, 160, 200, 240, 300, 15, 70, 110, 180, 35, 260)


def records(n: int) -> list[list[dict]]:
    out = []
    for i in range(n):
        words = ANSWER_WORDS[i % len(ANSWER_WORDS)]
        answer = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(words))
        out.append([{"role": "user", "content": f"Question {i}: tell me about the dog."}, {"role": "assistant", "content": answer}])
    return out


def main(argv: list[str] | None = None) -> int:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.core.device import pick_device
    from harness.core.models import resolve_model
    from trainers.config import DEFAULT_TARGET_MODULES
    from trainers.encoding import collate, collate_packed, encode_chat
    from trainers.lora_model import forward_sum

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--batches", type=int, default=4, help="micro-batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="A B pairs after one warm-up pair")
    args = parser.parse_args(argv)

    device = pick_device()
    model_dir = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = sorted((encode_chat(tokenizer, r, 1024) for r in records(args.micro_batch * args.batches)), key=lambda e: len(e["input_ids"]))
    chunks = [encoded[i : i + args.micro_batch] for i in range(0, len(encoded), args.micro_batch)]
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=device.torch_dtype, use_safetensors=True).to(device.kind)
    base.config.use_cache = False
    model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules=DEFAULT_TARGET_MODULES, task_type="CAUSAL_LM"))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    ways = {"padded": lambda c: collate(c, pad), "packed": collate_packed}
    rounds: dict[str, list[float]] = {w: [] for w in ways}
    losses: dict[str, list[float]] = {w: [] for w in ways}
    for round_ in range(args.rounds + 1):  # round 0: warm-up
        for way, build in ways.items():
            spent = 0.0
            for chunk in chunks:
                batch = {k: t.to(device.kind) for k, t in build(chunk).items()}
                if device.on_gpu:
                    torch.cuda.synchronize()
                started = time.perf_counter()
                loss = forward_sum(model, batch)
                loss.backward()
                if device.on_gpu:
                    torch.cuda.synchronize()
                spent += time.perf_counter() - started
                losses[way].append(loss.item())
                model.zero_grad(set_to_none=True)
            if round_:
                rounds[way].append(spent)
    tokens = sum(len(e["input_ids"]) for e in encoded)
    padded_cells = sum(len(c) * max(len(e["input_ids"]) for e in c) for c in chunks)
    worst = max(abs(a - b) / abs(b) for a, b in zip(losses["packed"], losses["padded"]))
    ratios = [a / b for a, b in zip(rounds["packed"], rounds["padded"])]
    print(f"{args.model} on {device.kind} ({device.dtype}, {torch.get_num_threads()} threads): {len(chunks)} micro-batches "
          f"of {args.micro_batch} records, {tokens} tokens, pads {1 - tokens / padded_cells:.0%} of the padded cells")
    for way in ways:
        print(f"  {way}: median {statistics.median(rounds[way]):.2f} s per round (min {min(rounds[way]):.2f}, "
              f"max {max(rounds[way]):.2f}, {args.rounds} rounds), {tokens / statistics.median(rounds[way]):.0f} tokens/s")
    print(f"  packed / padded, round by round: median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, "
          f"max {max(ratios):.2f}); largest relative loss difference {worst:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
