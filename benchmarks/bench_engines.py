"""vLLM vs HF transformers, tokens per second per request type, through the harness's own lm-eval models.

Run by hand (not by pytest); heavy (a vLLM process is ~3 GB and minutes to start on a CPU):

    python benchmarks/bench_engines.py --model smollm2-135m --items 8 --generations 8 --pairs 1

Request types, as `harness eval` serves them (harness.evaluation.evaluate.build_lm):
  loglikelihood         multiple-choice items, `--items` contexts x 4 choices, base model
  generation            `--generations` prompts, greedy, `--max-gen-toks` new tokens, base model
  lora_generation       the same prompts with a LoRA adapter served as a LoRA (vLLM enable_lora, HF + PEFT)
  merged_generation     the same prompts with the adapter merged into a copy of the weights (the CPU default)
  merged_loglikelihood  the same items with the adapter merged into the weights (the default for
                        vLLM multiple choice, and for every request type on CPU)
The adapter is random (rank `--lora-rank`, lora_B non-zero so that it changes the outputs).

Each engine runs in its own process (`--worker`), the engines in turn (hf vllm hf vllm ...), so
load changes hit both. Tokens: log-likelihood counts context + continuation tokens per request
(what an engine without prefix reuse runs; the HF scorer runs each context once); generation counts
the new tokens. Model loading ("load_*_s") and one warm-up request per type are left out of the rates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emit import emit  # benchmarks/ is on the path: scripts run as python benchmarks/<name>.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ENGINE_ORDER = ("hf", "vllm")
WORDS = (
    "the a cat dog water house tree river mountain city small large red blue green quickly slowly "
    "because after before always never people language world morning evening answer question"
).split()


def passages(n: int, words: int, seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(n)]


def make_random_adapter(model_dir: Path, out: Path, rank: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    torch.manual_seed(0)  # the same adapter on every run (lora_A is drawn here)
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:  # zero by default: the adapter would change nothing
                param.normal_(0, 0.02)
    model.save_pretrained(out, safe_serialization=True)
    return out


def timed(call) -> tuple[object, float]:
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def run_worker(engine: str, model_dir: Path, adapter: Path, args: argparse.Namespace) -> dict:
    """Every request type on one engine; returns tokens, seconds and tokens/s per type."""
    from lm_eval.api.instance import Instance
    from transformers import AutoTokenizer

    from harness.engines import EngineSettings, Route
    from harness.evaluation.evaluate import EvalRequest, build_lm

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    contexts = [f"{p}\nQuestion: what is it about?\nAnswer:" for p in passages(args.items, 60, seed=1)]
    choices = [" the river", " a small dog", " people and language", " the blue morning"]
    scoring = [Instance("loglikelihood", {}, (c, ch), i) for i, (c, ch) in enumerate((c, ch) for c in contexts for ch in choices)]
    scoring_tokens = sum(len(tokenizer(c + ch)["input_ids"]) for c, ch in (r.args for r in scoring))
    # No stop string but the end token, and a prompt that a story continues: every answer runs long.
    gen_kwargs = {"until": [], "max_gen_toks": args.max_gen_toks, "do_sample": False}
    story = " Once upon a time, in a small city by the river,"
    prompts = [Instance("generate_until", {}, (p + story, dict(gen_kwargs)), i) for i, p in enumerate(passages(args.generations, 30, seed=2))]

    def new_tokens(texts: list[str]) -> int:
        # Re-tokenized output: exact for ordinary text; a random model's odd bytes can re-tokenize longer.
        return sum(min(len(tokenizer(t, add_special_tokens=False)["input_ids"]), args.max_gen_toks) for t in texts)

    plan = [  # (request type, how the adapter is served, method, requests)
        ("loglikelihood", "none", "loglikelihood", scoring),
        ("generation", "none", "generate_until", prompts),
        ("lora_generation", "lora", "generate_until", prompts),
        ("merged_generation", "merged", "generate_until", prompts),
        ("merged_loglikelihood", "merged", "loglikelihood", scoring),
    ]
    results: dict[str, dict] = {}
    models: dict[str, object] = {}
    for kind, serving, method, requests in plan:
        if serving not in models:
            req = EvalRequest(model_dir=model_dir, tasks=[], out_dir=Path(tempfile.mkdtemp()), adapter=None if serving == "none" else adapter,
                              engine=engine, settings=EngineSettings(max_model_len=1024))
            models[serving], load_s = timed(lambda: build_lm(req, Route(engine, serving)))
            results[f"load_{serving}_s"] = round(load_s, 1)
        getattr(models[serving], method)(requests[:1])  # warm-up: first-call allocations and kernel choices
        outputs, seconds = timed(lambda: getattr(models[serving], method)(requests))
        tokens = scoring_tokens if method == "loglikelihood" else new_tokens(outputs)
        results[kind] = {"requests": len(requests), "tokens": tokens, "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}
        if method == "generate_until":
            results[kind]["first_output"] = outputs[0][:80]
        print(json.dumps({engine: {kind: results[kind]}}), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="built-in name, local HF folder or hub id")
    parser.add_argument("--items", type=int, default=8, help="multiple-choice items (x 4 choices)")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-gen-toks", type=int, default=64)
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument("--pairs", type=int, default=1, help="rounds of (hf, vllm)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--worker", choices=ENGINE_ORDER, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--adapter", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = run_worker(args.worker, args.model_dir, args.adapter, args)
        args.json.write_text(json.dumps(result) + "\n")
        return 0

    from harness.core.models import resolve_model

    model_dir = resolve_model(args.model)
    runs: dict[str, list[dict]] = {engine: [] for engine in ENGINE_ORDER}
    with tempfile.TemporaryDirectory() as tmp:
        adapter = make_random_adapter(model_dir, Path(tmp) / "adapter", args.lora_rank)
        # The merged weights are built into this run's own folder, not the user's cache.
        env = {**os.environ, "SDRRL_HOME": tmp, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        for pair in range(args.pairs):
            for engine in ENGINE_ORDER:
                out = Path(tmp) / f"{engine}-{pair}.json"
                worker = [sys.executable, __file__, "--worker", engine, "--model-dir", str(model_dir), "--adapter", str(adapter), "--json", str(out),
                          "--items", str(args.items), "--generations", str(args.generations), "--max-gen-toks", str(args.max_gen_toks)]
                subprocess.run(worker, env=env, check=True)
                runs[engine].append(json.loads(out.read_text()))

    kinds = ("loglikelihood", "generation", "lora_generation", "merged_generation", "merged_loglikelihood")
    median = {engine: {kind: statistics.median(r[kind]["tokens_per_s"] for r in runs[engine]) for kind in kinds} for engine in ENGINE_ORDER}
    summary = {
        "model": args.model,
        "items": args.items,
        "generations": args.generations,
        "max_gen_toks": args.max_gen_toks,
        "pairs": args.pairs,
        "tokens_per_s_median": median,
        "vllm_over_hf": {kind: round(median["vllm"][kind] / median["hf"][kind], 2) for kind in kinds},
        "runs": runs,
    }
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
