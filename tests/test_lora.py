"""The shared LoRA loop: tokenization and loss masking, the same-batch sampler, end-to-end training."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
try:  # tests/ as a plain folder on sys.path (pytest's default) or as a package
    from tiny_model import build_tiny_llama
except ImportError:
    from tests.tiny_model import build_tiny_llama
from trainers.config import TrainConfig
from trainers.encoding import IGNORE_INDEX, encode_chat
from trainers.lora import train_lora
from trainers.sampler import Batching, GroupBatchSampler, batching_for_tokens


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _chat(q: str, a: str) -> list[dict]:
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


# --- loss masking ---------------------------------------------------------------------------


def test_only_assistant_tokens_are_trained(tokenizer):
    enc = encode_chat(tokenizer, _chat("What is the capital of France?", "The capital of France is Paris."), 512)
    ids, labels = enc["input_ids"], enc["labels"]
    assert len(ids) == len(labels)
    trained = [i for i, label in zip(ids, labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "The capital of France is Paris.<|im_end|>\n"
    # The prompt, up to and including the generation prompt, is masked and tokenized as at inference.
    prompt = tokenizer.apply_chat_template(_chat("What is the capital of France?", "")[:1], tokenize=False, add_generation_prompt=True)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert labels[:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ids[:n_prompt] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert all(label != IGNORE_INDEX for label in labels[n_prompt:])


def test_multi_turn_trains_every_assistant_turn(tokenizer):
    messages = _chat("one", "first answer") + _chat("two", "second answer")
    enc = encode_chat(tokenizer, messages, 512)
    text = tokenizer.decode([i for i, label in zip(enc["input_ids"], enc["labels"]) if label != IGNORE_INDEX])
    assert text == "first answer<|im_end|>\nsecond answer<|im_end|>\n"


def test_truncation_drops_records_without_answer_tokens(tokenizer):
    long_question = "water " * 200
    assert encode_chat(tokenizer, _chat(long_question, "yes"), 32) is None
    enc = encode_chat(tokenizer, _chat("hi", "a long answer " * 50), 40)
    assert len(enc["input_ids"]) == 40


# --- same-batch sampler ---------------------------------------------------------------------


def _groups():
    # 10 groups of different sizes, records of a group not adjacent
    return [f"g{i % 10}" for i in range(37)]


def test_sampler_batches_hold_exactly_batch_size_records_and_keep_groups_that_fit():
    groups = _groups()  # 10 groups of 3-4 records
    sampler = GroupBatchSampler(groups, batch_size=8, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 37 // 8
        assert all(len(b) == 8 for b in batches)  # sized in records, never in groups
        flat = [i for b in batches for i in b]
        assert len(flat) == len(set(flat))  # no record twice in an epoch
        assert len(flat) == 32  # the short last batch (5 records) is dropped
        # a group is split only to fill the end of a batch, so it spans two neighbouring batches at most
        for g in set(groups):
            holders = sorted({k for k, b in enumerate(batches) for i in b if groups[i] == g})
            assert len(holders) <= 2 and (len(holders) < 2 or holders[1] == holders[0] + 1)
        assert sampler.split_groups <= len(batches)
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first  # reshuffled per epoch
    assert list(GroupBatchSampler(groups, 8, seed=1)) == first  # deterministic for a seed


def test_sampler_splits_only_groups_larger_than_a_batch_and_fills_gaps_with_small_ones():
    # SDRRL-like: big groups of 5 variants, plus single-record parallel pairs
    groups = [f"src{i}" for i in range(6) for _ in range(5)] + [f"par{i}" for i in range(10)]
    sampler = GroupBatchSampler(groups, batch_size=8, seed=3)
    batches = list(sampler)
    assert all(len(b) == 8 for b in batches) and len(batches) == 40 // 8
    for g in {x for x in groups if x.startswith("src")}:
        holders = {k for k, b in enumerate(batches) for i in b if groups[i] == g}
        assert len(holders) <= 2
    assert sampler.split_groups <= 2
    big = GroupBatchSampler(["a"] * 20, batch_size=8, seed=0)
    assert [len(b) for b in big] == [8, 8] and big.split_groups == 1  # larger than a batch: split


def test_sampler_without_same_batch_and_across_processes():
    groups = _groups()
    plain = GroupBatchSampler(groups, batch_size=4, seed=0, same_batch=False)
    assert len(list(plain)) == 9 and all(len(b) == 4 for b in list(plain))
    ranks = [list(GroupBatchSampler(groups, 4, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(GroupBatchSampler(groups, 4, rank=1, world_size=2)) == 4
    seen = [i for r in ranks for b in r for i in b]
    assert len(seen) == len(set(seen))


def test_equal_records_per_step_whatever_the_group_sizes():
    """The budget fix: SDRRL-sized groups and single records give the same records per batch."""
    sdrrl_like = GroupBatchSampler([f"g{i // 19}" for i in range(19 * 8)], batch_size=16, seed=0)
    sft_like = GroupBatchSampler([f"r{i}" for i in range(152)], batch_size=16, seed=0, same_batch=False)
    assert {len(b) for b in sdrrl_like} == {len(b) for b in sft_like} == {16}


# --- batches sized in tokens (tokens_per_step) ----------------------------------------------------


def test_batch_size_derived_from_tokens_per_step():
    # 100 records of 100 tokens, 1,000 tokens per step: 10 records per step, one pass per epoch
    assert batching_for_tokens(1000, 10_000, 100, batches_per_step=1) == Batching(10.0, 1)
    # split over gradient accumulation x processes: 4 batches of 2.5 records make a step of 10
    assert batching_for_tokens(1000, 10_000, 100, batches_per_step=4) == Batching(2.5, 1)
    # a fraction where a whole batch size misses: 2.7 records' worth gives 37 steps of 100/37 records
    derived = batching_for_tokens(270, 10_000, 100, batches_per_step=1)
    assert derived.passes == 1 and derived.batch_size == pytest.approx(100 / 37)
    assert abs(derived.batch_size * 100 / 270 - 1) < 0.01  # tokens per step on target; a whole 3 or 2 is 11% off
    # a small data set (6 records of 50 tokens, 3.5 records per step): one pass holds 1.7 steps, so an
    # epoch is 6 passes of 10 steps; whole steps of one pass would be 14% off
    small = batching_for_tokens(175, 300, 6, batches_per_step=1)
    assert small.passes == 6 and abs(small.batch_size * 50 / 175 - 1) <= 0.05
    # a step never holds a record twice: a data set smaller than a step trains all of it per step
    assert batching_for_tokens(10_000, 350, 7, batches_per_step=1) == Batching(7.0, 1)
    assert batching_for_tokens(10_000, 350, 7, batches_per_step=2) == Batching(3.5, 1)
    assert batching_for_tokens(1, 350, 7, batches_per_step=1) == Batching(1.0, 1)  # at least one record per batch


def test_fractional_batches_average_their_size_and_use_every_record_equally():
    groups = [f"g{i // 3}" for i in range(30)] + [f"r{i}" for i in range(10)]  # 40 records, groups of 3 and 1
    sampler = GroupBatchSampler(groups, batch_size=40 / 14, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 14 and {len(b) for b in batches} == {2, 3}
    assert sorted(i for b in batches for i in b) == list(range(40))  # every record once per epoch
    # an epoch of 6 passes over 6 records: each record 6 times, batches of 3 or 4 averaging 3.6
    passes = GroupBatchSampler([f"r{i}" for i in range(6)], batch_size=3.6, seed=0, same_batch=False, passes=6)
    batches = list(passes)
    assert len(batches) == len(passes) == 10 and {len(b) for b in batches} == {3, 4}
    assert sorted(i for b in batches for i in b) == sorted(list(range(6)) * 6)
    # across 2 processes: the same global batches, every other one each, equally many steps
    ranks = [list(GroupBatchSampler(groups, 40 / 14, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 7 and [b for pair in zip(*ranks) for b in pair] == list(sampler)


def test_config_checks():
    with pytest.raises(HarnessError, match="lora_rank"):
        TrainConfig(lora_rank=128).validate()
    with pytest.raises(HarnessError, match="batch_size"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(HarnessError, match="tokens_per_step"):
        TrainConfig(tokens_per_step=-1).validate()


def test_placement_on_cpu_reads_precision_and_gradient_checkpointing():
    """auto means fp32 and no recomputation on a CPU; any true/false word the settings accept is honoured."""
    from trainers.lora_model import place

    auto = place(TrainConfig(), Path("not-read-on-cpu"))
    assert (auto.precision, auto.checkpointing, auto.on_gpu) == ("fp32", False, False)
    assert [place(TrainConfig(gradient_checkpointing=word), Path("not-read")).checkpointing for word in ("true", "on", "1", "off", "no")] == [True, True, True, False, False]


# --- end to end -----------------------------------------------------------------------------


def _records(n_groups: int = 3, per_group: int = 2) -> list[dict]:
    return [
        {"id": f"g{g}:{k}", "group": f"g{g}", "kind": "en_self", "lang": "en", "messages": _chat("Hello cat", "The dog runs to the house.")}
        for g in range(n_groups)
        for k in range(per_group)
    ]


FAST = dict(lora_rank=8, learning_rate=2e-2, warmup_ratio=0.0, lr_scheduler="constant", batch_size=4)


def test_micro_batching_does_not_change_the_loss(tiny_model, tmp_path):
    one = train_lora(tiny_model, _records(), tmp_path / "a", TrainConfig(max_steps=1, micro_batch_size=8, **FAST))
    many = train_lora(tiny_model, _records(), tmp_path / "b", TrainConfig(max_steps=1, micro_batch_size=1, **FAST))
    assert one["first_loss"] == pytest.approx(many["first_loss"], rel=1e-5)


def test_steps_sized_in_tokens_hold_about_tokens_per_step(tiny_model, tokenizer, tmp_path):
    """Long and short records: batches of the records that make a step of the target, not of batch_size."""
    long = "The dog runs to the house and the cat sees the big red tree near the water. " * 2
    records = [{"id": f"r{i}", "group": f"r{i}", "kind": "en_self", "lang": "en",
                "messages": _chat(f"Question {i}", long if i % 2 else "A cat.")} for i in range(24)]
    mean = sum(len(encode_chat(tokenizer, r["messages"], 512)["input_ids"]) for r in records) / len(records)
    target = round(3.3 * mean)  # 3.3 records' worth; batch_size says 4
    stats = train_lora(tiny_model, records, tmp_path / "a", TrainConfig(max_steps=20, tokens_per_step=target, **FAST))
    # whole steps per epoch (24 records, 2 passes: 15 steps of 3.2): within 5% of the 3.3 asked for
    assert stats["records_per_step"] == pytest.approx(3.3, rel=0.05) and stats["tokens_per_step_target"] == target
    assert abs(stats["tokens_per_step"] / target - 1) <= 0.10
    plain = train_lora(tiny_model, records, tmp_path / "b", TrainConfig(max_steps=2, **FAST))
    assert plain["records_per_step"] == 4 and plain["tokens_per_step_target"] == 0


def test_first_step_loss_is_the_answer_token_cross_entropy(tiny_model, tokenizer, tmp_path):
    """Step 1 sees the base model (LoRA B starts at zero): its loss is HF's own loss on the answer tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    records = _records(1, 1)
    stats = train_lora(tiny_model, records, tmp_path / "a", TrainConfig(max_steps=1, **FAST))
    enc = encode_chat(tokenizer, records[0]["messages"], 512)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, use_safetensors=True)
    with torch.no_grad():
        expected = model(input_ids=torch.tensor([enc["input_ids"]]), labels=torch.tensor([enc["labels"]])).loss.item()
    assert stats["first_loss"] == pytest.approx(expected, rel=1e-4)


def test_train_lowers_loss_and_saves_a_loadable_adapter(tiny_model, tmp_path):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    adapter = tmp_path / "adapter"
    stats = train_lora(tiny_model, _records(), adapter, TrainConfig(max_steps=25, **FAST), seed=0)
    assert stats["steps"] == 25 and stats["examples"] == 6 and stats["train_tokens"] > 0
    assert stats["final_loss"] < stats["first_loss"] - 0.2
    assert stats["device"].startswith("cpu") and stats["precision"] == "fp32"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "tokenizer_config.json").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == 8 and set(config["target_modules"]) >= {"q_proj", "v_proj", "down_proj"}
    tensors = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in tensors.items())  # trained, not the zero init
    base = AutoModelForCausalLM.from_pretrained(tiny_model, use_safetensors=True)
    model = PeftModel.from_pretrained(base, adapter)
    with torch.no_grad():
        model(input_ids=torch.tensor([[1, 2, 3]]))


def test_adapter_loads_in_vllm(tiny_model, tmp_path):
    """The adapter served by vLLM reproduces the memorised answer (a subprocess: vLLM changes torch threads)."""
    pytest.importorskip("vllm")
    adapter = tmp_path / "adapter"
    train_lora(tiny_model, _records(), adapter, TrainConfig(max_steps=25, **FAST), seed=0)
    script = textwrap.dedent(
        f"""
        from harness.engines import prepare_vllm_env
        prepare_vllm_env()
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
        llm = LLM(model={str(tiny_model)!r}, dtype="float32", max_model_len=256, enforce_eager=True,
                  enable_lora=True, max_lora_rank=64, max_loras=1)
        out = llm.chat([[{{"role": "user", "content": "Hello cat"}}]], SamplingParams(temperature=0, max_tokens=12),
                       use_tqdm=False, lora_request=LoRARequest("a", 1, {str(adapter)!r}))
        print("ANSWER=" + out[0].outputs[0].text)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = [line for line in proc.stdout.splitlines() if line.startswith("ANSWER=")][0][len("ANSWER=") :]
    assert answer.startswith("The dog runs"), answer
