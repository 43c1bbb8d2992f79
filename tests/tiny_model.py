"""A tiny random Llama with a locally trained byte-level BPE tokenizer and a ChatML chat template.

`build_tiny_llama(path)` writes an HF safetensors folder (config, model.safetensors, tokenizer,
chat template) that both transformers and vLLM load: 2 layers, hidden 32, 4 heads of dimension 32
(vLLM's CPU attention needs a head size of at least 32). Offline, a few seconds; deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _corpus() -> list[str]:
    """A few hundred lines: the shipped instructions, lexicons and parallel pairs, plus filler."""
    data = Path(__file__).resolve().parent.parent / "trainers" / "data"
    lines: list[str] = []
    for row in json.loads((data / "alpaca_smoke.json").read_text(encoding="utf-8")):
        lines.extend(v for v in row.values() if v)
    for path in sorted((data / "lexicons").glob("*.txt")) + sorted((data / "opus_smoke").glob("*.jsonl")):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    words = "the a cat dog sees runs to from house tree water sky blue red big small".split()
    lines.extend(" ".join(words[(i * 7 + j) % len(words)] for j in range(8)) for i in range(200))
    lines.extend(f"user assistant system {i} + {i + 1} = {2 * i + 1}" for i in range(100))
    return lines


def build_tokenizer(vocab_size: int = 1024):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_llama(path: Path | str, seed: int = 0) -> Path:
    """Write the tiny model into `path` (created) and return it."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=1024,
        initializer_range=0.2,  # larger than usual, so that logits can move far enough for a loss to fall quickly
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


if __name__ == "__main__":
    import sys

    print(build_tiny_llama(sys.argv[1] if len(sys.argv) > 1 else "tiny-llama"))
