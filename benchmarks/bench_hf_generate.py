"""HF generation as self-distillation, LLM translation and the judge use it: `HFEngine.generate_chat`, greedy.

Run by hand (not by pytest). One process, one model load, then `--conversations` chats of mixed lengths
(a few words to a paragraph) answered with `--max-new-tokens`; prints items/s and new tokens/s of the
generation alone (the load is timed apart).

    python benchmarks/bench_hf_generate.py --model smollm2-135m --conversations 24 --max-new-tokens 32

A/B against another checkout of the project (the same venv): HARNESS_ROOT=/path/to/other/checkout puts
that checkout's `harness` first on the path; `"harness": ...` in the output says which one ran.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("HARNESS_ROOT", str(ROOT)))
sys.path.insert(1, str(Path(__file__).resolve().parent))

from emit import emit  # noqa: E402

WORDS = ("the a cat dog water house tree river mountain city small large red blue green quickly slowly "
         "because after before always never people language world morning evening answer question").split()


def conversations(n: int, seed: int) -> list[list[dict]]:
    """Questions of 3 to 120 words: the length spread that sorting by length is for."""
    rng = random.Random(seed)
    chats = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.choice([3, 8, 20, 40, 80, 120])))
        chats.append([{"role": "user", "content": f"Explain this in one sentence: {words}."}])
    return chats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--conversations", type=int, default=24)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    import harness
    from harness.core.models import resolve_model
    from harness.engines import EngineSettings
    from harness.engines.hf_engine import HFEngine

    model_dir = resolve_model(args.model)
    chats = conversations(args.conversations, args.seed)
    started = time.perf_counter()
    answers = HFEngine().generate_chat(model_dir, chats, args.max_new_tokens, EngineSettings())
    seconds = time.perf_counter() - started  # includes the load: both versions load once, the same way

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    new_tokens = sum(len(tokenizer(a.text, add_special_tokens=False)["input_ids"]) for a in answers)
    emit({
        "harness": str(Path(harness.__file__).resolve().parent.parent),
        "model": args.model, "conversations": len(chats), "max_new_tokens": args.max_new_tokens,
        "seconds_with_load": round(seconds, 2), "items_per_s": round(len(chats) / seconds, 3),
        "new_tokens": new_tokens, "truncated": sum(a.truncated for a in answers),
        "answers_sha": hashlib.sha256("\n".join(a.text for a in answers).encode()).hexdigest()[:12],
    }, args.out)


if __name__ == "__main__":
    main()
