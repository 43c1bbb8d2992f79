"""Translation throughput per translator on the same sentences, and agreement with transformers.

Run by hand (not by pytest):

    python benchmarks/bench_translate.py                              # a tiny random NLLB-shaped model
    python benchmarks/bench_translate.py --shape nllb-600m --sentences 32 --max-length 48   # random, NLLB-600M's shape
    python benchmarks/bench_translate.py --model /path/to/nllb-200-distilled-600M --beams 4 --rounds 3

Translators: `lexicon` (word by word, en->fr), `hf` (NLLBTranslator: transformers `generate`),
`ct2-int8` and `ct2-float32` (CT2NLLBTranslator; float32 separates the engine from the
quantization). Each is loaded and warmed up once, then timed in rounds, the translators in turn
(A B C D A B C D ...), so a change in the machine's load hits all of them; sentences/s are medians
over rounds. BLEU and chrF (sacreBLEU) of each NLLB backend's output against the `hf` output, and
the share of identical sentences, say how far the fast paths drift from transformers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from emit import emit  # benchmarks/ is on the path: scripts run as python benchmarks/<name>.py

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


# facebook/nllb-200-distilled-600M's config.json: the cost of a step without its trained weights.
NLLB_600M_SHAPE = dict(
    vocab_size=256206, d_model=1024, encoder_layers=12, decoder_layers=12, encoder_attention_heads=16,
    decoder_attention_heads=16, encoder_ffn_dim=4096, decoder_ffn_dim=4096, max_position_embeddings=1024,
    scale_embedding=True, init_std=0.02,
)
SHAPES = {"tiny": {}, "nllb-600m": NLLB_600M_SHAPE}


def english_sentences(n: int) -> list[str]:
    """The English sides of the shipped OPUS smoke pairs, repeated to `n` sentences."""
    seen: dict[str, None] = {}
    for path in sorted((ROOT / "trainers" / "data" / "opus_smoke").glob("en-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            seen.setdefault(json.loads(line)["translation"]["en"], None)
    unique = list(seen)
    return [unique[i % len(unique)] for i in range(n)]


def build_translators(model: str, beams: int, max_length: int, threads: int) -> dict:
    from trainers.ct2_translator import CT2NLLBTranslator
    from trainers.translators import LexiconTranslator, NLLBTranslator

    def ct2(compute_type: str) -> CT2NLLBTranslator:
        return CT2NLLBTranslator(model, device="cpu", compute_type=compute_type, beam_size=beams, max_length=max_length, threads=threads)

    return {
        "lexicon": LexiconTranslator(),
        "hf": NLLBTranslator(model, batch_size=16, num_beams=beams, max_length=max_length),
        "ct2-int8": ct2("int8"),
        "ct2-float32": ct2("float32"),
    }


def agreement(outputs: list[str], reference: list[str]) -> dict:
    import sacrebleu

    return {
        "bleu_vs_hf": round(sacrebleu.corpus_bleu(outputs, [reference]).score, 2),
        "chrf_vs_hf": round(sacrebleu.corpus_chrf(outputs, [reference]).score, 2),
        "identical_share": round(sum(a == b for a, b in zip(outputs, reference)) / len(reference), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="NLLB folder or hub id (default: a random model of --shape)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="without --model: the random model's shape")
    parser.add_argument("--sentences", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--beams", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and CTranslate2 alike")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)

    import torch

    from harness.core.langs import LANGUAGES

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if not model:
            from tiny_nllb import build_tiny_nllb

            model = str(build_tiny_nllb(Path(tmp) / f"random-{args.shape}", **SHAPES[args.shape]))
            os.environ["SDRRL_HOME"] = tmp  # its conversions go with it
        sentences = english_sentences(args.sentences)
        src, tgt = LANGUAGES["en"], LANGUAGES["fr"]
        translators = build_translators(model, args.beams, args.max_length, args.threads)
        for translator in translators.values():  # load, convert (first time), warm up
            translator.translate(sentences[:4], src, tgt)
        seconds: dict[str, list[float]] = {name: [] for name in translators}
        outputs: dict[str, list[str]] = {}
        for _ in range(args.rounds):
            for name, translator in translators.items():
                start = time.perf_counter()
                outputs[name] = translator.translate(sentences, src, tgt)
                seconds[name].append(time.perf_counter() - start)

    rates = {name: len(sentences) / statistics.median(times) for name, times in seconds.items()}
    summary = {
        "model": args.model or f"random, shape {args.shape} (tests/tiny_nllb.py)",
        "sentences": len(sentences),
        "rounds": args.rounds,
        "beams": args.beams,
        "max_length": args.max_length,
        "threads": args.threads,
        "sentences_per_s": {name: float(f"{rate:.3g}") for name, rate in rates.items()},
        "seconds_per_round": {name: [round(t, 2) for t in times] for name, times in seconds.items()},
        "ct2_int8_over_hf": round(rates["ct2-int8"] / rates["hf"], 2),
        "ct2_float32_over_hf": round(rates["ct2-float32"] / rates["hf"], 2),
        "agreement": {name: agreement(outputs[name], outputs["hf"]) for name in ("ct2-int8", "ct2-float32")},
        "versions": {"torch": torch.__version__, **_versions("transformers", "ctranslate2", "sacrebleu")},
    }
    emit(summary, args.json)
    return 0


def _versions(*packages: str) -> dict[str, str]:
    import importlib.metadata

    return {name: importlib.metadata.version(name) for name in packages}


if __name__ == "__main__":
    sys.exit(main())
