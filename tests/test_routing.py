"""`--engine auto`: which engine and adapter serving each request type gets, per hardware; and the
evaluation batching that follows from it (one lm-eval call per route and kind)."""

from __future__ import annotations

import pytest

import harness.engines.routing as routing
import harness.evaluation.evaluate as evaluate_mod
from harness.engines import EngineSettings, route
from harness.core.errors import HarnessError
from harness.evaluation.evaluate import EvalRequest, evaluate
from harness.evaluation.registry import get_suite


@pytest.fixture(params=["cpu", "gpu"])
def hardware(request, monkeypatch) -> str:
    monkeypatch.setattr(routing, "hardware", lambda: request.param)
    return request.param


def test_auto_takes_the_measured_engine_per_request_type(hardware):
    for kind, request_type in (("comprehension", "loglikelihood"), ("generation", "generation")):
        assert route("auto", kind, False).engine == routing.AUTO_ENGINE[(hardware, request_type)]
    if hardware == "cpu":  # RESULTS.md section 8: HF scores log-likelihoods faster, vLLM generates faster
        assert route("auto", "comprehension", False) == routing.Route("hf", "none", "default")
        assert route("auto", "generation", False) == routing.Route("vllm", "none", "default")


def test_a_named_engine_runs_every_request_type(hardware):
    for engine in ("vllm", "hf"):
        assert {route(engine, kind, True).engine for kind in ("comprehension", "generation")} == {engine}


def test_on_cpu_an_adapter_is_served_merged_everywhere(monkeypatch):
    monkeypatch.setattr(routing, "hardware", lambda: "cpu")
    for engine in ("auto", "vllm", "hf"):
        for kind in ("comprehension", "generation"):
            assert route(engine, kind, True).serving == "merged", (engine, kind)
            assert route(engine, kind, False).serving == "none"


def test_on_gpu_lora_is_served_except_for_vllm_multiple_choice(monkeypatch):
    monkeypatch.setattr(routing, "hardware", lambda: "gpu")
    assert route("vllm", "generation", True).serving == "lora"
    assert route("hf", "comprehension", True).serving == "lora"
    assert route("vllm", "comprehension", True).serving == "merged"  # vLLM issue 16668
    assert route("vllm", "comprehension", True, "lora").serving == "lora"  # forced: served one request at a time


def test_forced_serving_and_bad_names(hardware):
    assert route("auto", "generation", True, "lora").serving == "lora"
    assert route("hf", "generation", True, "merged").serving == "merged"
    with pytest.raises(HarnessError, match="'tensorrt'.*auto, vllm, hf|'tensorrt'.*auto"):
        route("tensorrt", "generation", False)
    with pytest.raises(HarnessError, match="'fused'"):
        route("hf", "generation", True, "fused")


def test_tasks_of_one_route_and_kind_share_one_lm_eval_call(tiny_llama, tmp_path, eval_cache, monkeypatch):
    suite = get_suite("smoke", "en,cs")
    tasks = [t for t in suite.tasks if t.family in ("sib200", "flores200")]
    calls = []
    real = evaluate_mod._simple_evaluate
    monkeypatch.setattr(evaluate_mod, "_simple_evaluate", lambda req, lm, names, *a: calls.append(names) or real(req, lm, names, *a))
    req = EvalRequest(model_dir=tiny_llama, tasks=tasks, out_dir=tmp_path, engine="hf", data_dir=suite.data_dir, limit=2,
                      settings=EngineSettings(max_model_len=1024, max_gen_toks=8))
    results = evaluate(req)
    by_kind = {kind: sorted(t.name for t in tasks if t.kind == kind) for kind in ("comprehension", "generation")}
    assert sorted(sorted(c) for c in calls) == sorted(by_kind.values())  # two calls, one per kind
    for task in tasks:
        scores = results[task.name]
        assert scores["engine"] == "hf" and scores["engine_requested"] == "hf"
        assert sorted(scores["engine_call"]["tasks"]) == by_kind[task.kind]
    for kind, names in by_kind.items():  # the call's wall time is split over its tasks, not counted twice
        call_wall = results[names[0]]["engine_call"]["wall_s"]
        assert sum(results[n]["wall_s"] for n in names) == pytest.approx(call_wall, abs=0.01)
