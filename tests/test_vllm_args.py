"""The vLLM route's arguments (harness.engines.vllm_args), on a GPU and on the CPU, against the pinned
vLLM's and lm-eval's own classes: a wrong keyword or value fails here, not first on a user's GPU.

The GPU is an input (`Device`), so these run on a CPU. lm-eval's VLLM model is built for real with
vLLM's `LLM` replaced by a recorder, so the keywords checked are the ones lm-eval hands to `LLM(...)`.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.engines import EngineSettings, prepare_vllm_env
from harness.engines import vllm_args
from harness.engines.vllm_args import Device, llm_kwargs, lm_eval_args

GIB = 2**30
H200 = Device("cuda", total_bytes=140 * GIB, free_bytes=139 * GIB)
BESIDE_TRAINER = Device("cuda", total_bytes=80 * GIB, free_bytes=30 * GIB)  # a trainer process holds 50 GiB
CPU = Device("cpu")
SETTINGS = EngineSettings(max_model_len=512)


@pytest.fixture(scope="module")
def vllm_modules():
    prepare_vllm_env()
    from vllm import LLM, SamplingParams
    from vllm.config import CacheConfig, LoRAConfig
    from vllm.engine.arg_utils import EngineArgs
    from vllm.lora.request import LoRARequest

    return {"LLM": LLM, "SamplingParams": SamplingParams, "EngineArgs": EngineArgs, "LoRAConfig": LoRAConfig,
            "CacheConfig": CacheConfig, "LoRARequest": LoRARequest}


def _model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"max_position_embeddings": 8192}), encoding="utf-8")
    return model


def _adapter(tmp_path: Path, rank: int) -> Path:
    adapter = tmp_path / f"adapter-r{rank}"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": rank, "lora_alpha": 2 * rank}), encoding="utf-8")
    return adapter


class _Recorded(Exception):
    pass


def _llm_kwargs_from_lm_eval(args: dict, monkeypatch) -> dict:
    """What lm-eval's VLLM.__init__ passes to LLM(...) for model arguments `args` (it stops there)."""
    import lm_eval.models.vllm_causallms as lm_eval_vllm

    seen: dict = {}

    def record(**kwargs):
        seen.update(kwargs)
        raise _Recorded

    monkeypatch.setattr(lm_eval_vllm, "LLM", record)
    with pytest.raises(_Recorded):
        lm_eval_vllm.VLLM(**args)
    return seen


def _check_against_vllm(kwargs: dict, vllm_modules) -> None:
    """Every keyword is one LLM(...) or EngineArgs takes, with a value vLLM's own config classes accept."""
    fields = {f.name for f in dataclasses.fields(vllm_modules["EngineArgs"])}
    llm_params = set(inspect.signature(vllm_modules["LLM"].__init__).parameters)
    unknown = sorted(set(kwargs) - fields - llm_params)
    assert not unknown, f"keywords vLLM does not take: {unknown}"
    vllm_modules["EngineArgs"](**{k: v for k, v in kwargs.items() if k in fields})
    if kwargs.get("enable_lora"):
        vllm_modules["LoRAConfig"](max_lora_rank=kwargs["max_lora_rank"], max_loras=kwargs["max_loras"])
    if "gpu_memory_utilization" in kwargs:
        vllm_modules["CacheConfig"](gpu_memory_utilization=kwargs["gpu_memory_utilization"])


@pytest.mark.parametrize("device", [H200, BESIDE_TRAINER, CPU], ids=["h200", "beside-trainer", "cpu"])
def test_lm_eval_hands_vllm_only_keywords_it_takes(device, tmp_path, monkeypatch, vllm_modules):
    import lm_eval.models.vllm_causallms as lm_eval_vllm

    args = lm_eval_args(_model(tmp_path), _adapter(tmp_path, 8), SETTINGS, device)
    own = set(inspect.signature(lm_eval_vllm.VLLM.__init__).parameters)
    passed_on = _llm_kwargs_from_lm_eval(args, monkeypatch)
    # every argument is lm-eval's own, or one it hands on to LLM(...) unchanged
    assert all(k in own or passed_on.get(k) == v for k, v in args.items()), sorted(set(args) - own)
    _check_against_vllm(passed_on, vllm_modules)
    assert passed_on["enable_lora"] is True and passed_on["max_lora_rank"] == 8 and passed_on["max_loras"] == 1
    assert passed_on["enable_prefix_caching"] is True and passed_on["max_model_len"] == 512


def test_llm_kwargs_are_vllms_own(tmp_path, vllm_modules):
    model = _model(tmp_path)
    for device in (H200, BESIDE_TRAINER, CPU):
        _check_against_vllm(llm_kwargs(model, SETTINGS, device), vllm_modules)


def test_gpu_route_decisions(tmp_path):
    model = _model(tmp_path)
    on_gpu, on_cpu = lm_eval_args(model, None, SETTINGS, H200), lm_eval_args(model, None, SETTINGS, CPU)
    assert on_gpu["dtype"] == "bfloat16" and on_cpu["dtype"] == "float32"  # "auto" would keep the built-in's float32
    assert on_gpu["enforce_eager"] is False and on_cpu["enforce_eager"] is True
    assert on_gpu["gpu_memory_utilization"] == pytest.approx(0.9 * 139 / 140, abs=1e-3)  # of what is free now
    assert "gpu_memory_utilization" not in on_cpu
    assert "lora_local_path" not in on_gpu and "max_lora_rank" not in on_gpu  # no adapter, no LoRA slots
    # beside a trainer holding 50 of 80 GiB, vLLM may take only what is free (it refuses to start otherwise)
    share = lm_eval_args(model, None, SETTINGS, BESIDE_TRAINER)["gpu_memory_utilization"]
    assert share * BESIDE_TRAINER.total_bytes <= BESIDE_TRAINER.free_bytes
    assert share == pytest.approx(0.9 * 30 / 80, abs=1e-3)
    with pytest.raises(HarnessError, match=r"0\.5 GiB free of 80 GiB.*--engine hf"):
        vllm_args.memory_utilization(Device("cuda", 80 * GIB, GIB // 2))


@pytest.mark.parametrize(("rank", "served"), [(1, 1), (8, 8), (12, 16), (64, 64), (300, 320)])
def test_max_lora_rank_is_the_adapters_rounded_up_to_a_rank_vllm_takes(rank, served, tmp_path, vllm_modules):
    args = lm_eval_args(_model(tmp_path), _adapter(tmp_path, rank), SETTINGS, H200)
    assert args["max_lora_rank"] == served
    vllm_modules["LoRAConfig"](max_lora_rank=served, max_loras=1)


def test_a_rank_vllm_cannot_serve_is_one_line(tmp_path):
    with pytest.raises(HarnessError, match="LoRA rank 600 is above the largest vLLM serves \\(512\\)"):
        lm_eval_args(_model(tmp_path), _adapter(tmp_path, 600), SETTINGS, H200)


def test_sampling_params_are_vllms_own(vllm_modules):
    SamplingParams = vllm_modules["SamplingParams"]
    for read_cache in (True, False):
        params = SamplingParams(**vllm_args.scoring_params(read_cache))
        assert params.prompt_logprobs == 1 and params.max_tokens == 1
        assert params.skip_reading_prefix_cache is (not read_cache)
    assert SamplingParams(**vllm_args.greedy_params(7)).max_tokens == 7


class _RecordingLLM:
    """Stands in for vllm.LLM: records what each generate call was given."""

    def __init__(self):
        self.calls: list[dict] = []

    def generate(self, prompts, sampling_params=None, use_tqdm=False, lora_request=None):
        self.calls.append({"n": len(prompts), "lora_request": lora_request})
        return []


def test_every_generate_call_carries_the_lora_request(tmp_path, vllm_modules):
    """lm-eval issue 2432 / PR 2433: a LoRA silently dropped. Our scorer's both rounds and lm-eval's
    generation go through VLLM._model_generate; each call must carry the adapter's LoRARequest."""
    from harness.engines.scoring_vllm import SharedPrefixVLLM

    lm = SharedPrefixVLLM.__new__(SharedPrefixVLLM)
    adapter = str(_adapter(tmp_path, 8))
    lm.lora_request = vllm_modules["LoRARequest"]("finetuned", 1, adapter)
    lm.data_parallel_size, lm.batch_size, lm.model = 1, "auto", _RecordingLLM()
    from vllm import SamplingParams

    lm._model_generate([[1, 2, 3]], generate=True, sampling_params=SamplingParams(**vllm_args.greedy_params(4)))
    lm._model_generate([[1, 2, 3, 4]], generate=False)
    assert len(lm.model.calls) == 2
    assert all(c["lora_request"] is not None and c["lora_request"].lora_path == adapter for c in lm.model.calls)


def test_data_parallel_replicas_get_the_lora_request_too(tmp_path, monkeypatch, vllm_modules):
    """PR 2433's half of lm-eval issue 2432: with data_parallel_size > 1 each ray replica builds its own
    LLM and must be handed the LoRA request. Ray is stood in for (each remote call runs here)."""
    import sys
    import types

    import lm_eval.models.vllm_causallms as lm_eval_vllm
    from harness.engines.scoring_vllm import SharedPrefixVLLM

    replicas: list[_RecordingLLM] = []

    def make_llm(**kwargs):
        replicas.append(_RecordingLLM())
        return replicas[-1]

    def remote(*args, **kwargs):
        wrap = lambda fn: types.SimpleNamespace(remote=fn)
        return wrap(args[0]) if args and callable(args[0]) else wrap

    fake_ray = types.SimpleNamespace(remote=remote, get=lambda refs: refs, shutdown=lambda: None)
    monkeypatch.setitem(sys.modules, "ray", fake_ray)
    monkeypatch.setattr(lm_eval_vllm, "LLM", make_llm)
    lm = SharedPrefixVLLM.__new__(SharedPrefixVLLM)
    adapter = str(_adapter(tmp_path, 8))
    lm.lora_request = vllm_modules["LoRARequest"]("finetuned", 1, adapter)
    lm.data_parallel_size, lm.tensor_parallel_size, lm.batch_size = 2, 1, "auto"
    lm.model_args = lm_eval_args(_model(tmp_path), Path(adapter), EngineSettings(max_model_len=512, data_parallel_size=2), CPU)
    lm._model_generate([[1, 2], [3, 4], [5, 6]], generate=False)
    assert [len(r.calls) for r in replicas] == [1, 1]  # one LLM per replica, one generate call each
    assert all(c["lora_request"] is not None and c["lora_request"].lora_path == adapter for r in replicas for c in r.calls)
