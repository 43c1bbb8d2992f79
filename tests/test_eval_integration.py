"""Real evaluations through lm-eval: vLLM on CPU and HF transformers, on the tiny Llama and SmolLM2."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import harness.evaluation.evaluate as evaluate_mod
from harness.engines import EngineSettings
from harness.evaluation.evaluate import EvalRequest, evaluate
from harness.core.runstore import read_json, read_jsonl
from harness.evaluation.registry import get_suite
from harness.services.selftest import APPLIED_MIN_SHIFT, LOGLIKELIHOOD_TOLERANCE  # what harness selftest requires too

pytestmark = pytest.mark.slow
TINY = EngineSettings(max_model_len=1024, max_gen_toks=48)


def _request(model: Path, tasks, out: Path, engine: str, limit=None, settings=TINY) -> EvalRequest:
    suite = get_suite("smoke")
    return EvalRequest(model_dir=model, tasks=tasks, out_dir=out, engine=engine, data_dir=suite.data_dir,
                       limit=limit, settings=settings)


def test_vllm_and_hf_agree_on_multiple_choice(tiny_llama, tmp_path, eval_cache):
    mc = [t for t in get_suite("smoke").tasks if t.kind == "comprehension"]
    by_engine = {e: evaluate(_request(tiny_llama, mc, tmp_path / e, e)) for e in ("vllm", "hf")}
    for task in mc:
        v, h = by_engine["vllm"][task.name], by_engine["hf"][task.name]
        assert v["n_samples"] == h["n_samples"] > 0
        assert v["metrics"]["acc"] == h["metrics"]["acc"], task.name
        v_rows = read_jsonl(tmp_path / "vllm" / task.name / "samples.jsonl")
        h_rows = read_jsonl(tmp_path / "hf" / task.name / "samples.jsonl")
        assert [r["doc_hash"] for r in v_rows] == [r["doc_hash"] for r in h_rows]
        assert [r["prediction"] for r in v_rows] == [r["prediction"] for r in h_rows]
        worst = max(abs(a - b) for rv, rh in zip(v_rows, h_rows) for a, b in zip(rv["loglikelihoods"], rh["loglikelihoods"]))
        assert worst < LOGLIKELIHOOD_TOLERANCE, f"{task.name}: log-likelihoods differ by {worst}"


def test_generation_tasks_score_and_record_signatures(tiny_llama, tmp_path, eval_cache):
    gen = [t for t in get_suite("smoke").tasks if t.kind == "generation"][:2]
    results = evaluate(_request(tiny_llama, gen, tmp_path, "vllm", limit=3))
    for task in gen:
        scores = results[task.name]
        assert scores["n_samples"] == 3
        assert math.isfinite(scores["metrics"]["bleu"]) and math.isfinite(scores["metrics"]["chrf"])
        assert "tok:" in scores["signatures"]["bleu"]
        rows = read_jsonl(tmp_path / task.name / "samples.jsonl")
        assert all(isinstance(r["prediction"], str) and r["reference"] for r in rows)
        assert read_json(tmp_path / task.name / "scores.json")["eval_key"] == scores["eval_key"]


def test_rerun_skips_finished_tasks_and_resumes_the_rest(tiny_llama, tmp_path, eval_cache, monkeypatch):
    tasks = [t for t in get_suite("smoke", "en").tasks if t.kind == "comprehension"]
    first = evaluate(_request(tiny_llama, tasks[:1], tmp_path, "hf"))
    monkeypatch.setattr(evaluate_mod, "build_lm", lambda *a: pytest.fail("a finished task was evaluated again"))
    assert evaluate(_request(tiny_llama, tasks[:1], tmp_path, "hf")) == first
    monkeypatch.undo()
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(eval_cache))
    built = []
    real_build = evaluate_mod.build_lm
    monkeypatch.setattr(evaluate_mod, "build_lm", lambda *a: built.append(1) or real_build(*a))
    both = evaluate(_request(tiny_llama, tasks, tmp_path, "hf"))  # only the second task is new
    assert set(both) == {t.name for t in tasks} and built == [1]
    assert both[tasks[0].name] == first[tasks[0].name]


@pytest.fixture(scope="module")
def tiny_adapter(tiny_llama, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero random weights, so that it really changes the scores."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama, use_safetensors=True)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    out = tmp_path_factory.mktemp("tiny-adapter") / "adapter"
    get_peft_model(model, lora).save_pretrained(out, safe_serialization=True)
    return out


def _adapter_request(model: Path, adapter: Path, tasks, out: Path, engine: str, serving: str, **kw) -> EvalRequest:
    settings = EngineSettings(max_model_len=1024, adapter_serving=serving, **kw)
    req = _request(model, tasks, out, engine, limit=3, settings=settings)
    req.adapter, req.variant = adapter, "adapter"
    return req


def test_adapter_scores_agree_merged_lora_and_hf(tiny_llama, tiny_adapter, tmp_path, eval_cache):
    tasks = [t for t in get_suite("smoke", "en,cs").tasks if t.family == "belebele"]
    lls = {}
    for engine, serving in [("vllm", "merged"), ("vllm", "lora"), ("hf", "merged"), ("hf", "lora")]:
        name = f"{engine}-{serving}"
        results = evaluate(_adapter_request(tiny_llama, tiny_adapter, tasks, tmp_path / name, engine, serving))
        assert results[tasks[0].name]["adapter_served_as"] == serving
        assert results[tasks[0].name]["engine"] == engine
        lls[name] = [ll for t in tasks for r in read_jsonl(tmp_path / name / t.name / "samples.jsonl") for ll in r["loglikelihoods"]]
    base = evaluate(_request(tiny_llama, tasks, tmp_path / "base", "hf", limit=3))
    base_lls = [ll for t in tasks for r in read_jsonl(tmp_path / "base" / t.name / "samples.jsonl") for ll in r["loglikelihoods"]]
    assert base and max(abs(a - b) for a, b in zip(lls["hf-lora"], base_lls)) > APPLIED_MIN_SHIFT  # the adapter matters
    for name in ("vllm-merged", "vllm-lora", "hf-merged"):
        worst = max(abs(a - b) for a, b in zip(lls[name], lls["hf-lora"]))  # HF + PEFT is the reference
        assert worst < LOGLIKELIHOOD_TOLERANCE, f"{name} vs hf-lora: {worst}"


def test_adapter_greedy_outputs_agree_merged_and_lora(tiny_llama, tiny_adapter, tmp_path, eval_cache):
    """Serving the merged copy (the CPU default) gives the LoRA-served greedy outputs, on both engines."""
    tasks = [t for t in get_suite("smoke", "cs").tasks if t.family == "flores200"]
    outputs = {}
    for engine, serving in [("hf", "lora"), ("hf", "merged"), ("vllm", "merged"), ("vllm", "lora")]:
        name = f"{engine}-{serving}"
        req = _adapter_request(tiny_llama, tiny_adapter, tasks, tmp_path / name, engine, serving, max_gen_toks=16)
        results = evaluate(req)
        assert {results[t.name]["adapter_served_as"] for t in tasks} == {serving}
        outputs[name] = [r["prediction"] for t in tasks for r in read_jsonl(tmp_path / name / t.name / "samples.jsonl")]
    base = evaluate(_request(tiny_llama, tasks, tmp_path / "base", "hf", limit=3, settings=EngineSettings(max_model_len=1024, max_gen_toks=16)))
    base_out = [r["prediction"] for t in tasks for r in read_jsonl(tmp_path / "base" / t.name / "samples.jsonl")]
    assert base and base_out != outputs["hf-lora"]  # the adapter changes what is generated
    assert len(outputs["hf-lora"]) == 3 * len(tasks)
    # Within an engine, serving cannot change a greedy output; across engines a random tiny model's
    # near-ties may (the multiple-choice agreement test holds the engines to each other).
    assert outputs["hf-merged"] == outputs["hf-lora"]
    assert outputs["vllm-merged"] == outputs["vllm-lora"]
