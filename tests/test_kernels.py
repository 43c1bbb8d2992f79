"""kernels=liger (trainers.kernels): the patched model gives the loss and LoRA gradients of the plain one, the
modeling module is left as it was, the training loop takes Liger's fused loss, and what cannot run is refused in
one line before a model loads. liger-kernel needs Triton on a CUDA GPU: these tests use tests/fake_liger.py,
which has liger-kernel 0.8.5's interface and argument handling with torch arithmetic."""

from __future__ import annotations

import json
import shutil

import pytest

import fake_liger
import lora_micro_batch
from harness.core import device as devices
from harness.core.errors import HarnessError
from lora_micro_batch import lora_model, loss_and_grads, worst_relative_difference
from trainers import kernels
from trainers.config import TrainConfig
from trainers.encoding import collate, collate_packed
from trainers.lora import train_lora


@pytest.fixture()
def liger(monkeypatch):
    return fake_liger.install(monkeypatch)


@pytest.fixture(scope="module")
def examples(tiny_llama) -> list[dict]:
    return lora_micro_batch.encoded(tiny_llama)


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
def test_the_liger_patched_model_gives_the_plain_loss_and_lora_gradients(tiny_llama, examples, liger, packed):
    batch = collate_packed(examples) if packed else collate(examples, pad_id=0)
    plain_loss, plain_grads = loss_and_grads(lora_model(tiny_llama, "none"), batch)
    assert not liger
    fused_loss, fused_grads = loss_and_grads(lora_model(tiny_llama, "liger"), batch, fused_loss=True)
    # every patched piece ran: 2 layers' MLPs, their 2 norms each and the final norm, one fused loss
    assert (liger["swiglu"], liger["rms_norm"], liger["fused_loss"]) == (2, 5, 1)
    assert fused_loss == pytest.approx(plain_loss, rel=1e-5)
    worst = worst_relative_difference(plain_grads, fused_grads)
    assert worst < 1e-4, worst


def test_liger_leaves_the_modeling_module_as_it_was(tiny_llama, liger):
    from transformers.models.llama import modeling_llama

    before = dict(vars(modeling_llama))
    lora_model(tiny_llama, "liger")
    assert {k: v for k, v in vars(modeling_llama).items() if before.get(k) is not v} == {}
    # so a model loaded afterwards in this process (the evaluation after training) is plain transformers
    later = lora_model(tiny_llama, "none")
    assert liger["rms_norm"] == 0
    later(input_ids=collate_packed([{"input_ids": [1, 2, 3], "labels": [-100, 2, 3]}])["input_ids"])
    assert liger["rms_norm"] == 0 and liger["swiglu"] == 0


def test_training_with_liger_kernels_follows_the_plain_loss_curve(tiny_llama, tmp_path, liger, monkeypatch, capsys):
    monkeypatch.setattr(devices, "cuda_available", lambda: True)  # check_here's probe; the loop itself runs on the CPU in fp32
    records = lora_micro_batch.records(copies=2)
    fast = dict(lora_rank=8, learning_rate=2e-3, warmup_ratio=0.0, lr_scheduler="constant", batch_size=3, max_steps=3, precision="fp32")
    plain = train_lora(tiny_llama, records, tmp_path / "plain", TrainConfig(**fast))
    assert not liger and "liger kernels" not in capsys.readouterr().err
    fused = train_lora(tiny_llama, records, tmp_path / "fused", TrainConfig(kernels="liger", **fast))
    assert liger["fused_loss"] == 3 and "liger kernels" in capsys.readouterr().err  # one micro-batch a step; the log says so
    assert fused["kernels"] == "liger" and plain["kernels"] == "none"
    assert fused["first_loss"] == pytest.approx(plain["first_loss"], rel=1e-5)
    assert fused["losses"] == pytest.approx(plain["losses"], rel=2e-2)  # Adam and float noise: see test_packing


def test_liger_not_installed_is_refused(tiny_llama, monkeypatch):
    # (through `harness run`, before any model loads: tests/test_bad_inputs.py)
    monkeypatch.setattr(kernels, "liger_installed", lambda: False)
    with pytest.raises(HarnessError, match=r"kernels=liger needs liger-kernel, which is not installed: pip install"):
        kernels.check_installed("liger", tiny_llama)
    kernels.check_installed("none", tiny_llama)


def test_liger_on_a_machine_without_a_gpu_is_refused_before_the_model_loads(tiny_llama, tmp_path, liger, monkeypatch):
    import trainers.lora as lora

    monkeypatch.setattr(lora, "load_lora_model", lambda *a, **k: pytest.fail("the model was loaded"))
    records = lora_micro_batch.records()[:1]
    with pytest.raises(HarnessError, match=r"^kernels=liger needs a CUDA GPU .*; this machine has none: use kernels=none$"):
        train_lora(tiny_llama, records, tmp_path / "a", TrainConfig(kernels="liger", max_steps=1))
    kernels.check_installed("liger", tiny_llama)  # the plan-time check passes: a login node may plan GPU jobs


def test_liger_on_a_model_it_is_not_wired_for_is_refused(tiny_llama, tmp_path, liger):
    other = tmp_path / "gemma-like"
    shutil.copytree(tiny_llama, other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "gemma", "hidden_act": "gelu_pytorch_tanh"}))
    with pytest.raises(HarnessError, match=r"kernels=liger is wired for model types llama, mistral, qwen2, qwen3 .* is 'gemma'"):
        kernels.check_installed("liger", other)
    (other / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu"}))
    with pytest.raises(HarnessError, match=r"with hidden_act 'gelu'"):
        kernels.check_installed("liger", other)


def test_doctor_checks_liger_only_when_a_run_asks_for_it(liger, monkeypatch):
    import harness.services.doctor as doctor
    from harness.evaluation.registry import Suite
    from harness.trainer_api import build_config
    from trainers.sdrrl import SDRRLTrainer

    def rows(kernel: str) -> dict:
        config = build_config(SDRRLTrainer, {"kernels": kernel, "instructions": "builtin:alpaca-smoke", "translator": "lexicon"})
        suite = Suite("s", "", [], None, languages=["en"])  # English alone: no parallel pairs, no lexicons to look for
        plan = doctor.RunPlan(suite=suite, model=None, config=config, trains=True, online_probe=False)
        return {c.item: c for c in doctor.check_trainer(plan)}

    assert "liger kernels" not in rows("none")
    monkeypatch.setattr(doctor, "_gpu_info", lambda: None)
    assert rows("liger")["liger kernels"].status == "fail" and "needs a CUDA GPU" in rows("liger")["liger kernels"].detail
    monkeypatch.setattr(doctor, "_gpu_info", lambda: ("NVIDIA H200", 141 * 2**30))
    monkeypatch.setattr(doctor.importlib.metadata, "version", lambda name: "0.8.5")
    assert rows("liger")["liger kernels"].status == "ok" and "0.8.5 on NVIDIA H200" in rows("liger")["liger kernels"].detail
    monkeypatch.setattr(kernels, "liger_installed", lambda: False)
    assert rows("liger")["liger kernels"].status == "fail" and "not installed" in rows("liger")["liger kernels"].detail
