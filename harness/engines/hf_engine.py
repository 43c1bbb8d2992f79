"""HF transformers (fallback and cross-check): lm-eval's HFLM with shared-context scoring, `generate` in batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from harness.engines.base import REQUEST_TYPES, Engine, EngineSettings, Generation, OnBatch, context_length, on_gpu, register_engine
from harness.core.errors import HarnessError


@register_engine("hf")
class HFEngine(Engine):
    generate_batch_size = 8
    adapter_servings = ("merged", "lora")  # lora: lm-eval's HFLM loads it through PEFT (`peft=`)
    lora_preferred_for = REQUEST_TYPES

    def model_args(self, model_dir: Path, adapter: Path | None, settings: EngineSettings) -> dict:
        args = {
            "pretrained": str(model_dir),
            "dtype": "bfloat16" if on_gpu() else "float32",
            "max_length": context_length(model_dir, settings.max_model_len),
            "device": "cuda" if on_gpu() else "cpu",  # lm-eval's HFLM assumes CUDA otherwise
        }
        if adapter is not None:
            args["peft"] = str(adapter)
        return args

    def lm(self, args: dict, hf_batch_size: int) -> Any:
        from harness.engines.scoring import SharedContextHFLM  # lm-eval's HFLM, each multiple-choice context run once

        return SharedContextHFLM(**args, batch_size=hf_batch_size)

    def generate_chat(self, model_dir: Path, conversations: list[list[dict]], max_new_tokens: int,
                      settings: EngineSettings, on_batch: OnBatch | None = None) -> list[Generation]:
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
        size = self.generate_batch_size
        batches = [conversations[i : i + size] for i in range(0, len(conversations), size)]
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
            start = len(answers)
            for row in out[:, enc["input_ids"].shape[1] :].tolist():
                truncated = not stop_ids.intersection(row)  # no end-of-turn token: generation hit max_new_tokens
                answers.append(Generation(tokenizer.decode(row, skip_special_tokens=True).strip(), truncated))
            if on_batch is not None:
                on_batch(start, answers[start:])
        return answers

    def prompt_generator(self, model_dir: Path, tokenizer: Any, as_chat: Callable[[str], str],
                         max_new_tokens: int) -> Callable[[list[str]], list[str]]:
        import torch
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, use_safetensors=True)

        def generate(prompts: list[str]) -> list[str]:
            outputs = []
            for prompt in prompts:
                ids = tokenizer(as_chat(prompt), return_tensors="pt", add_special_tokens=False)
                with torch.no_grad():
                    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                         pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
                outputs.append(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
            return outputs

        return generate
