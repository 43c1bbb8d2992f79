"""kernels=liger with the real liger-kernel on a CPU: its Triton kernels run by Triton's interpreter
(TRITON_INTERPRET=1), against kernels=none on the tiny test model. A developer's check of the wiring that the
tests cover with tests/fake_liger.py; it measures no speed (the interpreter runs kernels in numpy).

    pip install --no-deps --target /tmp/ligerlib liger-kernel==0.8.5 triton   # 290 MB, not part of any install
    TRITON_INTERPRET=1 PYTHONPATH=/tmp/ligerlib python benchmarks/liger_interpreted.py [--checkpointing]

Two gaps of the interpreter are bridged here, at run time: it hands a kernel's float arguments over as Python
floats (the compiler makes them fp32 scalars, which liger's kernels call `.to` on), and libdevice's rsqrt has no
interpreted form (tl.math.rsqrt does the same).

Prints, for a padded and a packed micro-batch, the summed loss and the worst relative LoRA-gradient difference,
the module kinds patched, whether the transformers modeling module is left as it was, and the loss curves of
3 training steps with each setting.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpointing", action="store_true", help="gradient checkpointing on, for both settings")
    args = parser.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") != "1":
        print("run with TRITON_INTERPRET=1 (see the docstring)")
        return 2
    bridge_interpreter()
    from lora_micro_batch import encoded, lora_model, loss_and_grads, records, worst_relative_difference
    from tiny_model import build_tiny_llama
    from transformers.models.llama import modeling_llama

    from harness.core import device as devices
    from trainers.config import TrainConfig
    from trainers.encoding import collate, collate_packed
    from trainers.lora import train_lora

    work = Path(tempfile.mkdtemp(prefix="liger-interpreted-"))
    model_dir = build_tiny_llama(work / "model")
    examples = encoded(model_dir)
    before = dict(vars(modeling_llama))
    for name, batch in (("padded", collate(examples, 0)), ("packed", collate_packed(examples))):
        plain, plain_grads = loss_and_grads(lora_model(model_dir, "none", args.checkpointing), batch)
        patched_model = lora_model(model_dir, "liger", args.checkpointing)
        fused, fused_grads = loss_and_grads(patched_model, batch, fused_loss=True)
        worst = worst_relative_difference(plain_grads, fused_grads)
        patched = sorted({f"{type(m).__name__} -> {m._get_name()}" for m in patched_model.modules() if m._get_name().startswith("Liger")})
        print(f"{name}: loss none {plain:.6f}, liger {fused:.6f} (relative {abs(plain - fused) / plain:.1e}); "
              f"worst LoRA gradient relative difference {worst:.1e}; patched: {', '.join(patched)}")
    changed = [k for k, v in vars(modeling_llama).items() if before.get(k) is not v]
    print(f"modeling_llama names changed after patching: {changed or 'none'}")

    devices.cuda_available = lambda: True  # check_here's probe: the loop itself runs here, in fp32
    fast = dict(lora_rank=8, learning_rate=2e-3, warmup_ratio=0.0, lr_scheduler="constant", batch_size=3, max_steps=3,
                precision="fp32", gradient_checkpointing=str(args.checkpointing).lower())
    for kernels in ("none", "liger"):
        stats = train_lora(model_dir, records(copies=2), work / kernels, TrainConfig(kernels=kernels, **fast))
        print(f"training losses, kernels={kernels}: {stats['losses']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
