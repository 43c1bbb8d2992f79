"""The HF engine on a GPU, checked on the CPU by its inputs: every HF use puts its model on the device
harness.core.device picks (cuda + bf16 when a GPU is there), generation is batched by length with each
row stopped and trimmed on its own, and the batched greedy answers equal one-at-a-time generation."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from harness.core import device as devices
from harness.core.device import ModelShape, model_shape
from harness.engines import EngineSettings, Generation
from harness.engines.hf_engine import HFEngine
from harness.engines.hf_generate import GPU_MAX_ROWS, Stops, generation_rows, trim

QUESTIONS = ["Name a colour.", "What is the capital of France? Answer in one short sentence, please.",
             "2 + 3 =", "Write a long story about a cat, a dog and a house with a blue tree.", "Hi", "Count to five."]


def _chats(questions=QUESTIONS) -> list[list[dict]]:
    return [[{"role": "user", "content": q}] for q in questions]


def _one_at_a_time(model_dir, conversations, max_new_tokens) -> list[Generation]:
    """Each conversation generated alone, no padding: what the answers must equal."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    stops = {tokenizer.eos_token_id, model.generation_config.eos_token_id}
    out = []
    for chat in conversations:
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            row = model.generate(input_ids=ids, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(stops),
                                 pad_token_id=tokenizer.pad_token_id)[0, ids.shape[1]:].tolist()
        end = next((i for i, t in enumerate(row) if t in stops), None)
        out.append(Generation(tokenizer.decode(row[:end], skip_special_tokens=True).strip(), end is None))
    return out


def test_batched_greedy_answers_equal_one_at_a_time_in_the_callers_order(tiny_llama, monkeypatch):
    monkeypatch.setattr(HFEngine, "generate_batch_size", 4)  # 6 prompts: batches of unequal lengths, padded
    kept: list[tuple[int, list[Generation]]] = []
    monkeypatch.setattr(HFEngine, "keep_every_batches", 1)
    batched = HFEngine().generate_chat(tiny_llama, _chats(), 12, EngineSettings(), on_batch=lambda s, a: kept.append((s, list(a))))
    assert batched == _one_at_a_time(tiny_llama, _chats(), 12)
    # Windows of 4 then 2, each handed back in order once done (a killed run keeps them).
    assert [(s, len(a)) for s, a in kept] == [(0, 4), (4, 2)]
    assert [g for _, a in kept for g in a] == batched


def test_generation_is_sorted_by_length_and_batched(tiny_llama, monkeypatch):
    from transformers import LlamaForCausalLM

    widths: list[tuple[int, int]] = []

    def recording_generate(self, *args, **kwargs):
        widths.append(tuple(kwargs["input_ids"].shape))
        return real_generate(self, *args, **kwargs)

    real_generate = LlamaForCausalLM.generate
    monkeypatch.setattr(LlamaForCausalLM, "generate", recording_generate)
    monkeypatch.setattr(HFEngine, "generate_batch_size", 2)
    HFEngine().generate_chat(tiny_llama, _chats(), 4, EngineSettings())
    assert [rows for rows, _ in widths] == [2, 2, 2]
    assert [w for _, w in widths] == sorted((w for _, w in widths), reverse=True)  # longest first


def test_each_row_is_trimmed_at_its_own_stop():
    tokenizer = SimpleNamespace(decode=lambda ids, skip_special_tokens: "".join(chr(96 + i) for i in ids))
    stops = Stops(frozenset({0}), ("\n\n", "cd"))
    assert trim(tokenizer, [1, 2, 0, 5, 5], stops) == Generation("ab", False)  # end-of-turn token
    assert trim(tokenizer, [1, 2, 3, 4, 5], stops) == Generation("ab", False)  # stop string "cd"
    assert trim(tokenizer, [5, 5, 5], stops) == Generation("eee", True)  # neither: cut off by the token limit


def test_the_judge_generates_in_batches_and_matches_one_at_a_time(tiny_llama, monkeypatch):
    from transformers import AutoTokenizer, LlamaForCausalLM

    calls: list[int] = []
    real_generate = LlamaForCausalLM.generate

    def counting(self, *args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "generate", counting)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)

    def as_chat(prompt: str) -> str:
        return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)

    judged = HFEngine().prompt_generator(tiny_llama, tokenizer, as_chat, 10)(QUESTIONS)
    assert calls == [6]  # one batch of 6 rows (CPU cap 8), not 6 calls of one row
    assert judged == [g.text for g in _one_at_a_time(tiny_llama, _chats(), 10)]


@pytest.fixture
def fake_gpu(monkeypatch):
    """harness.core.device sees an 80 GB bf16 GPU; `.to()` records where models are sent (and leaves them here)."""
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    monkeypatch.setattr(devices, "bf16_supported", lambda: True)
    monkeypatch.setattr(devices, "free_memory_bytes", lambda: 80 * 2**30)
    sent: list[tuple[str, torch.dtype]] = []
    real_to = torch.nn.Module.to

    def recording_to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, (str, torch.device)) and torch.device(target).type == "cuda":
            sent.append((type(self).__name__, next(self.parameters()).dtype))
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", recording_to)
    return sent


def test_on_a_gpu_every_hf_use_puts_its_model_on_cuda_in_bf16(tiny_llama, tmp_path, fake_gpu):
    from transformers import AutoTokenizer

    HFEngine().generate_chat(tiny_llama, _chats()[:2], 2, EngineSettings())  # self-distillation, LLM translation
    assert fake_gpu == [("LlamaForCausalLM", torch.bfloat16)]
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    HFEngine().prompt_generator(tiny_llama, tokenizer, lambda p: p, 2)(["a", "b"])  # the judge
    assert fake_gpu[1:] == [("LlamaForCausalLM", torch.bfloat16)]
    args = HFEngine().model_args(tiny_llama, None, EngineSettings())  # evaluation: lm-eval's HFLM moves it
    assert (args["device"], args["dtype"]) == ("cuda", "bfloat16")


def test_held_out_loss_runs_on_the_picked_device(tiny_llama, tmp_path, fake_gpu):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from harness.core.runstore import write_jsonl
    from harness.services.heldout import evaluate_heldout

    adapter = tmp_path / "adapter"
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(adapter)
    held = tmp_path / "heldout.jsonl"
    write_jsonl(held, [{"lang": "en", "group": "g", "messages": [{"role": "user", "content": "Hi"},
                                                                 {"role": "assistant", "content": "Hello there"}]}])
    out = evaluate_heldout(tiny_llama, adapter, held, tmp_path / "heldout.json", 64)
    assert fake_gpu == [("LlamaForCausalLM", torch.bfloat16)] and out["langs"]["en"]["tokens"] > 0


def test_without_a_gpu_everything_stays_on_the_cpu_in_fp32(monkeypatch):
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    assert devices.pick_device() == devices.Device("cpu", "float32")
    monkeypatch.setattr(devices, "cuda_available", lambda: True)
    monkeypatch.setattr(devices, "bf16_supported", lambda: False)
    assert devices.pick_device() == devices.Device("cuda", "float32")  # no bf16 on this GPU: fp32, never fp16


SMOLLM2 = ModelShape(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, vocab=49152, tied_embeddings=True, head_dim=64)
LLAMA7B = ModelShape(layers=32, hidden=4096, intermediate=11008, heads=32, kv_heads=32, vocab=32000, tied_embeddings=False, head_dim=128)


def test_generation_batch_rows_come_from_free_memory_on_a_gpu_and_a_fixed_cap_on_cpu():
    assert generation_rows(LLAMA7B, 2, 4096, None, cpu_rows=8) == 8  # CPU: the fixed cap
    # 7B, bf16, 4096 tokens a row: 0.5 MiB of keys/values and 77 KiB of prefill activations per token,
    # about 2.3 GiB a row; 80% of 10 GiB holds 3 rows.
    assert generation_rows(LLAMA7B, 2, 4096, 10 * 2**30, cpu_rows=8) == 3
    assert generation_rows(LLAMA7B, 2, 4096, 2**30, cpu_rows=8) == 1  # never 0
    assert generation_rows(SMOLLM2, 2, 2048, 100 * 2**30, cpu_rows=8) == GPU_MAX_ROWS
    assert LLAMA7B.parameters == pytest.approx(6.74e9, rel=0.01)  # the shape formula, against Llama-2-7B's count


def test_evaluation_generation_takes_the_memory_sized_batch_and_scoring_its_own(tiny_llama, monkeypatch):
    engine = HFEngine()
    monkeypatch.setattr(devices, "free_memory_bytes", lambda: None)
    assert engine.rows(tiny_llama, 4, 1024) == HFEngine.generate_batch_size
    monkeypatch.setattr(devices, "free_memory_bytes", lambda: 80 * 2**30)
    assert engine.rows(tiny_llama, 2, 1024) == GPU_MAX_ROWS
    lm = SimpleNamespace(generation_batch_size=256, scoring_batch_size=8, batch_size_per_gpu=8)
    engine.before_task(lm, "merged", "generation")
    assert lm.batch_size_per_gpu == 256
    engine.before_task(lm, "merged", "comprehension")
    assert lm.batch_size_per_gpu == 8
    assert model_shape(tiny_llama).head_dim == 32  # config.json's own head_dim, not hidden / heads


def _random_adapter(tiny_llama, out):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    lora = LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM", init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(out)
    return out


def test_on_a_gpu_an_adapter_is_merged_there_in_fp32_and_saved_in_bf16(tiny_llama, tmp_path, monkeypatch, fake_gpu):
    from safetensors import safe_open

    from harness.core import models

    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))
    adapter = _random_adapter(tiny_llama, tmp_path / "adapter")
    merged = models.merged_model_dir(tiny_llama, adapter, models.adapter_fingerprint(adapter))
    assert fake_gpu == [("PeftModelForCausalLM", torch.float32)]  # merged on the GPU, in fp32
    with safe_open(str(merged / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.bfloat16}  # what the engines load there
    # the fp32 weights must fit the free memory: a GPU with too little merges on the CPU, still saved in bf16
    monkeypatch.setattr(devices, "free_memory_bytes", lambda: 1024)
    assert devices.merge_device(tiny_llama) == devices.Device("cpu", "float32") and devices.pick_device().dtype == "bfloat16"
    # the CPU merges and saves in fp32 under its own key: a bf16 copy is never read as an fp32 one
    monkeypatch.setattr(devices, "cuda_available", lambda: False)
    assert devices.merge_device(tiny_llama) == devices.Device("cpu", "float32")
    on_cpu = models.merged_model_dir(tiny_llama, adapter, models.adapter_fingerprint(adapter))
    assert on_cpu != merged and len(fake_gpu) == 1
    with safe_open(str(on_cpu / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float32}
