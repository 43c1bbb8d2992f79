"""translate-then-SFT: the data set's reference answers, machine-translated into each target
language, plus the source-language originals. No self-distillation: the baseline SDRRL is compared
with. With parallel_per_lang > 0 it trains on the same parallel data as SDRRL (an ablation that
separates the parallel data's effect from self-distillation's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.core.langs import Language
from harness.core.rules import setting
from harness.trainer_api import TrainContext
from trainers.config import InstructionConfig, ParallelConfig, TrainConfig, TranslationConfig
from trainers.instructions import kind_counts, question_of, record
from trainers.lora import LoRATrainer
from trainers.parallel import add_parallel
from trainers.sources import (
    check_translation_sources,
    load_source_instructions,
    make_config_translator,
    source_language,
    translate_pairs,
)


@dataclass
class TranslateSFTConfig:
    # same_batch off: ordinary shuffled batches; grouping is part of SDRRL, not of this baseline.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(same_batch=False))
    instruction_set: InstructionConfig = field(default_factory=InstructionConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    # parallel_per_lang 0 (the default): the plain translate-then-SFT baseline.
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    include_source: bool = setting(True, paper="unknown", help="keep the source-language (Q, A_ref) pairs beside their translations")


class TranslateSFTTrainer(LoRATrainer):
    name = "translate_sft"
    description = "translate-then-SFT: reference Q and A machine-translated into each language, plus the source language"
    Config = TranslateSFTConfig
    # The same parallel data as SDRRL in this comparison: separates its effect from self-distillation's.
    ablations = {"parallel": {k: "@sdrrl" for k in ("parallel_data", "parallel_per_lang", "parallel_formats", "parallel_direction")}}

    def check(self, languages: list[Language]) -> None:
        cfg: TranslateSFTConfig = self.config
        targets = [lang for lang in languages if lang.code != cfg.translation.source_lang]
        check_translation_sources(cfg.translation, cfg.parallel, targets)

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        from harness.core.progress import run_line

        cfg: TranslateSFTConfig = self.config
        src = source_language(cfg.translation)
        langs = ctx.targets(src.code)
        self.check(ctx.languages)
        translator = make_config_translator(cfg.translation, ctx)
        examples, origin = load_source_instructions(cfg.instruction_set, cfg.translation, ctx.seed, translator)
        examples = [ex for ex in examples if ex["output"]]
        questions = [question_of(ex) for ex in examples]
        answers = [ex["output"] for ex in examples]
        run_line(f"{self.name}: translating {len(examples)} reference pairs into {', '.join(l.code for l in langs)} ({cfg.translation.translator})")
        translated = translate_pairs(translator, questions, answers, src, langs) if langs else {}
        records = []
        for n, (ex, q, a) in enumerate(zip(examples, questions, answers)):
            if cfg.include_source:
                records.append(record(ex["id"], f"{src.code}_ref", src.code, q, a))
            for lang in langs:
                records.append(record(ex["id"], "mt_ref", lang.code, translated[lang.code][0][n], translated[lang.code][1][n]))
        records = add_parallel(records, src, langs, cfg.parallel, ctx.seed)
        self.data_stats = {"instructions_from": origin, "records": len(records), "by_kind": kind_counts(records)}
        run_line(f"{self.name}: {len(records)} records: {self.data_stats['by_kind']}")
        return records
