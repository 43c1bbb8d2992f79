"""translate-then-SFT: the data set's reference answers, machine-translated into each target
language, plus the source-language originals. No self-distillation: the baseline SDRRL is compared
with. With parallel_per_lang > 0 it trains on the same parallel data as SDRRL (an ablation that
separates the parallel data's effect from self-distillation's).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.langs import Language
from harness.trainer_api import TrainContext
from trainers.lora import LoRATrainer
from trainers.sources import (
    TranslationConfig,
    add_parallel,
    check_translation_sources,
    kind_counts,
    load_source_instructions,
    make_config_translator,
    question_of,
    record,
    source_language,
    translate_pairs,
)


@dataclass
class TranslateSFTConfig(TranslationConfig):
    include_source: bool = True  # keep the source-language (Q, A_ref) pairs beside their translations
    parallel_per_lang: int = 0  # parallel records per language; 0: the plain translate-then-SFT baseline
    same_batch: bool = False  # ordinary shuffled batches: grouping is part of SDRRL, not of this baseline


class TranslateSFTTrainer(LoRATrainer):
    name = "translate_sft"
    description = "translate-then-SFT: reference Q and A machine-translated into each language, plus the source language"
    Config = TranslateSFTConfig
    # The same parallel data as SDRRL in this comparison: separates its effect from self-distillation's.
    ablations = {"parallel": {k: "@sdrrl" for k in ("parallel_data", "parallel_per_lang", "parallel_formats", "parallel_direction")}}

    def check(self, languages: list[Language]) -> None:
        src = source_language(self.config)
        check_translation_sources(self.config, [lang for lang in languages if lang.code != src.code])

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        from rich.console import Console

        cfg: TranslateSFTConfig = self.config
        console = Console(stderr=True)
        src = source_language(cfg)
        langs = ctx.targets(src.code)
        self.check(ctx.languages)
        translator = make_config_translator(cfg, ctx)
        examples, origin = load_source_instructions(cfg, ctx.seed, translator)
        examples = [ex for ex in examples if ex["output"]]
        questions = [question_of(ex) for ex in examples]
        answers = [ex["output"] for ex in examples]
        console.print(f"translate_sft: translating {len(examples)} reference pairs into {', '.join(l.code for l in langs)} ({cfg.translator})")
        translated = translate_pairs(translator, questions, answers, src, langs) if langs else {}
        records = []
        for n, (ex, q, a) in enumerate(zip(examples, questions, answers)):
            if cfg.include_source:
                records.append(record(ex["id"], f"{src.code}_ref", src.code, q, a))
            for lang in langs:
                records.append(record(ex["id"], "mt_ref", lang.code, translated[lang.code][0][n], translated[lang.code][1][n]))
        records = add_parallel(records, src, langs, cfg, ctx.seed)
        self.data_stats = {"instructions_from": origin, "records": len(records), "by_kind": kind_counts(records)}
        console.print(f"translate_sft: {len(records)} records: {self.data_stats['by_kind']}")
        return records
