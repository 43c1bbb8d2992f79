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


def build_tiny_nllb(path: Path | str, seed: int = 0, eos_pull: float = 0.0, **shape) -> Path:
    """Write the tiny model into `path` (created) and return it; `shape`: M2M100Config fields that
    replace the tiny ones (benchmarks build NLLB-600M's shape with them). `eos_pull` > 0 raises the
    end-of-sentence logit by that much at every decoding step, so that translations end after a few
    tokens: the random model otherwise writes up to the translator's 512 tokens, and a pipeline run
    through it spends a minute translating a dozen sentences (20 gives outputs of 0-20 characters)."""
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
    if eos_pull:
        # A constant direction: the decoder's last layer norm adds it to every output, and the EOS
        # embedding (tied to the output layer) gains eos_pull along it. A layer norm's output has zero
        # mean over its dimensions, so it is orthogonal to that direction: the EOS logit gains eos_pull
        # at every step, every other logit a fixed amount of its own (its row's part along it).
        direction = torch.ones(config.d_model) / config.d_model**0.5
        with torch.no_grad():
            model.model.decoder.layer_norm.bias.copy_(direction)
            model.model.shared.weight[tokenizer.eos_token_id] += eos_pull * direction
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


BASELINE_EOS_PULL = 20.0  # the tiny NLLB of the tiny-model baselines (baselines/record_tiny.sh)


def build_baseline_models(folder: Path | str, tiny_llama: Path | None = None) -> Path:
    """The models the tiny-model baselines' commands name, as `folder`/tiny-llama and `folder`/tiny-nllb
    (the commands run in `folder`); returns `folder`. `tiny_llama`: a build_tiny_llama folder made
    already (the tests' session one), linked instead of built again."""
    from tiny_model import build_tiny_llama

    folder = Path(folder)
    if tiny_llama is None:
        build_tiny_llama(folder / "tiny-llama")
    else:
        (folder / "tiny-llama").symlink_to(Path(tiny_llama).resolve(), target_is_directory=True)
    build_tiny_nllb(folder / "tiny-nllb", eos_pull=BASELINE_EOS_PULL)
    return folder


if __name__ == "__main__":
    import sys

    print(build_tiny_nllb(sys.argv[1] if len(sys.argv) > 1 else "tiny-nllb"))
