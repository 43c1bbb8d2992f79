"""HF transformers (fallback and cross-check): lm-eval's HFLM with shared-context scoring; generation in
length-sorted batches sized to the device (harness.engines.hf_generate), on the device harness.core.device picks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from harness.core import device as devices  # its probes are looked up at call time: tests set them
from harness.core.device import DTYPE_BYTES, model_shape
from harness.core.errors import HarnessError
from harness.engines.base import REQUEST_TYPES, Engine, EngineSettings, Generation, OnBatch, context_length, register_engine
from harness.engines.hf_generate import Stops, generate_batched, generation_rows, stop_ids


@register_engine("hf")
class HFEngine(Engine):
    generate_batch_size = 8  # rows per generation batch on the CPU (on a GPU: as many as the free memory holds)
    keep_every_batches = 4  # with on_batch: answers are handed back every this many batches (sorted within them)
    adapter_servings = ("merged", "lora")  # lora: lm-eval's HFLM loads it through PEFT (`peft=`)
    lora_preferred_for = REQUEST_TYPES

    def model_args(self, model_dir: Path, adapter: Path | None, settings: EngineSettings) -> dict:
        device = devices.pick_device()
        args = {
            "pretrained": str(model_dir),
            "dtype": device.dtype,
            "max_length": context_length(model_dir, settings.max_model_len),
            "device": device.kind,  # lm-eval's HFLM assumes CUDA otherwise
        }
        if adapter is not None:
            args["peft"] = str(adapter)
        return args

    def lm(self, args: dict, hf_batch_size: int) -> Any:
        from harness.engines.scoring import SharedContextHFLM  # lm-eval's HFLM, each multiple-choice context run once

        lm = SharedContextHFLM(**args, batch_size=hf_batch_size)
        # lm-eval's generate_until batches by batch_size: on a GPU as many rows as the free memory left
        # after loading holds at the full context length; multiple choice keeps hf_batch_size contexts.
        lm.generation_batch_size = self.rows(Path(args["pretrained"]), DTYPE_BYTES[args["dtype"]], args["max_length"], hf_batch_size)
        lm.scoring_batch_size = hf_batch_size
        return lm

    def before_task(self, lm: Any, serving: str, task_kind: str) -> None:
        lm.batch_size_per_gpu = lm.generation_batch_size if task_kind == "generation" else lm.scoring_batch_size

    def rows(self, model_dir: Path, dtype_bytes: int, tokens_per_row: int, cpu_rows: int | None = None) -> int:
        """Rows per generation batch for this model (harness.engines.hf_generate.generation_rows)."""
        return generation_rows(model_shape(model_dir), dtype_bytes, tokens_per_row, devices.free_memory_bytes(),
                               cpu_rows or self.generate_batch_size)

    def generate_chat(self, model_dir: Path, conversations: list[list[dict]], max_new_tokens: int,
                      settings: EngineSettings, on_batch: OnBatch | None = None) -> list[Generation]:
        import torch
        from rich.progress import track
        from transformers import AutoTokenizer

        if not conversations:
            return []
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        texts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
        prompts = tokenizer(texts, add_special_tokens=False)["input_ids"]
        max_prompt = context_length(model_dir, settings.max_model_len) - max_new_tokens
        longest = max(len(p) for p in prompts)
        if longest > max_prompt:  # before the model is loaded: nothing generated is lost
            raise HarnessError(
                f"a prompt of {longest} tokens plus {max_new_tokens} new tokens exceeds max_model_len "
                f"{settings.max_model_len}; raise --max-model-len or shorten the instructions"
            )
        device = devices.pick_device()
        model = devices.load_causal_lm(model_dir, device=device)
        rows = self.rows(model_dir, DTYPE_BYTES[device.dtype], longest + max_new_tokens)
        torch.manual_seed(settings.seed)
        return generate_batched(
            model, tokenizer, prompts, max_new_tokens, rows, Stops(stop_ids(model, tokenizer)),
            window=rows * self.keep_every_batches if on_batch is not None else None, on_window=on_batch,
            progress=lambda batches: track(batches, description="generating (hf)"),
        )

    def prompt_generator(self, model_dir: Path, tokenizer: Any, as_chat: Callable[[str], str],
                         max_new_tokens: int) -> Callable[[list[str]], list[str]]:
        device = devices.pick_device()
        model = devices.load_causal_lm(model_dir, device=device)
        stops = Stops(stop_ids(model, tokenizer))

        def generate(prompts: list[str]) -> list[str]:
            if not prompts:
                return []
            ids = tokenizer([as_chat(p) for p in prompts], add_special_tokens=False)["input_ids"]
            rows = self.rows(model_dir, DTYPE_BYTES[device.dtype], max(len(i) for i in ids) + max_new_tokens)
            return [g.text for g in generate_batched(model, tokenizer, ids, max_new_tokens, rows, stops)]

        return generate
