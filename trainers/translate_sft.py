"""translate-then-SFT: the data set's reference answers, machine-translated into each target
language, plus the English originals. No self-distillation: the baseline SDRRL is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.trainer_api import TrainContext
from trainers.lora import LoRATrainer
from trainers.sources import (
    TranslationConfig,
    add_parallel,
    kind_counts,
    load_instructions,
    make_config_translator,
    question_of,
    record,
    translate_pairs,
)


@dataclass
class TranslateSFTConfig(TranslationConfig):
    include_english: bool = True  # keep the English (Q, A_ref) pairs beside their translations
    parallel_per_lang: int = 0  # translation instructions per language; 0: the plain translate-then-SFT baseline
    same_batch: bool = False  # ordinary shuffled batches: same-batch grouping is part of SDRRL, not of this baseline


class TranslateSFTTrainer(LoRATrainer):
    name = "translate_sft"
    description = "translate-then-SFT: reference Q and A machine-translated into each language, plus English"
    Config = TranslateSFTConfig

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        from rich.console import Console

        cfg: TranslateSFTConfig = self.config
        console = Console(stderr=True)
        langs = [lang for lang in ctx.target_langs if not lang.is_english]
        examples = [ex for ex in load_instructions(cfg.instructions, cfg.num_instructions, ctx.seed) if ex["output"]]
        questions = [question_of(ex) for ex in examples]
        answers = [ex["output"] for ex in examples]
        console.print(f"translate_sft: translating {len(examples)} reference pairs into {', '.join(l.code for l in langs)} ({cfg.translator})")
        translated = translate_pairs(make_config_translator(cfg, ctx), questions, answers, langs) if langs else {}
        records = []
        for n, (ex, q, a) in enumerate(zip(examples, questions, answers)):
            if cfg.include_english:
                records.append(record(ex["id"], "en_ref", "en", q, a))
            for lang in langs:
                records.append(record(ex["id"], "mt_ref", lang.code, translated[lang.code][0][n], translated[lang.code][1][n]))
        records = add_parallel(records, langs, cfg, ctx.seed)
        console.print(f"translate_sft: {len(records)} records: {kind_counts(records)}")
        return records
