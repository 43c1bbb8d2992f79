"""A tiny random NLLB-shaped model (M2M100ForConditionalGeneration) with a locally trained NLLB tokenizer.

`build_tiny_nllb(path)` writes an HF safetensors folder that `AutoModelForSeq2SeqLM` and the
CTranslate2 converter load: 2 encoder and 2 decoder layers, d_model 32, the NLLB tokenizer class
(FLORES-200 language codes as special tokens) over a small BPE trained on the shipped smoke data.
Offline, a few seconds; deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

from tiny_model import _corpus

NLLB_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def build_nllb_tokenizer(vocab_size: int = 600, total_size: int = 0):
    """BPE pieces, then the 202 FLORES-200 language codes; `total_size`: filler pieces before the codes
    bring the whole vocabulary to this size (a benchmark's NLLB-sized output layer)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import NllbTokenizer
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=NLLB_SPECIALS, show_progress=False)
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    merges = [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]
    vocab = bpe.get_vocab()
    vocab.update({f"<filler{i}>": i for i in range(len(vocab), total_size - len(FAIRSEQ_LANGUAGE_CODES))})
    return NllbTokenizer(vocab=vocab, merges=merges)


def build_tiny_nllb(path: Path | str, seed: int = 0, **shape) -> Path:
    """Write the tiny model into `path` (created) and return it; `shape`: M2M100Config fields that
    replace the tiny ones (benchmarks build NLLB-600M's shape with them)."""
    import torch
    from transformers import GenerationConfig, M2M100Config, M2M100ForConditionalGeneration

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_nllb_tokenizer(total_size=shape.get("vocab_size", 0))
    tiny = dict(
        vocab_size=len(tokenizer),
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=256,
        scale_embedding=False,
        init_std=1.0,  # large random weights: greedy outputs vary with the input instead of repeating one token
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    config = M2M100Config(**{**tiny, **shape})
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


if __name__ == "__main__":
    import sys

    print(build_tiny_nllb(sys.argv[1] if len(sys.argv) > 1 else "tiny-nllb"))
