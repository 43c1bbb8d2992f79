"""Where an HF model runs: the one place that decides device and dtype and puts a model there.

Every HF use (evaluation through lm-eval's HFLM, self-distillation and LLM translation, the judge,
held-out loss, an adapter's merge) asks `pick_device()`; loaders go through `load_causal_lm`. The probes
(`cuda_available`, `bf16_supported`, `free_memory_bytes`) are module functions so tests can set
them and check the GPU decisions on a CPU-only machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def bf16_supported() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def free_memory_bytes(device: Any = None) -> int | None:
    """Free memory of a CUDA device (the current one by default; None without a GPU)."""
    if not cuda_available():
        return None
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


@dataclass(frozen=True)
class Device:
    kind: str  # "cuda" | "cpu"
    dtype: str  # torch dtype name: "bfloat16" | "float32"

    @property
    def torch_dtype(self) -> Any:
        import torch

        return getattr(torch, self.dtype)

    @property
    def on_gpu(self) -> bool:
        return self.kind == "cuda"


def pick_device() -> Device:
    """cuda in bf16 when a GPU is there (fp32 on a GPU without bf16: fp16 overflows on some models),
    else the CPU in fp32, as every HF use ran before."""
    if cuda_available():
        return Device("cuda", "bfloat16" if bf16_supported() else "float32")
    return Device("cpu", "float32")


def load_causal_lm(model_dir: Path, adapter: Path | None = None, device: Device | None = None) -> Any:
    """The model (safetensors only, no remote code) in `device`'s dtype, on that device, in eval mode;
    with `adapter`, a PEFT LoRA on top."""
    from transformers import AutoModelForCausalLM

    device = device or pick_device()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=device.torch_dtype, use_safetensors=True,
                                                 trust_remote_code=False)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    return model.to(device.kind).eval()


@dataclass(frozen=True)
class ModelShape:
    """What the memory estimates need from a decoder's config.json."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool
    head_dim: int

    @property
    def parameters(self) -> int:
        """Parameter count of a Llama-style decoder (attention q,o full and k,v grouped; gated MLP; norms ignored)."""
        kv = self.kv_heads * self.head_dim
        q = self.heads * self.head_dim
        per_layer = 2 * self.hidden * q + 2 * self.hidden * kv + 3 * self.hidden * self.intermediate
        embeddings = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        return self.layers * per_layer + embeddings


def model_shape(model_dir: Path) -> ModelShape:
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    config = config.get("text_config", config)  # multimodal wrappers keep the decoder's shape here
    hidden = int(config["hidden_size"])
    heads = int(config.get("num_attention_heads", 1))
    return ModelShape(
        layers=int(config["num_hidden_layers"]),
        hidden=hidden,
        intermediate=int(config.get("intermediate_size") or 4 * hidden),
        heads=heads,
        kv_heads=int(config.get("num_key_value_heads") or heads),
        vocab=int(config["vocab_size"]),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        head_dim=int(config.get("head_dim") or hidden // heads),
    )


DTYPE_BYTES = {"bfloat16": 2, "float16": 2, "float32": 4}


MERGE_MEMORY_SHARE = 0.85  # our default: the share of the free GPU memory an fp32 merge may take


def merge_device(model_dir: Path) -> Device:
    """Where an adapter is merged into its base: always in fp32 (W + BA rounded once, whatever the engines'
    dtype), on the GPU when the fp32 weights fit MERGE_MEMORY_SHARE of its free memory, else on the CPU.
    The merged copy is saved in pick_device()'s dtype, the one the engines here load."""
    if not pick_device().on_gpu:
        return Device("cpu", "float32")
    free = free_memory_bytes()
    try:
        fp32_bytes = model_shape(model_dir).parameters * DTYPE_BYTES["float32"]
    except (OSError, KeyError, TypeError, ValueError):
        fp32_bytes = None  # no readable shape: the CPU, which does not run out
    fits = free is not None and fp32_bytes is not None and fp32_bytes <= MERGE_MEMORY_SHARE * free
    return Device("cuda" if fits else "cpu", "float32")
