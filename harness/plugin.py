"""The public API for third-party trainers: a trainer package imports from here and nowhere else.

A trainer is a class registered under the entry-point group `sdrrl_harness.trainers`, in the
plugin package's pyproject.toml:

    [project.entry-points."sdrrl_harness.trainers"]
    my_sft = "my_package.trainer:MySFTTrainer"

    from dataclasses import dataclass, field
    from harness.plugin import InstructionConfig, LoRATrainer, TrainConfig, TrainContext, load_instructions, record, setting

    @dataclass
    class MySFTConfig:
        train: TrainConfig = field(default_factory=TrainConfig)           # the shared LoRA loop's settings
        instruction_set: InstructionConfig = field(default_factory=InstructionConfig)
        keep_short: bool = setting(True, paper="n/a", help="what it does, shown by `harness list settings`")

    class MySFTTrainer(LoRATrainer):       # LoRATrainer.train is train_lora on config.train
        name = "my_sft"                    # the entry-point name: logs, run names and reports use it
        description = "one line for `harness list trainers`"
        Config = MySFTConfig

        def build_dataset(self, ctx: TrainContext) -> list[dict]:
            ...                            # log with f"{self.name}: ..."; records from `record(...)`

An engine is a class registered under the entry-point group `sdrrl_harness.engines`:

    [project.entry-points."sdrrl_harness.engines"]
    my_engine = "my_package.engine:MyEngine"

    from harness.plugin import Engine, EngineSettings, Generation

    class MyEngine(Engine):
        name = "my_engine"                               # the entry-point name
        request_types = ("loglikelihood", "generation")  # what it runs (ENGINE_REQUEST_TYPES)
        adapter_servings = ("merged",)                   # "merged" (a base model to it) and/or "lora"
        lora_preferred_for = ()                          # request types --adapter-serving auto serves as a LoRA on a GPU

        def model_args(self, model_dir, adapter, settings): ...   # keyword arguments for `lm`
        def lm(self, args, hf_batch_size): ...                    # an lm-eval LM (loglikelihood, generate_until)
        def generate_chat(self, model_dir, conversations, max_new_tokens, settings, on_batch=None): ...
        def prompt_generator(self, model_dir, tokenizer, as_chat, max_new_tokens): ...

`harness list engines` then lists it, `--engine my_engine` runs every request type on it, `harness
doctor` shows it, and `harness selftest` checks and times it, so `--engine auto` may route to it.

A trainer that builds its own recipe uses the data-building helpers below (the block "building a
training set"): the configured translator (`make_config_translator`), the source-language instructions
(`load_source_instructions`), question/answer pairs translated into every target language
(`translate_pairs`), parallel-data records (`add_parallel`), and the plan-stage checks they need
(`check_translation_sources`). tests/test_plugin_recipe.py builds an `mt_only` trainer from them alone.

`harness list trainers` then lists a trainer, `harness list settings --trainer my_sft` shows its settings,
and `harness run --trainer my_sft` validates them (each concern's rules, then the Config's own
`validate`) before any model is loaded. A built-in trainer is extended by subclassing it and its Config
from here (with its own `name`). What lies behind these names may move between modules; these names stay.
"""

from __future__ import annotations

from harness.core.errors import HarnessError
from harness.core.langs import Language, get_language
from harness.core.rules import PAPER_WORDS, Rule, above, at_least, between, check_rules, one_of, setting
# --- engines (plugin engines: entry-point group sdrrl_harness.engines)
from harness.engines import ENTRY_POINT_GROUP as ENGINE_ENTRY_POINT_GROUP
from harness.engines import REQUEST_TYPES as ENGINE_REQUEST_TYPES
from harness.engines import Engine, EngineSettings, Generation, OnBatch, all_engines, get_engine
from harness.engines.base import context_length
# --- end engines
from harness.trainer_api import (
    ENTRY_POINT_GROUP,
    SettingInfo,
    TrainContext,
    Trainer,
    build_config,
    get_trainer_class,
    load_trainers,
    setting_infos,
    settings_of,
)
from trainers.base import BaseConfig, BaseModelTrainer
from trainers.config import AnswerConfig, CodeSwitchConfig, InstructionConfig, ParallelConfig, TrainConfig, TranslationConfig
from trainers.english_sft import EnglishSFTConfig, EnglishSFTTrainer
from trainers.instructions import kind_counts, load_instructions, question_of, record
from trainers.lora import LoRATrainer, train_lora
from trainers.sdrrl import SDRRLConfig, SDRRLTrainer
from trainers.translate_sft import TranslateSFTConfig, TranslateSFTTrainer

# --- building a training set: the helpers the built-in trainers build their recipes from ---
from trainers.instructions import chat
from trainers.parallel import add_parallel, load_parallel, parallel_records
from trainers.sources import (check_translation_sources, load_source_instructions, make_config_translator, source_language,
                              translate_pairs)
from trainers.translators import TRANSLATORS, Translator, make_translator

__all__ = [
    # the interface and its registry
    "Trainer", "TrainContext", "LoRATrainer", "train_lora", "ENTRY_POINT_GROUP", "load_trainers", "get_trainer_class",
    # settings: the concerns a Config composes, fields with help, rules, the flat view
    "TrainConfig", "InstructionConfig", "TranslationConfig", "ParallelConfig", "AnswerConfig", "CodeSwitchConfig",
    "setting", "PAPER_WORDS", "Rule", "above", "at_least", "between", "one_of", "check_rules",
    "build_config", "settings_of", "setting_infos", "SettingInfo",
    # training records and their data
    "record", "question_of", "load_instructions", "kind_counts",
    # languages and errors
    "Language", "get_language", "HarnessError",
    # engines: the interface, its registry and what a backend needs
    "Engine", "EngineSettings", "Generation", "OnBatch", "ENGINE_ENTRY_POINT_GROUP", "ENGINE_REQUEST_TYPES",
    "all_engines", "get_engine", "context_length",
    # the built-in trainers and their Configs, to extend
    "BaseModelTrainer", "BaseConfig", "EnglishSFTTrainer", "EnglishSFTConfig",
    "TranslateSFTTrainer", "TranslateSFTConfig", "SDRRLTrainer", "SDRRLConfig",
    # building a training set: source instructions, translation, parallel data, chat records
    "source_language", "load_source_instructions", "make_config_translator", "translate_pairs", "check_translation_sources",
    "Translator", "TRANSLATORS", "make_translator", "add_parallel", "parallel_records", "load_parallel", "chat",
]
