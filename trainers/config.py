"""The trainers' settings, one dataclass per concern, each checking its own fields (`validate`).

    TrainConfig        LoRA and optimisation: the training loop's knobs (trainers.lora)
    InstructionConfig  which English instructions, how many (trainers.instructions)
    TranslationConfig  the source language and the machine translator (trainers.sources, trainers.translators)
    ParallelConfig     parallel sentence pairs and their formats (trainers.parallel)
    AnswerConfig       SDRRL's self-distilled answers (trainers.sdrrl)
    CodeSwitchConfig   SDRRL's code-switched variants (trainers.sdrrl)

A trainer's Config composes the concerns it uses (SDRRLConfig holds all six); users still name each
setting flat (`lora_rank=8`, `sdrrl.parallel_per_lang=0`): harness.trainer_api routes a flat name
to the concern that declares it, so a setting name is declared once, in one concern. A trainer
that wants another default for one of them gives the concern's default factory that value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from harness.errors import HarnessError
from harness.langs import LANGUAGES
from harness.rules import FLAG_WORDS, Rule, above, at_least, between, check_rules, one_of
from trainers.instructions import BUILTIN_INSTRUCTIONS, check_instruction_file, check_source
from trainers.parallel import BUILTIN_PARALLEL, OPUS_100, PARALLEL_DIRECTIONS, parse_formats
from trainers.translators import TRANSLATORS, FileTranslator

# The projection layers of Llama/Mistral/Qwen-style decoders; vLLM serves LoRA adapters on these.
DEFAULT_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MAX_VLLM_LORA_RANK = 64  # harness.engines.EngineSettings.max_lora_rank
LR_SCHEDULERS = ("constant", "cosine", "linear")
PRECISIONS = ("auto", "bf16", "fp32")
SOURCE_LANGS = ("en", "fr")  # resource-rich source languages (paper: English and French, confirmed)
ANSWER_SOURCES = ("self", "reference")
CODE_SWITCH_SIDES = ("both", "question", "answer")


@dataclass
class TrainConfig:
    """LoRA and optimisation knobs of the shared training loop (trainers.lora.train_lora).

    Whether the SDRRL paper fine-tuned with LoRA or fully is not known (DESIGN.md); we train LoRA
    adapters (vLLM serves them). The defaults below are common LoRA instruction-tuning values: our
    defaults, not the paper's.
    """

    lora_rank: int = 16  # LoRA r; <= 64 so vLLM can serve the adapter (paper's value unknown)
    lora_alpha: int = 32  # LoRA scaling numerator (scale = alpha / r); paper's value unknown
    lora_dropout: float = 0.05  # dropout on the LoRA input; paper's value unknown
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))  # vLLM-servable set
    learning_rate: float = 2e-4  # peak AdamW learning rate; paper's value unknown
    epochs: int = 3  # passes over the training set; paper's value unknown
    max_steps: int = 0  # > 0: train exactly this many optimizer steps (overrides epochs); 0: use epochs
    batch_size: int = 16  # records per batch and process, whatever the grouping (equal budgets across trainers); our default
    grad_accum_steps: int = 1  # batches per optimizer step (records per step = batch_size x grad_accum_steps x processes)
    tokens_per_step: int = 0  # > 0: batches sized so a step holds about this many prompt and answer tokens, all processes (records per batch then a fraction, batch_size unused); 0: batch_size records. Our default 0; a comparison sets its first member's tokens per step
    micro_batch_size: int = 4  # records per forward pass (memory only: a step is one update either way)
    max_seq_len: int = 1024  # tokens per record; longer ones are cut, ones left with no answer token dropped
    warmup_ratio: float = 0.03  # fraction of optimizer steps with linear warm-up
    lr_scheduler: str = "cosine"  # after warm-up: cosine | linear | constant
    weight_decay: float = 0.0  # AdamW weight decay on the LoRA weights
    max_grad_norm: float = 1.0  # gradient clipping; 0 disables
    gradient_checkpointing: str = "auto"  # auto (on GPU only) | true | false
    precision: str = "auto"  # auto (bf16 on a bf16-capable GPU, else fp32) | bf16 | fp32
    same_batch: bool = True  # keep the records of one group in one batch where they fit (grouping; see GroupBatchSampler)
    log_every: int = 0  # print the loss every N steps; 0: about 20 lines per run
    checkpoint_every: int = 100  # save a resumable checkpoint every N optimizer steps (when the run gives a folder); 0: never

    RULES: ClassVar[dict] = {
        "lora_rank": between(1, MAX_VLLM_LORA_RANK, int),  # vLLM serves adapters up to rank 64
        "lora_alpha": above(0),  # the LoRA scale is alpha / r
        "lora_dropout": between(0, 1, hi_open=True),
        "target_modules": Rule(list, non_empty=True),
        "learning_rate": at_least(0, float),  # 0 is allowed: the regression check's mutation test trains with it
        "epochs": Rule(int, lo=0, note=">= 1 unless max_steps >= 1"),
        "max_steps": at_least(0),
        "batch_size": at_least(1),
        "grad_accum_steps": at_least(1),
        "tokens_per_step": at_least(0),
        "micro_batch_size": at_least(1),
        "max_seq_len": at_least(8),
        "warmup_ratio": between(0, 1),
        "lr_scheduler": one_of(*LR_SCHEDULERS),
        "weight_decay": at_least(0, float),
        "max_grad_norm": at_least(0, float),
        "gradient_checkpointing": one_of("auto", *FLAG_WORDS),
        "precision": one_of(*PRECISIONS),
        "log_every": at_least(0),
    }

    def validate(self, owner: str = "train") -> None:
        """Type, range and choice of every setting (harness.rules), and a run that trains something."""
        check_rules(self, owner)
        if self.epochs < 1 and self.max_steps < 1:
            raise HarnessError(f"bad value for {owner}.epochs: {self.epochs!r} with max_steps={self.max_steps!r} trains nothing; set epochs >= 1 or max_steps >= 1")


@dataclass
class InstructionConfig:
    instructions: str = "tatsu-lab/alpaca"  # hub id | local .json/.jsonl (Alpaca fields) | builtin:alpaca-smoke
    num_instructions: int = 5000  # instructions sampled by seed; 0 = all (paper: count unknown; our default)

    RULES: ClassVar[dict] = {"instructions": Rule(str, non_empty=True), "num_instructions": at_least(0)}

    def validate(self, owner: str = "train") -> None:
        check_rules(self, owner)
        check_source(self.instructions, f"{owner}.instructions", BUILTIN_INSTRUCTIONS)
        check_instruction_file(self.instructions)  # every row, now: not after the model has loaded


@dataclass
class TranslationConfig:
    source_lang: str = "en"  # resource-rich source language: en | fr (paper: both confirmed as sources)
    instructions_lang: str = "en"  # the language `instructions` is written in; MT into source_lang when different
    translator: str = "nllb"  # nllb | nllb-ct2 (NLLB through CTranslate2) | llm (the base model) | lexicon (offline, word by word) | file (paper: MT system unknown)
    translator_model: str = ""  # nllb: hub id or folder (default facebook/nllb-200-distilled-600M); llm: unused
    lexicon_dir: str = ""  # MUSE lexicons <dir>/<src>-<xx>.txt for translator=lexicon and code-switching; "" = shipped ones
    translations_file: str = ""  # translator=file: JSONL of {src_lang, tgt_lang, source, translation}

    RULES: ClassVar[dict] = {
        "translator": one_of(*TRANSLATORS),
        "source_lang": one_of(*SOURCE_LANGS),
        "instructions_lang": one_of(*LANGUAGES),
    }

    def validate(self, owner: str = "train") -> None:
        check_rules(self, owner)
        if self.translator == "file":
            if not Path(self.translations_file).is_file():
                raise HarnessError(f"bad value for {owner}.translations_file: {self.translations_file!r}; translator=file needs an existing JSONL file")
            FileTranslator(self.translations_file)  # reads and checks every row now, not after self-distillation
        if self.lexicon_dir and not Path(self.lexicon_dir).is_dir():
            raise HarnessError(f"bad value for {owner}.lexicon_dir: {self.lexicon_dir!r} is not a folder")


@dataclass
class ParallelConfig:
    parallel_data: str = OPUS_100  # hub id (OPUS-100 layout) | local folder of <src>-<xx>.jsonl | builtin:opus-smoke
    parallel_per_lang: int = 0  # parallel sentence pairs per target language (0: none)
    # Shares of the pairs per format. Third-party: the later paper that re-ran SDRRL describes its
    # parallel part as "partially translated data and completion data"; the shares are our default.
    parallel_formats: str = "partial:0.5,completion:0.5"  # translation | partial | completion, name:share,...
    parallel_direction: str = "src-xx"  # src-xx | xx-src | both (alternating): direction of translation/partial records

    RULES: ClassVar[dict] = {
        "parallel_data": Rule(str, non_empty=True),
        "parallel_per_lang": at_least(0),
        "parallel_direction": one_of(*PARALLEL_DIRECTIONS),
    }

    def validate(self, owner: str = "train") -> None:
        check_rules(self, owner)
        check_source(self.parallel_data, f"{owner}.parallel_data", BUILTIN_PARALLEL, local="folder")
        try:
            parse_formats(self.parallel_formats)
        except HarnessError as exc:
            raise HarnessError(f"bad value for {owner}.parallel_formats: {exc}") from None


@dataclass
class AnswerConfig:
    """Self-distillation (paper: confirmed that the model's own answers replace the references;
    decoding and length unknown: greedy and the limit below are our defaults)."""

    answer_source: str = "self"  # self (SDRRL) | reference (ablation: the data set's answers, no self-distillation)
    answer_max_new_tokens: int = 512  # greedy tokens for the model's own answers A*
    keep_truncated_answers: bool = False  # keep self-answers cut off at answer_max_new_tokens (default: drop them)
    keep_wrong_language_answers: bool = False  # keep self-answers py3langid puts in another language than the source (default: drop them)
    min_answer_chars: int = 1  # answers shorter than this (e.g. empty generations) drop the example

    RULES: ClassVar[dict] = {
        "answer_source": one_of(*ANSWER_SOURCES),
        "answer_max_new_tokens": at_least(1),
        "min_answer_chars": at_least(0),
    }

    def validate(self, owner: str = "train") -> None:
        check_rules(self, owner)


@dataclass
class CodeSwitchConfig:
    """Code-switching (third-party report; lexicons, count and ratio unknown: our defaults)."""

    code_switch_variants: int = 1  # code-switched variants per example and language; 0 = none (ablation)
    code_switch_ratio: float = 0.3  # fraction of the lexicon-known source words replaced
    code_switch_side: str = "both"  # which side is code-switched: both | question | answer (the other stays in the source)

    RULES: ClassVar[dict] = {
        "code_switch_variants": at_least(0),
        "code_switch_ratio": between(0, 1),
        "code_switch_side": one_of(*CODE_SWITCH_SIDES),
    }

    def validate(self, owner: str = "train") -> None:
        check_rules(self, owner)
