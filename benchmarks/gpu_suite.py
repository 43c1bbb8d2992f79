"""The GPU measurements of benchmarks/RESULTS.md, in one process: LoRA training MFU, log-likelihood
scoring throughput (lm-eval's HFLM against our context-once scorer), and NLLB-shaped translation
throughput through HF `generate`.

Models are randomly initialised at the real shapes (LLaMA-2-7B, SmolLM2-135M, NLLB-200-600M): the
Hub is not reachable from the device machine, and throughput does not depend on the weights'
values, only on their shapes and on how many tokens are generated (fixed here).

    python benchmarks/gpu_suite.py --out results/ --tokenizer path/to/smollm2-tokenizer-folder
    python benchmarks/gpu_suite.py --tiny ...   # a CPU dry run at toy shapes: checks the script, measures nothing

Each part writes <out>/<part>.json and a failing part does not stop the others.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

# Vendor figure used for MFU: H100/H200 SXM dense BF16 (no sparsity), 989.4 TFLOP/s.
PEAK_BF16_TFLOPS = 989.4

LLAMA2_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=32, max_position_embeddings=4096, rms_norm_eps=1e-5)
SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                    num_key_value_heads=3, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True)
TOY_LLAMA = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, max_position_embeddings=1024, rms_norm_eps=1e-5)
NLLB_600M = dict(d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
                 decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, vocab_size=256206,
                 max_position_embeddings=1024, scale_embedding=True)
TOY_NLLB = dict(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=1000, max_position_embeddings=256, scale_embedding=True)


def build_llama(shape: dict, vocab: int, tokenizer_dir: Path, out: Path, device: str) -> Path:
    """A randomly initialised Llama of `shape`, saved as safetensors (bf16 on GPU) with the given tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if out.exists():
        return out
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = LlamaConfig(vocab_size=vocab, bos_token_id=1, eos_token_id=2, **shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(out, safe_serialization=True)
    for f in tokenizer_dir.iterdir():
        if f.is_file() and f.name != "config.json":
            shutil.copy(f, out / f.name)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    return out


def matmul_params(model_dir: Path) -> int:
    """Parameters that take part in a matrix product per token (every Linear, the LM head included)."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    kv = c.hidden_size // c.num_attention_heads * c.num_key_value_heads
    per_layer = c.hidden_size * (2 * c.hidden_size + 2 * kv) + 3 * c.hidden_size * c.intermediate_size
    return c.num_hidden_layers * per_layer + c.hidden_size * c.vocab_size


def part_train(model_dir: Path, args, label: str, sets: list[str]) -> dict:
    import bench_train

    out = args.out / f"train_{label}.json"
    bench_train.main(["--model", str(model_dir), "--records", str(args.train_records), "--seq-len", str(args.seq_len),
                      "--steps", str(args.train_steps), "--warmup", "2", "--json", str(out), "--set", *sets])
    result = json.loads(out.read_text())
    n = matmul_params(model_dir)
    # LoRA with frozen weights: forward 2N and backward (input gradients only) 2N FLOPs per token; the
    # recomputation of gradient checkpointing is hardware work, not model work, so it is not counted.
    model_tflops = 4 * n * result["input_tokens_per_s"] / 1e12
    result.update(matmul_params=n, model_tflops_per_s=round(model_tflops, 1),
                  mfu_vs_989=round(model_tflops / PEAK_BF16_TFLOPS, 3))
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def scoring_requests(n_items: int):
    """SIB-200-like items (a text, 7 multi-token labels) and Belebele-like ones (a long passage, A-D)."""
    import random

    from lm_eval.api.instance import Instance

    rng = random.Random(0)
    words = "the a cat dog water house tree river city small large red blue green people language world".split()
    labels = [" science/technology", " travel", " politics", " sports", " health", " entertainment", " geography"]
    pairs = []
    for _ in range(n_items):
        text = " ".join(rng.choice(words) for _ in range(60))
        pairs += [(f"Classify the topic.\nText: {text}\nTopic:", label) for label in labels]
        passage = " ".join(rng.choice(words) for _ in range(300))
        pairs += [(f"P: {passage}\nQ: which one?\nA: x\nB: y\nC: z\nD: w\nAnswer:", f" {c}") for c in "ABCD"]
    return [Instance("loglikelihood", {}, pair, idx) for idx, pair in enumerate(pairs)]


def part_scoring(model_dir: Path, args, label: str, dtype: str = "bfloat16") -> dict:
    import torch
    from lm_eval.models.huggingface import HFLM

    from harness.engines.scoring import SharedContextHFLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    common = dict(pretrained=str(model_dir), device=device, dtype=dtype if device == "cuda" else "float32",
                  batch_size=args.score_batch, max_length=2048)
    result: dict = {"model": label, "device": device, "dtype": common["dtype"], "batch_size": args.score_batch}
    requests = scoring_requests(args.score_items)
    answers, models, seconds = {}, {}, {}
    for name, cls in (("lm_eval_HFLM", HFLM), ("harness_SharedContextHFLM", SharedContextHFLM)):
        models[name] = cls(**common)
        models[name].loglikelihood(requests[: 4 * 11], disable_tqdm=True)  # warm-up: kernels, allocator
        seconds[name] = []
    for _ in range(args.rounds):  # the two scorers alternate, so drifts in clocks or load hit both
        for name, lm in models.items():
            if hasattr(lm, "counts"):
                lm.counts = type(lm.counts)()  # count one measured round only
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            answers[name] = lm.loglikelihood(requests, disable_tqdm=True)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds[name].append(time.perf_counter() - start)
    for name, lm in models.items():
        median = statistics.median(seconds[name])
        result[name] = {"requests": len(requests), "seconds_median": round(median, 3),
                        "seconds_all": [round(x, 3) for x in seconds[name]], "requests_per_s": round(len(requests) / median, 1)}
        if hasattr(lm, "counts"):
            c = lm.counts
            result[name].update(tokens_unique=c.tokens_unique, tokens_processed=c.tokens_processed,
                                tokens_per_pair=c.tokens_per_pair, unique_tokens_per_s=round(c.tokens_unique / median, 1))
    del models
    if device == "cuda":
        torch.cuda.empty_cache()
    a, b = answers["lm_eval_HFLM"], answers["harness_SharedContextHFLM"]
    result["max_abs_loglik_diff"] = max(abs(x[0] - y[0]) for x, y in zip(a, b))
    result["same_argmax_per_item_share"] = _same_choice_share(a, b)
    result["speedup_shared_vs_lm_eval"] = round(result["lm_eval_HFLM"]["seconds_median"] / result["harness_SharedContextHFLM"]["seconds_median"], 2)
    (args.out / f"scoring_{label}_{common['dtype']}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _same_choice_share(a: list, b: list) -> float:
    """Share of items whose highest-scoring choice is the same under both scorers (7 then 4 per item)."""
    same = total = 0
    i = 0
    while i < len(a):
        for width in (7, 4):
            pa = max(range(width), key=lambda k: a[i + k][0])
            pb = max(range(width), key=lambda k: b[i + k][0])
            same += pa == pb
            total += 1
            i += width
    return round(same / total, 3)


def part_translation(args) -> dict:
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    device = "cuda" if torch.cuda.is_available() else "cpu"
    shape = TOY_NLLB if args.tiny else NLLB_600M
    config = M2M100Config(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, **shape)
    torch.manual_seed(0)
    with torch.device(device):
        model = M2M100ForConditionalGeneration(config).to(torch.float16 if device == "cuda" else torch.float32).eval()
    result: dict = {"model": "NLLB-200-600M shape, random weights" if not args.tiny else "toy", "device": device,
                    "input_tokens": args.src_len, "output_tokens": args.out_len, "dtype": str(model.dtype)}
    for batch, beams in [(b, k) for k in args.beams for b in args.translate_batches]:
        ids = torch.randint(3, config.vocab_size, (batch, args.src_len), device=device)
        kwargs = dict(max_new_tokens=args.out_len, min_new_tokens=args.out_len, do_sample=False, num_beams=beams)
        with torch.no_grad():
            model.generate(ids, **kwargs)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            rounds = 3
            for _ in range(rounds):
                model.generate(ids, **kwargs)
            if device == "cuda":
                torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / rounds
        result[f"batch_{batch}_beams_{beams}"] = {"s_per_batch": round(seconds, 3), "sentences_per_s": round(batch / seconds, 1),
                                    "output_tokens_per_s": round(batch * args.out_len / seconds, 1)}
    (args.out / "translation.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def run_part(name: str, fn, *a) -> None:
    start = time.perf_counter()
    try:
        result = fn(*a)
        print(f"== {name} ({time.perf_counter() - start:.0f} s)\n{json.dumps(result, indent=2)}", flush=True)
    except Exception:
        print(f"== {name} FAILED after {time.perf_counter() - start:.0f} s", flush=True)
        traceback.print_exc()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tokenizer", type=Path, required=True, help="folder with SmolLM2's tokenizer files")
    p.add_argument("--models-dir", type=Path, default=Path("/dev/shm/gpu_suite_models"))
    p.add_argument("--tiny", action="store_true", help="toy shapes (a CPU dry run of the script)")
    p.add_argument("--parts", default="train,scoring,translation")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--train-records", type=int, default=128)
    p.add_argument("--train-steps", type=int, default=6)
    p.add_argument("--score-items", type=int, default=64)
    p.add_argument("--score-batch", type=int, default=32)
    p.add_argument("--src-len", type=int, default=32)
    p.add_argument("--out-len", type=int, default=48)
    p.add_argument("--translate-batches", type=lambda s: [int(x) for x in s.split(",")], default=[16, 64, 256])
    p.add_argument("--beams", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4], help="1: greedy; 4: our NLLB default")
    p.add_argument("--rounds", type=int, default=3, help="timed scoring rounds per scorer (median reported)")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    vocab = 49152  # SmolLM2's tokenizer, used with every Llama shape here
    parts = set(args.parts.split(","))
    big = build_llama(TOY_LLAMA if args.tiny else LLAMA2_7B, vocab, args.tokenizer, args.models_dir / "llama-7b-shape", device)
    small = build_llama(TOY_LLAMA if args.tiny else SMOLLM2_135M, vocab, args.tokenizer, args.models_dir / "smollm2-135m-shape", device)
    if "train" in parts:
        # gradient_checkpointing=auto decides by trainers.recompute's memory estimate: off here on an 80 GB GPU.
        run_part("train 7B-shape, checkpointing auto", part_train, big, args, "7b_auto",
                 ["batch_size=16", "micro_batch_size=8", "gradient_checkpointing=auto", "precision=auto"])
        run_part("train 7B-shape, no checkpointing", part_train, big, args, "7b_nockpt",
                 ["batch_size=16", "micro_batch_size=8", "gradient_checkpointing=false", "precision=auto"])
        # liger-kernel's fused kernels (kernels=liger), against 7b_nockpt: same records, seed and micro-batches
        run_part("train 7B-shape, liger kernels", part_train, big, args, "7b_liger",
                 ["batch_size=16", "micro_batch_size=8", "gradient_checkpointing=false", "precision=auto", "kernels=liger"])
        run_part("train 7B-shape, gradient checkpointing", part_train, big, args, "7b_ckpt",
                 ["batch_size=16", "micro_batch_size=16", "gradient_checkpointing=true", "precision=auto"])
        run_part("train 135M-shape", part_train, small, args, "135m",
                 ["batch_size=16", "micro_batch_size=16", "gradient_checkpointing=false", "precision=auto"])
    if "scoring" in parts:
        run_part("scoring 135M-shape", part_scoring, small, args, "135m")
        run_part("scoring 135M-shape, float32", part_scoring, small, args, "135m", "float32")
        run_part("scoring 7B-shape", part_scoring, big, args, "7b")
    if "translation" in parts:
        run_part("translation NLLB-600M-shape", part_translation, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
