"""A plugin trainer that builds its own recipe (issue 27 item 6): `mt_only`, machine-translated
question/answer pairs only, written outside the repository with the data-building helpers that
harness.plugin exports and nothing else, registered through a dist-info entry point, run end to end."""

from __future__ import annotations

import ast
import sys
import textwrap

import pytest

from plugin_packages import install_plugin

from harness.app.cli import main
from harness.core.runstore import read_json, read_jsonl

PLUGIN = textwrap.dedent('''
    """mt_only: the source instructions' reference pairs machine-translated into every target language,
    and nothing else (no source-language records, no parallel data): a third party's recipe."""
    from dataclasses import dataclass, field

    from harness.plugin import (InstructionConfig, Language, LoRATrainer, ParallelConfig, TrainConfig, TrainContext,
                                TranslationConfig, check_translation_sources, kind_counts, load_source_instructions,
                                make_config_translator, question_of, record, source_language, translate_pairs)


    @dataclass
    class MTOnlyConfig:
        train: TrainConfig = field(default_factory=TrainConfig)
        instruction_set: InstructionConfig = field(default_factory=InstructionConfig)
        translation: TranslationConfig = field(default_factory=TranslationConfig)
        parallel: ParallelConfig = field(default_factory=ParallelConfig)  # none by default: MT records only


    class MTOnlyTrainer(LoRATrainer):
        name = "mt_only"
        description = "machine-translated reference pairs only (a plugin)"
        Config = MTOnlyConfig

        def check(self, languages: list[Language]) -> None:
            cfg = self.config
            check_translation_sources(cfg.translation, cfg.parallel, [l for l in languages if l.code != cfg.translation.source_lang])

        def build_dataset(self, ctx: TrainContext) -> list[dict]:
            cfg = self.config
            src = source_language(cfg.translation)
            langs = ctx.targets(src.code)
            translator = make_config_translator(cfg.translation, ctx)
            examples, origin = load_source_instructions(cfg.instruction_set, cfg.translation, ctx.seed, translator)
            examples = [ex for ex in examples if ex["output"]]
            questions, answers = [question_of(ex) for ex in examples], [ex["output"] for ex in examples]
            translated = translate_pairs(translator, questions, answers, src, langs)
            records = [record(ex["id"], "mt", lang.code, translated[lang.code][0][n], translated[lang.code][1][n])
                       for n, ex in enumerate(examples) for lang in langs]
            self.data_stats = {"instructions_from": origin, "by_kind": kind_counts(records)}
            return records
''')


@pytest.fixture()
def mt_only_on_path(tmp_path, monkeypatch):
    site = install_plugin(tmp_path / "site", "mt_only_plugin", PLUGIN, "sdrrl_harness.trainers", "mt_only",
                          "mt_only_plugin:MTOnlyTrainer")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    yield
    sys.modules.pop("mt_only_plugin", None)


def test_the_recipe_imports_only_the_plugin_api_and_every_helper_it_uses_is_documented():
    import harness.plugin as api

    imported = [node for node in ast.walk(ast.parse(PLUGIN)) if isinstance(node, ast.ImportFrom)]
    ours = {n.module for n in imported if n.module.split(".")[0] in ("harness", "trainers", "tasks", "reports")}
    assert ours == {"harness.plugin"}
    names = [alias.name for n in imported if n.module == "harness.plugin" for alias in n.names]
    assert set(names) <= set(api.__all__)
    helpers = ("source_language", "load_source_instructions", "make_config_translator", "translate_pairs",
               "check_translation_sources", "add_parallel", "parallel_records", "load_parallel", "make_translator", "chat")
    assert all((getattr(api, h).__doc__ or "").strip() for h in helpers), "an exported helper lacks its docstring"


@pytest.mark.slow
def test_mt_only_runs_from_outside_the_repository(mt_only_on_path, tiny_llama, tmp_path, eval_cache):
    runs = tmp_path / "runs"
    assert main(["run", "--trainer", "mt_only", "--model", str(tiny_llama), "--suite", "smoke", "--langs", "en,cs,ja",
                 "--tasks", "belebele_cs", "--runs-dir", str(runs), "--name", "mt", "--limit", "2", "--max-model-len", "512",
                 "--set", "num_instructions=4", "--set", "max_steps=2"]) == 0
    run = runs / "mt"
    records = read_jsonl(run / "data" / "train.jsonl") + read_jsonl(run / "data" / "heldout.jsonl")
    assert {r["kind"] for r in records} == {"mt"} and {r["lang"] for r in records} == {"cs", "ja"}
    assert len(records) == 2 * 4  # every instruction, once per target language
    manifest = read_json(run / "manifest.json")["stages"]
    assert manifest["train"]["steps"] == 2 and manifest["data"]["trainer_stats"]["by_kind"] == {"mt/cs": 4, "mt/ja": 4}
    assert (run / "adapter" / "adapter_model.safetensors").exists() and (run / "report.html").exists()
