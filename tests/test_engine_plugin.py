"""An engine plugin from outside the repository, built here: a package that imports only harness.plugin
(and lm-eval), registered through a dist-info entry point in the `sdrrl_harness.engines` group."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from plugin_packages import install_plugin, our_imports

from harness.app.cli import build_parser, main

PLUGIN = textwrap.dedent('''
    """lm-eval's plain HFLM as an engine: a third party's backend (base or merged weights only)."""
    from harness.plugin import Engine, Generation, context_length


    class PlainHF(Engine):
        name = "plain_hf"
        request_types = ("loglikelihood", "generation")
        adapter_servings = ("merged",)

        def model_args(self, model_dir, adapter, settings):
            return {"pretrained": str(model_dir), "dtype": "float32", "device": "cpu",
                    "max_length": context_length(model_dir, settings.max_model_len)}

        def lm(self, args, hf_batch_size):
            from lm_eval.models.huggingface import HFLM

            return HFLM(**args, batch_size=hf_batch_size)

        def generate_chat(self, model_dir, conversations, max_new_tokens, settings, on_batch=None):
            from lm_eval.api.instance import Instance

            lm = self.lm(self.model_args(model_dir, None, settings), 8)
            prompts = [lm.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
            kwargs = {"until": [], "max_gen_toks": max_new_tokens, "do_sample": False}
            texts = lm.generate_until([Instance("generate_until", {}, (p, dict(kwargs)), i) for i, p in enumerate(prompts)])
            answers = [Generation(t.strip(), False) for t in texts]
            if on_batch is not None:
                on_batch(0, answers)
            return answers

        def prompt_generator(self, model_dir, tokenizer, as_chat, max_new_tokens):
            raise NotImplementedError("plain_hf does not serve a judge")
''')


def _install(root: Path, entry_name: str = "plain_hf") -> Path:
    return install_plugin(root, "plain_hf_engine", PLUGIN, "sdrrl_harness.engines", entry_name, "plain_hf_engine:PlainHF")


@pytest.fixture()
def engine_on_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_install(tmp_path / "site")))
    monkeypatch.chdir(tmp_path)
    yield
    sys.modules.pop("plain_hf_engine", None)


def test_the_plugin_imports_only_the_plugin_api():
    assert our_imports(PLUGIN) == {"harness.plugin"}


def test_a_plugin_engine_is_listed_named_in_help_and_checked_by_doctor(engine_on_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["list", "engines"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "plain_hf" in line)
    assert "loglikelihood, generation" in row and "merged" in row and "lora" not in row
    eval_help = build_parser()._subparsers._group_actions[0].choices["eval"].format_help()
    assert "plain_hf" in " ".join(eval_help.split())  # --engine's help lists the registered engines
    main(["doctor", "--engine", "plain_hf"])
    assert "engine plain_hf (this run)" in capsys.readouterr().out
    # it declares no LoRA serving: refused in one line, before any model is loaded
    assert main(["eval", "--model", "/no/model", "--engine", "plain_hf", "--adapter-serving", "lora"]) == 2
    assert capsys.readouterr().err.strip() == ("harness: error: bad value for --adapter-serving: 'lora'; "
                                               "engine 'plain_hf' serves an adapter: auto, merged")


def test_a_task_kind_the_engine_does_not_run_is_refused_before_loading(engine_on_path, capsys):
    from harness.plugin import all_engines

    plain = all_engines()["plain_hf"]
    plain.request_types = ("generation",)  # the class is the test's own (its module is dropped after the test)
    assert main(["eval", "--model", "/no/model", "--engine", "plain_hf", "--tasks", "sib200_en"]) == 2
    assert capsys.readouterr().err.strip() == ("harness: error: engine 'plain_hf' does not run loglikelihood requests "
                                               "(it runs: generation)")


def test_an_engine_registered_under_another_name_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(_install(tmp_path / "site", "renamed")))
    try:
        assert main(["list", "engines"]) == 2
        assert "engine entry point 'renamed' (plain_hf_engine:PlainHF) is an engine named 'plain_hf'; set name = 'renamed'" in capsys.readouterr().err
    finally:
        sys.modules.pop("plain_hf_engine", None)


@pytest.mark.slow
def test_a_task_runs_through_a_plugin_engine(engine_on_path, tiny_llama, tmp_path, eval_cache):
    out = tmp_path / "run"
    assert main(["eval", "--model", str(tiny_llama), "--suite", "smoke", "--tasks", "sib200_en", "--engine", "plain_hf",
                 "--limit", "3", "--max-model-len", "512", "--out", str(out)]) == 0
    scores = json.loads(next(out.rglob("sib200_en/scores.json")).read_text(encoding="utf-8"))
    assert scores["engine"] == "plain_hf" and scores["route_basis"] == "named" and scores["n_samples"] == 3
    assert 0.0 <= scores["metrics"]["acc"] <= 1.0
