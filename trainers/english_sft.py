"""English SFT: the data set's English reference pairs only (no translation, no self-distillation)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.trainer_api import TrainContext
from trainers.lora import LoRATrainer
from trainers.sources import InstructionConfig, load_instructions, question_of, record


@dataclass
class EnglishSFTConfig(InstructionConfig):
    same_batch: bool = False  # one record per example: grouping changes nothing; kept off for clarity


class EnglishSFTTrainer(LoRATrainer):
    name = "english_sft"
    description = "vanilla SFT on the English reference instruction data"
    Config = EnglishSFTConfig

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        examples = load_instructions(self.config.instructions, self.config.num_instructions, ctx.seed)
        return [record(ex["id"], "en_ref", "en", question_of(ex), ex["output"]) for ex in examples if ex["output"]]
