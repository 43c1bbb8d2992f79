"""Fused training kernels (the `kernels` setting): liger-kernel's RMSNorm, SwiGLU and fused linear
cross-entropy on the LoRA loop's model, or none.

liger-kernel patches a loaded model per instance: each RMSNorm's and MLP's `forward` becomes Liger's
Triton kernel, and the model's `forward` computes the loss from the hidden states in chunks, never
holding the logits (trainers.lora_model.forward_sum asks for that path). Its `apply_liger_kernel_to_*`
functions also replace classes in the transformers modeling module; `apply` puts those back, so a model
loaded later in this process (the evaluation after training) is plain transformers. Liger's RoPE is
left out: it can only be patched process-wide.

Triton's kernels run on a CUDA GPU only. `check_installed` (plan time, any machine) and `check_here`
(the machine that trains, before the model loads) refuse in one line what cannot run.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from harness.core import device as devices
from harness.core.errors import HarnessError
from harness.core.textfile import json_file

KERNELS = ("none", "liger")
# Decoders whose MLP is SwiGLU and whose norms are RMSNorm, the shapes liger's per-instance patch keeps
# exact; liger knows more model types, but those patch other modules (GeGLU, LayerNorm, MoE) untested here.
LIGER_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
LIGER_INSTALL = "pip install -e '.[gpu]' in the harness checkout (liger-kernel)"


def liger_installed() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def check_installed(kernels: str, model_dir: Path) -> None:
    """kernels=liger: liger-kernel importable and the model one it is wired for (config.json alone)."""
    if kernels == "none":
        return
    if not liger_installed():
        raise HarnessError(f"kernels=liger needs liger-kernel, which is not installed: {LIGER_INSTALL}, or kernels=none")
    try:
        config = json_file(Path(model_dir) / "config.json", "model config")
    except HarnessError:
        return  # no config to read here: the model check names that
    model_type, act = config.get("model_type"), config.get("hidden_act", "silu")
    if model_type not in LIGER_MODEL_TYPES or act not in ("silu", "swish"):
        raise HarnessError(f"kernels=liger is wired for model types {', '.join(LIGER_MODEL_TYPES)} with a SwiGLU MLP; "
                           f"{str(model_dir)!r} is {model_type!r} with hidden_act {act!r}: use kernels=none")


def check_here(kernels: str, model_dir: Path) -> None:
    """check_installed, and a CUDA GPU on this machine (Triton has no CPU kernels)."""
    check_installed(kernels, model_dir)
    if kernels == "liger" and not devices.cuda_available():
        raise HarnessError("kernels=liger needs a CUDA GPU (liger-kernel's Triton kernels); this machine has none: use kernels=none")


def apply(model: Any, kernels: str) -> None:
    """Patch `model` (a transformers causal LM, before PEFT wraps it) in place for `kernels`."""
    if kernels == "none":
        return
    from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN

    patch = MODEL_TYPE_TO_APPLY_LIGER_FN[model.config.model_type]
    wanted = dict(rope=False, cross_entropy=False, fused_linear_cross_entropy=True, rms_norm=True, swiglu=True)
    accepted = inspect.signature(patch).parameters
    missing = [name for name in wanted if name not in accepted]
    if missing:
        raise HarnessError(f"liger-kernel's {patch.__name__} takes no {', '.join(missing)}: this liger-kernel version is not one kernels=liger knows")
    modeling = sys.modules[type(model).__module__]
    before = dict(vars(modeling))
    try:
        patch(model=model, **wanted)
    finally:
        for name, value in before.items():
            if getattr(modeling, name, None) is not value:
                setattr(modeling, name, value)
