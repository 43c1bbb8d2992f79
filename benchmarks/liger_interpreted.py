"""kernels=liger with the real liger-kernel on a CPU: its Triton kernels run by Triton's interpreter
(TRITON_INTERPRET=1), against kernels=none on the tiny test model. A developer's check of the wiring that the
tests cover with tests/fake_liger.py; it measures no speed (the interpreter runs kernels in numpy).

    pip install --no-deps --target /tmp/ligerlib liger-kernel==0.8.5 triton   # 290 MB, not part of any install
    TRITON_INTERPRET=1 PYTHONPATH=/tmp/ligerlib python benchmarks/liger_interpreted.py

Two gaps of the interpreter are bridged here, at run time: it hands a kernel's float arguments over as Python
floats (the compiler makes them fp32 scalars, which liger's kernels call `.to` on), and libdevice's rsqrt has no
interpreted form (tl.math.rsqrt does the same).

Prints, for a padded and a packed micro-batch, the summed loss and the worst relative LoRA-gradient difference,
the module kinds patched, whether the transformers modeling module is left as it was, and the loss curves of
3 training steps with each setting.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def bridge_interpreter() -> None:
    import numpy as np
    import triton.language as tl
    import triton.runtime.interpreter as interp

    import liger_kernel.ops.rms_norm as liger_rms_norm

    implicit_cvt = interp._implicit_cvt

    def cvt(arg):
        if isinstance(arg, float):
            return tl.tensor(interp.TensorHandle(np.array([arg], dtype=np.float32), tl.float32), tl.float32)
        return implicit_cvt(arg)

    interp._implicit_cvt = cvt
    liger_rms_norm.rsqrt = lambda x: tl.math.rsqrt(x)  # looked up per call: the interpreter patches tl.math while a kernel runs


def main() -> int:
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("run with TRITON_INTERPRET=1 (see the docstring)")
        return 2
    bridge_interpreter()
    import torch
    from tiny_model import build_tiny_llama
    from transformers import AutoTokenizer
    from transformers.models.llama import modeling_llama

    from harness.core import device as devices
    from trainers.config import TrainConfig
    from trainers.encoding import collate, collate_packed, encode_chat
    from trainers.lora import train_lora
    from trainers.lora_model import forward_sum, load_lora_model

    work = Path(tempfile.mkdtemp(prefix="liger-interpreted-"))
    model_dir = build_tiny_llama(work / "model")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    qa = [("Hello cat", "The dog runs to the house."), ("Where is the big red tree near the water?", "Near the house."),
          ("Say one word.", "Cat, then the dog and the house and the water and the tree.")]
    chats = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in qa]
    examples = [encode_chat(tokenizer, chat, 512) for chat in chats]

    def lora(kernels: str):
        torch.manual_seed(0)
        model = load_lora_model(model_dir, TrainConfig(lora_rank=8, lora_dropout=0.0, kernels=kernels), "fp32", False)
        torch.manual_seed(1)  # LoRA's B starts at zero: give it values so every LoRA weight gets a gradient
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.data.normal_(0, 0.02)
        return model.train()

    def loss_and_grads(model, batch, fused: bool):
        loss = forward_sum(model, batch, fused_loss=fused)
        loss.backward()
        return loss.item(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}

    before = dict(vars(modeling_llama))
    for name, batch in (("padded", collate(examples, 0)), ("packed", collate_packed(examples))):
        plain, plain_grads = loss_and_grads(lora("none"), batch, fused=False)
        patched_model = lora("liger")
        fused, fused_grads = loss_and_grads(patched_model, batch, fused=True)
        worst = max(((fused_grads[n] - g).abs().max() / g.abs().max().clamp_min(1e-12)).item() for n, g in plain_grads.items())
        patched = sorted({f"{type(m).__name__} -> {m._get_name()}" for m in patched_model.modules() if m._get_name().startswith("Liger")})
        print(f"{name}: loss none {plain:.6f}, liger {fused:.6f} (relative {abs(plain - fused) / plain:.1e}); "
              f"worst LoRA gradient relative difference {worst:.1e}; patched: {', '.join(patched)}")
    changed = [k for k, v in vars(modeling_llama).items() if before.get(k) is not v]
    print(f"modeling_llama names changed after patching: {changed or 'none'}")

    devices.cuda_available = lambda: True  # check_here's probe: the loop itself runs here, in fp32
    records = [{"id": f"g{i}", "group": f"g{i}", "kind": "en_self", "lang": "en", "messages": chat} for i, chat in enumerate(chats * 2)]
    fast = dict(lora_rank=8, learning_rate=2e-3, warmup_ratio=0.0, lr_scheduler="constant", batch_size=3, max_steps=3, precision="fp32")
    for kernels in ("none", "liger"):
        stats = train_lora(model_dir, records, work / kernels, TrainConfig(kernels=kernels, **fast))
        print(f"training losses, kernels={kernels}: {stats['losses']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
