"""English SFT: the data set's English reference pairs only (no translation, no self-distillation)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.trainer_api import TrainContext
from trainers.config import InstructionConfig, TrainConfig
from trainers.instructions import load_instructions, question_of, record
from trainers.lora import LoRATrainer


@dataclass
class EnglishSFTConfig:
    # same_batch off: one record per example, so grouping changes nothing; kept off for clarity.
    train: TrainConfig = field(default_factory=lambda: TrainConfig(same_batch=False))
    instruction_set: InstructionConfig = field(default_factory=InstructionConfig)


class EnglishSFTTrainer(LoRATrainer):
    name = "english_sft"
    description = "vanilla SFT on the English reference instruction data"
    Config = EnglishSFTConfig

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        examples = load_instructions(self.config.instruction_set.instructions, self.config.instruction_set.num_instructions, ctx.seed)
        return [record(ex["id"], "en_ref", "en", question_of(ex), ex["output"]) for ex in examples if ex["output"]]
