"""The arguments vLLM gets, on a GPU and on the CPU, built in one place from the device's figures.

`lm_eval_args` are the keyword arguments of lm-eval's `VLLM` model (lm_eval/models/vllm_causallms.py,
lm-eval 0.4.13: it turns `lora_local_path` into `enable_lora=True` and a `LoRARequest("finetuned", 1,
path)` that it passes to every `LLM.generate` call, and hands every keyword it does not know to
`LLM(...)`, that is to vLLM's `EngineArgs`); `llm_kwargs` are those of `LLM(...)` for generation
outside lm-eval. tests/test_vllm_args.py checks both against vLLM's and lm-eval's own classes, so a
wrong keyword shows on a CPU, not first on a user's GPU.

The device is an input (`Device`), so the GPU decisions are tested on a CPU:
- dtype: bfloat16 on a GPU. vLLM's "auto" takes the checkpoint's dtype, and the built-in model is
  stored in float32 (de-quantized), which would run at half speed.
- gpu_memory_utilization: vLLM takes this fraction of the device's *total* memory and refuses to
  start when less than that is free. Beside a trainer process (or another member's engine) that
  holds memory, it is what is free now, less a margin for the activations of this process.
- LoRA: `max_lora_rank` is the adapter's own rank rounded up to a rank vLLM accepts
  (vllm/config/lora.py MaxLoRARanks), one adapter at a time (max_loras=1).
- prefix caching on: harness.engines.scoring_vllm reuses each context's cached blocks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.engines.base import EngineSettings, context_length

# vllm/config/lora.py MaxLoRARanks (vLLM 0.32): the only values max_lora_rank takes.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
# Our default: the share of the free memory vLLM may take, leaving room for this process's own
# allocations outside vLLM's pool (the CUDA context, the sampler's buffers).
FREE_MEMORY_SHARE = 0.9
VLLM_DEFAULT_UTILIZATION = 0.92  # vllm/config/cache.py CacheConfig.gpu_memory_utilization


@dataclass(frozen=True)
class Device:
    """What vLLM's arguments depend on: a GPU or not, and its memory now (bytes)."""

    kind: str  # "cuda" | "cpu"
    total_bytes: int = 0
    free_bytes: int = 0

    @property
    def is_gpu(self) -> bool:
        return self.kind == "cuda"


def current_device() -> Device:
    """Through harness.core.device's probes, the ones every HF use asks (tests set them)."""
    from harness.core import device as probes

    if not probes.cuda_available():
        return Device("cpu")
    import torch

    free, total = torch.cuda.mem_get_info()
    return Device("cuda", int(total), int(free))


def memory_utilization(device: Device) -> float:
    """vLLM's gpu_memory_utilization: its default on an idle GPU, less where another process holds memory."""
    if device.total_bytes <= 0:
        return VLLM_DEFAULT_UTILIZATION
    share = FREE_MEMORY_SHARE * device.free_bytes / device.total_bytes
    if share < 0.05:
        raise HarnessError(f"the GPU has {device.free_bytes / 2**30:.1f} GiB free of {device.total_bytes / 2**30:.0f} GiB: "
                           "too little for vLLM beside what else runs there; free the GPU, or --engine hf")
    return round(min(VLLM_DEFAULT_UTILIZATION, share), 3)


def adapter_rank(adapter: Path) -> int:
    """The LoRA rank `r` in a PEFT adapter's adapter_config.json (the largest, where ranks differ per module)."""
    config = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    ranks = [int(config.get("r") or 0), *(int(r) for r in (config.get("rank_pattern") or {}).values())]
    return max(ranks)


def lora_rank_for(rank: int) -> int:
    """The smallest rank vLLM accepts that holds an adapter of rank `rank`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise HarnessError(f"LoRA rank {rank} is above the largest vLLM serves ({VLLM_LORA_RANKS[-1]}); "
                       "serve it merged (--adapter-serving merged)")


def _engine_kwargs(model_dir: Path, settings: EngineSettings, device: Device) -> dict:
    """What LLM(...) and lm-eval's VLLM share."""
    kwargs: dict = {
        "dtype": "bfloat16" if device.is_gpu else "float32",
        "max_model_len": context_length(model_dir, settings.max_model_len),
        "seed": settings.seed,
        "enforce_eager": not device.is_gpu,  # CUDA graphs / torch.compile buy nothing on CPU and cost minutes
        "enable_prefix_caching": True,
    }
    if device.is_gpu:
        kwargs["gpu_memory_utilization"] = memory_utilization(device)
    if settings.tensor_parallel_size > 1:
        kwargs["tensor_parallel_size"] = settings.tensor_parallel_size
    return kwargs


def lm_eval_args(model_dir: Path, adapter: Path | None, settings: EngineSettings, device: Device) -> dict:
    """Keyword arguments of lm-eval's VLLM model (and of harness.engines.scoring_vllm.SharedPrefixVLLM)."""
    args = {"pretrained": str(model_dir), **_engine_kwargs(model_dir, settings, device)}
    if adapter is not None:
        # lm-eval sets enable_lora from lora_local_path and builds the LoRARequest it sends with every request.
        args.update(lora_local_path=str(adapter), max_loras=1,
                    max_lora_rank=lora_rank_for(max(adapter_rank(adapter), 1)))
    if settings.data_parallel_size > 1:
        args["data_parallel_size"] = settings.data_parallel_size
    return args


def llm_kwargs(model_dir: Path, settings: EngineSettings, device: Device) -> dict:
    """Keyword arguments of vllm.LLM for generation outside lm-eval (self-distillation, translation, the judge)."""
    return {"model": str(model_dir), **_engine_kwargs(model_dir, settings, device)}


def scoring_params(read_cache: bool) -> dict:
    """vllm.SamplingParams for log-likelihoods: the prompt's own log-probabilities (harness.engines.scoring_vllm)."""
    return {"temperature": 0, "prompt_logprobs": 1, "max_tokens": 1, "detokenize": False,
            "skip_reading_prefix_cache": not read_cache}


def greedy_params(max_new_tokens: int) -> dict:
    """vllm.SamplingParams for greedy generation."""
    return {"temperature": 0.0, "max_tokens": max_new_tokens}
