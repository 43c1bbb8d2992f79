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

Each field is a `setting(...)` (harness.core.rules): its help text and what backs its default (`paper`:
confirmed by the paper's own text, third-party report only, unknown = our default, n/a = how the
harness runs) travel with it; `harness list settings --trainer T` prints them. docs/FIDELITY.md
sets out the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.core.errors import HarnessError
from harness.core.langs import LANGUAGES
from harness.core.rules import FLAG_WORDS, MAX_EPOCHS, MAX_STEPS, Rule, above, at_least, between, check_rules, one_of, setting
from trainers.instructions import BUILTIN_INSTRUCTIONS, check_instruction_file, check_source
from trainers.kernels import KERNELS
from trainers.parallel_choices import BUILTIN_PARALLEL, OPUS_100, PARALLEL_DIRECTIONS, parse_formats
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
    defaults (the paper's hyper-parameters are not known).
    """

    lora_rank: int = setting(16, paper="unknown", help="LoRA rank r; at most 64 so vLLM can serve the adapter")
    lora_alpha: int = setting(32, paper="unknown", help="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = setting(0.05, paper="unknown", help="dropout on the LoRA input")
    target_modules: list[str] = setting(
        factory=lambda: list(DEFAULT_TARGET_MODULES), paper="unknown",
        help="the layers that get LoRA weights, comma-separated; the default is every projection of a "
             "Llama/Mistral/Qwen-style decoder, the set vLLM serves adapters on")
    learning_rate: float = setting(2e-4, paper="unknown", help="peak AdamW learning rate")
    epochs: int = setting(3, paper="unknown", help="passes over the training set")
    max_steps: int = setting(0, paper="n/a", help="> 0: train exactly this many optimizer steps (overrides epochs); 0: use epochs")
    batch_size: int = setting(16, paper="unknown", help="records per batch and process, whatever the grouping (equal budgets across trainers)")
    grad_accum_steps: int = setting(1, paper="unknown", help="batches per optimizer step (records per step = batch_size x grad_accum_steps x processes)")
    tokens_per_step: int = setting(
        0, paper="n/a",
        help="> 0: batches sized so a step holds about this many prompt and answer tokens, all processes (records "
             "per batch then a fraction, batch_size unused); 0: batch_size records. Our default 0; a comparison "
             "sets its first member's tokens per step for the others")
    micro_batch_size: int = setting(4, paper="n/a", help="records per forward pass (memory only: a step is one update either way)")
    max_seq_len: int = setting(1024, paper="unknown", help="tokens per record; longer ones are cut, ones left with no answer token dropped")
    warmup_ratio: float = setting(0.03, paper="unknown", help="fraction of optimizer steps with linear warm-up")
    lr_scheduler: str = setting("cosine", paper="unknown", help="the learning rate after warm-up: cosine | linear | constant")
    weight_decay: float = setting(0.0, paper="unknown", help="AdamW weight decay on the LoRA weights")
    max_grad_norm: float = setting(1.0, paper="unknown", help="gradient clipping; 0 disables it")
    gradient_checkpointing: str = setting(
        "auto", paper="n/a",
        help="recompute activations to save memory: auto | true | false. auto (our rule): on only on a GPU where weights "
             "(parameters x 2 bytes in bf16) + activations (micro_batch_size x max_seq_len tokens x layers x hidden x 34 "
             "bytes in bf16, plus tokens x vocab x 8 bytes of fp32 logits) exceed 85% of the free GPU memory; off on CPU")
    precision: str = setting("auto", paper="n/a", help="auto (bf16 on a bf16-capable GPU, else fp32) | bf16 | fp32")
    packing: bool = setting(
        False, paper="n/a",
        help="padding-free micro-batches: a micro-batch's records joined into one row, positions restarting in each, "
             "so no pad token is computed and attention stays inside a record (transformers' packed-sequence masks; "
             "variable-length kernels with flash attention). Losses equal the padded ones within float noise. Our "
             "default false: on the CPU it measured 6% slower (benchmarks/RESULTS.md section 13), and its GPU gain is "
             "not measured yet")
    kernels: str = setting(
        "none", paper="n/a",
        help="fused training kernels: none | liger (liger-kernel's RMSNorm, SwiGLU and fused linear cross-entropy, "
             "which never holds the logits; a CUDA GPU, liger-kernel installed, and a Llama/Mistral/Qwen2/Qwen3 model). "
             "Our default none: liger's gain is not measured here yet (benchmarks/gpu_e2e.sh measures it)")
    same_batch: bool = setting(
        True, paper="third-party",
        help="keep the records of one group (a source example's variants) in one batch where they fit; a third "
             "party reports 'within the same batch', how batches are formed is our assumption (ablation: false)")
    log_every: int = setting(0, paper="n/a", help="print the loss every N steps; 0: about 20 lines per run")
    checkpoint_every: int = setting(100, paper="n/a", help="save a resumable checkpoint every N optimizer steps (when the run gives a folder); 0: never")

    RULES: ClassVar[dict] = {
        "lora_rank": between(1, MAX_VLLM_LORA_RANK, int),  # vLLM serves adapters up to rank 64
        "lora_alpha": above(0),  # the LoRA scale is alpha / r
        "lora_dropout": between(0, 1, hi_open=True),
        "target_modules": Rule(list, non_empty=True),
        "learning_rate": at_least(0, float),  # 0 is allowed: the regression check's mutation test trains with it
        "epochs": Rule(int, lo=0, hi=MAX_EPOCHS, note=">= 1 unless max_steps >= 1"),
        "max_steps": Rule(int, lo=0, hi=MAX_STEPS),
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
        "kernels": one_of(*KERNELS),
        "log_every": at_least(0),
    }

    def validate(self, owner: str = "train") -> None:
        """Type, range and choice of every setting (harness.core.rules), and a run that trains something."""
        check_rules(self, owner)
        if self.epochs < 1 and self.max_steps < 1:
            raise HarnessError(f"bad value for {owner}.epochs: {self.epochs!r} with max_steps={self.max_steps!r} trains nothing; set epochs >= 1 or max_steps >= 1")


@dataclass
class InstructionConfig:
    instructions: str = setting(
        "tatsu-lab/alpaca", paper="unknown",
        help="the instruction data: hub id | local .json/.jsonl (Alpaca fields) | builtin:alpaca-smoke")
    num_instructions: int = setting(5000, paper="unknown", help="instructions sampled by seed; 0 = all")

    RULES: ClassVar[dict] = {"instructions": Rule(str, non_empty=True), "num_instructions": at_least(0)}

    def validate(self, owner: str = "train") -> None:
        check_rules(self, owner)
        check_source(self.instructions, f"{owner}.instructions", BUILTIN_INSTRUCTIONS)
        check_instruction_file(self.instructions)  # every row, now: not after the model has loaded


@dataclass
class TranslationConfig:
    source_lang: str = setting("en", paper="confirmed", help="the resource-rich source language: en | fr (the paper names both)")
    instructions_lang: str = setting(
        "en", paper="n/a", help="the language `instructions` is written in; machine-translated into source_lang when different")
    translator: str = setting(
        "nllb", paper="unknown",
        help="machine translation: nllb | nllb-ct2 (NLLB through CTranslate2) | llm (the base model) | "
             "lexicon (offline, word by word) | file (precomputed)")
    translator_model: str = setting(
        "", paper="unknown", help="nllb, nllb-ct2: hub id or folder (\"\" = facebook/nllb-200-distilled-600M); llm: unused")
    lexicon_dir: str = setting(
        "", paper="unknown",
        help="MUSE lexicons <dir>/<src>-<xx>.txt for translator=lexicon and code-switching; \"\" = the shipped ones")
    translations_file: str = setting("", paper="n/a", help="translator=file: JSONL of {src_lang, tgt_lang, source, translation}")

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
    parallel_data: str = setting(
        OPUS_100, paper="unknown",
        help="parallel sentence pairs (never FLORES): hub id (OPUS-100 layout) | local folder of <src>-<xx>.jsonl | builtin:opus-smoke")
    parallel_per_lang: int = setting(0, paper="unknown", help="parallel sentence pairs per target language (0: none)")
    parallel_formats: str = setting(
        "partial:0.5,completion:0.5", paper="third-party",
        help="shares of the pairs per format, name:share,... of translation | partial | completion; the later paper "
             "that re-ran SDRRL describes its parallel part as \"partially translated data and completion data\", "
             "the shares are our default")
    parallel_direction: str = setting(
        "src-xx", paper="unknown", help="direction of translation and partial records: src-xx | xx-src | both (alternating)")

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

    answer_source: str = setting(
        "self", paper="confirmed",
        help="self: the model's own answers A* (self-distillation) | reference (ablation: the data set's answers)")
    answer_max_new_tokens: int = setting(512, paper="unknown", help="greedy tokens for the model's own answers A*")
    keep_truncated_answers: bool = setting(
        False, paper="unknown", help="keep self-answers cut off at answer_max_new_tokens (false: drop them, counted)")
    keep_wrong_language_answers: bool = setting(
        False, paper="unknown", help="keep self-answers py3langid puts in another language than the source (false: drop them, counted)")
    min_answer_chars: int = setting(1, paper="unknown", help="answers shorter than this (e.g. empty generations) drop the example")

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

    code_switch_variants: int = setting(1, paper="unknown", help="code-switched variants per example and language; 0 = none (ablation). Code-switching itself is a third party's report")
    code_switch_ratio: float = setting(0.3, paper="unknown", help="fraction of the lexicon-known source words replaced")
    code_switch_side: str = setting(
        "both", paper="unknown", help="which side is code-switched: both | question | answer (the other stays in the source)")

    RULES: ClassVar[dict] = {
        "code_switch_variants": at_least(0),
        "code_switch_ratio": between(0, 1),
        "code_switch_side": one_of(*CODE_SWITCH_SIDES),
    }

    def validate(self, owner: str = "train") -> None:
        check_rules(self, owner)
