"""One micro-batch through the LoRA loop's loss, for the tests and checks that compare two ways of computing
it (packed vs padded rows: tests/test_packing.py; liger kernels vs none: tests/test_kernels.py and
benchmarks/liger_interpreted.py): three chat records of different lengths, a LoRA model whose every weight
gets a gradient, the summed loss with its LoRA gradients, and how far two gradient sets differ."""

from __future__ import annotations

from pathlib import Path

QUESTIONS = [("Hello cat", "The dog runs to the house."), ("Where is the big red tree near the water?", "Near the house."),
             ("Say one word.", "Cat, then the dog and the house and the water and the tree.")]


def chat(q: str, a: str) -> list[dict]:
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def records(copies: int = 1) -> list[dict]:
    """Training records (harness.trainer_api), one group each."""
    return [{"id": f"g{i}", "group": f"g{i}", "kind": "en_self", "lang": "en", "messages": chat(q, a)}
            for i, (q, a) in enumerate(QUESTIONS * copies)]


def encoded(model_dir: Path) -> list[dict]:
    from transformers import AutoTokenizer

    from trainers.encoding import encode_chat

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [encode_chat(tokenizer, chat(q, a), 512) for q, a in QUESTIONS]


def lora_model(model_dir: Path, kernels: str = "none", checkpointing: bool = False):
    """Rank-8 LoRA on every projection, no dropout, fp32, in training mode. LoRA's B starts at zero; it is
    given values here, so the gradients reach every LoRA weight."""
    import torch

    from trainers.config import TrainConfig
    from trainers.lora_model import load_lora_model

    torch.manual_seed(0)
    model = load_lora_model(model_dir, TrainConfig(lora_rank=8, lora_dropout=0.0, kernels=kernels), "fp32", checkpointing)
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.02)
    return model.train()


def loss_and_grads(model, batch: dict, fused_loss: bool = False) -> tuple[float, dict]:
    """forward_sum's summed loss and the LoRA weights' gradients."""
    from trainers.lora_model import forward_sum

    model.zero_grad(set_to_none=True)
    loss = forward_sum(model, batch, fused_loss=fused_loss)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def worst_relative_difference(a: dict, b: dict) -> float:
    """The largest gradient difference of any weight, relative to that weight's largest gradient in `a`."""
    return max(((b[n] - g).abs().max() / g.abs().max().clamp_min(1e-12)).item() for n, g in a.items())
