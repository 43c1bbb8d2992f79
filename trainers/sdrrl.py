"""SDRRL: Self-Distillation from Resource-Rich Languages (Zhang et al., ACL 2024), as we implement it.

What the paper confirms, what only third parties report and what is unknown is set out in
docs/FIDELITY.md; every choice below is a named Config field whose comment says which.

build_dataset, for each sampled instruction Q in the source language S (English or French):
  1. A*: the base model's own greedy answer (self-distillation; cached in the work folder).
     Answers cut off at the token limit are dropped (keep_truncated_answers=false), and so are answers
     identified as another language than the source (keep_wrong_language_answers=false); both counted.
  2. for each target language xx: MT(Q), MT(A*) -> a target-language pair;
  3. `code_switch_variants` code-switched variants of (Q, A*): a fraction `code_switch_ratio` of
     the lexicon-known source words replaced by xx words (MUSE lexicons);
  4. plus (Q, A*) itself, so the resource-rich language is kept.
All of these share the source example's `group`; the batch sampler keeps a group in one batch
where it fits (same_batch). Then `parallel_per_lang` sentence pairs per language (OPUS-100 by
default, never FLORES) are added in the configured formats (trainers/sources.py).

Ablations are settings: answer_source=reference (the data set's answers instead of A*),
code_switch_variants=0, parallel_per_lang=0, same_batch=false.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.langs import Language
from harness.core.runstore import JsonlCache, sha256_json, write_json
from harness.core.rules import setting
from harness.trainer_api import TrainContext
from trainers.codeswitch import code_switch, load_lexicon, translatable_words
from trainers.config import AnswerConfig, CodeSwitchConfig, InstructionConfig, ParallelConfig, TrainConfig, TranslationConfig
from trainers.generation import CacheBatches, generate
from trainers.instructions import kind_counts, question_of, record
from trainers.lexicons import BUILTIN_LEXICON_DIR, find_lexicon_file, lexicon_from_folder, resolve_lexicon
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
class SDRRLConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    instruction_set: InstructionConfig = field(default_factory=InstructionConfig)
    translation: TranslationConfig = field(default_factory=TranslationConfig)
    # Parallel data (third-party: "a small amount"; the count is unknown: our default).
    parallel: ParallelConfig = field(default_factory=lambda: ParallelConfig(parallel_per_lang=200))
    answers: AnswerConfig = field(default_factory=AnswerConfig)
    include_source: bool = setting(
        True, paper="unknown",
        help="keep (Q, A*) in the source language (the paper aims to keep source-language performance; how is unknown)")
    code_switch: CodeSwitchConfig = field(default_factory=CodeSwitchConfig)


def self_distill(ctx: TrainContext, questions: list[str], max_new_tokens: int) -> list[tuple[str, bool]]:
    """The base model's greedy (answer, truncated) pairs, cached in work_dir/self_answers.jsonl
    (key: model + prompt + length + engine settings that change the output). The cache grows batch
    by batch, so a run killed mid-generation resumes with the answers it had finished."""
    cache = JsonlCache(Path(ctx.work_dir) / "self_answers.jsonl")
    model_id = str(Path(ctx.model_dir).resolve())
    keys = [sha256_json([model_id, q, max_new_tokens, ctx.settings.max_model_len, "v2"]) for q in questions]
    todo = {k: q for k, q in zip(keys, questions) if k not in cache}
    if todo:
        conversations = [[{"role": "user", "content": q}] for q in todo.values()]
        batches = CacheBatches(cache.path, [{"key": k, "model": model_id, "question": q} for k, q in todo.items()],
                               "answer", "truncated")
        answers = generate(Path(ctx.model_dir), conversations, max_new_tokens, ctx.engine, ctx.settings, batches)
        cache.add(batches.filled(0, answers))  # reads what the batches stored; writes what an engine left out
    return [(cache[k]["answer"], bool(cache[k]["truncated"])) for k in keys]


def wrong_language(pairs: list[tuple[str, bool]], source_lang: str, cfg: AnswerConfig) -> list[bool]:
    """Per self-answer: identified (py3langid) as another language than the source, so not a source-
    language answer to distil. Answers under MIN_LANGID_LETTERS letters are not judged (too short to tell)."""
    if cfg.answer_source != "self" or cfg.keep_wrong_language_answers:
        return [False] * len(pairs)
    from harness.evaluation import langid

    return [sum(ch.isalpha() for ch in a) >= MIN_LANGID_LETTERS and langid.detect(a) != source_lang for a, _ in pairs]


MIN_LANGID_LETTERS = 20  # shorter answers ("42", "Yes.") are kept: language ID cannot tell them apart


class SDRRLTrainer(LoRATrainer):
    name = "sdrrl"
    description = "SDRRL: self-distilled answers in a resource-rich language, translated and code-switched, plus parallel data"
    Config = SDRRLConfig
    ablations = {
        "ref_answers": {"answer_source": "reference"},  # no self-distillation: the data set's answers
        "no_cs": {"code_switch_variants": 0},  # no code-switched variants
        "no_parallel": {"parallel_per_lang": 0},  # no parallel-corpus records
        "no_grouping": {"same_batch": False},  # ordinary shuffled batches
    }

    def check(self, languages: list[Language]) -> None:
        cfg: SDRRLConfig = self.config
        targets = [lang for lang in languages if lang.code != cfg.translation.source_lang]
        check_translation_sources(cfg.translation, cfg.parallel, targets)  # lexicons: harness.services.doctor's plan-stage check (they may be fetched or induced)

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        from harness.core.progress import run_line, shown_path

        cfg: SDRRLConfig = self.config
        src = source_language(cfg.translation)
        langs = ctx.targets(src.code)
        self.check(ctx.languages)
        lexicons = self._lexicons(langs, ctx) if cfg.code_switch.code_switch_variants > 0 else {}
        translator = make_config_translator(cfg.translation, ctx)

        examples, origin = load_source_instructions(cfg.instruction_set, cfg.translation, ctx.seed, translator)
        run_line(f"{self.name}: {len(examples)} {src.name} instructions from {shown_path(cfg.instruction_set.instructions) if str(cfg.instruction_set.instructions).startswith('/') else cfg.instruction_set.instructions}; answers: {cfg.answers.answer_source}")
        examples, questions, answers, answer_stats = self._answers(ctx, examples)

        run_line(f"{self.name}: translating {len(questions)} question/answer pairs into {', '.join(l.code for l in langs)} ({cfg.translation.translator})")
        translated = translate_pairs(translator, questions, answers, src, langs) if langs else {}
        records, variant_stats = self._records(examples, questions, answers, translated, src, langs, lexicons, ctx.seed)
        records = add_parallel(records, src, langs, cfg.parallel, ctx.seed)

        self.data_stats = {
            "instructions_from": origin,
            **answer_stats,
            **variant_stats,
            "records": len(records),
            "groups": len({r["group"] for r in records}),
            "by_kind": kind_counts(records),
        }
        write_json(Path(ctx.work_dir) / "sdrrl_stats.json", self.data_stats)
        run_line(f"{self.name}: {len(records)} records in {self.data_stats['groups']} groups: {self.data_stats['by_kind']}")
        return records

    def _records(self, examples: list[dict], questions: list[str], answers: list[str], translated: dict, src: Language,
                 langs: list[Language], lexicons: dict[str, dict], seed: int) -> tuple[list[dict], dict]:
        """Each example's group: (Q, A*) in the source language, then per language its translation and
        code-switched variants; and how the code-switching went."""
        cfg: SDRRLConfig = self.config
        records: list[dict] = []
        switched = {lang.code: [0, 0] for lang in langs}  # replaced, translatable
        skipped_variants = 0
        for n, (ex, q, a) in enumerate(zip(examples, questions, answers)):
            group = ex["id"]
            if cfg.include_source:
                records.append(record(group, f"{src.code}_{cfg.answers.answer_source}", src.code, q, a))
            for lang in langs:
                records.append(record(group, "mt", lang.code, translated[lang.code][0][n], translated[lang.code][1][n]))
                for v in range(cfg.code_switch.code_switch_variants):
                    variant = self._code_switched(group, q, a, lang, lexicons[lang.code], v, seed)
                    if variant is None:  # nothing the lexicon knows: the variant would repeat (Q, A*)
                        skipped_variants += 1
                        continue
                    cs_q, cs_a, replaced, total = variant
                    switched[lang.code][0] += replaced
                    switched[lang.code][1] += total
                    records.append(record(group, "code_switch", lang.code, cs_q, cs_a, variant=v))
        return records, {
            "skipped_code_switch_variants": skipped_variants,
            "code_switch_ratio_achieved": {c: round(r / t, 4) if t else None for c, (r, t) in switched.items()},
        }

    def _answers(self, ctx: TrainContext, examples: list[dict]) -> tuple[list[dict], list[str], list[str], dict]:
        """The answers each example is trained on (A* or the reference), minus the unusable ones."""
        cfg: AnswerConfig = self.config.answers
        questions = [question_of(ex) for ex in examples]
        if cfg.answer_source == "reference":
            pairs = [(ex["output"], False) for ex in examples]
        else:
            pairs = self_distill(ctx, questions, cfg.answer_max_new_tokens)
        truncated = [t for _, t in pairs]
        too_short = [len(a.strip()) < cfg.min_answer_chars for a, _ in pairs]
        wrong = wrong_language(pairs, self.config.translation.source_lang, cfg)
        keep = [i for i in range(len(examples)) if not too_short[i] and (cfg.keep_truncated_answers or not truncated[i])
                and not wrong[i]]
        stats = {
            "instructions": len(examples),
            "answer_source": cfg.answer_source,
            "truncated_answers": sum(truncated),
            "dropped_truncated_answers": 0 if cfg.keep_truncated_answers else sum(t and not s for t, s in zip(truncated, too_short)),
            "dropped_empty_answers": sum(too_short),
            # counted among the kept-so-far only, so an answer is dropped for one reason
            "dropped_wrong_language_answers": sum(w and not s and (cfg.keep_truncated_answers or not t)
                                                  for w, s, t in zip(wrong, too_short, truncated)),
        }
        if not keep:
            raise HarnessError(
                f"all {len(examples)} answers were dropped ({stats['truncated_answers']} cut off at "
                f"answer_max_new_tokens={cfg.answer_max_new_tokens}, {stats['dropped_empty_answers']} empty, "
                f"{stats['dropped_wrong_language_answers']} not in the source language); "
                "raise answer_max_new_tokens or set keep_truncated_answers=true / keep_wrong_language_answers=true"
            )
        return [examples[i] for i in keep], [questions[i] for i in keep], [pairs[i][0] for i in keep], stats

    def _code_switched(self, group: str, q: str, a: str, lang: Language, lexicon: dict, variant: int,
                       seed: int) -> tuple[str, str, int, int] | None:
        """(question, answer, words replaced, words translatable) of one code-switched variant, or
        None when the lexicon knows no word of the switched side(s)."""
        cfg: CodeSwitchConfig = self.config.code_switch
        rng = random.Random(f"{seed}:{group}:{lang.code}:{variant}")
        cs_q, cs_a, replaced, total = q, a, 0, 0
        if cfg.code_switch_side in ("both", "question"):
            cs_q, k = code_switch(q, lexicon, cfg.code_switch_ratio, rng)
            replaced, total = replaced + k, total + len(translatable_words(q, lexicon))
        if cfg.code_switch_side in ("both", "answer"):
            cs_a, k = code_switch(a, lexicon, cfg.code_switch_ratio, rng)
            replaced, total = replaced + k, total + len(translatable_words(a, lexicon))
        return None if replaced == 0 else (cs_q, cs_a, replaced, total)

    def _lexicons(self, langs: list[Language], ctx: TrainContext) -> dict[str, dict]:
        """source->xx lexicons: a file of the pair (the user's lexicon_dir, the mirror, the shipped
        ones, a cached MUSE download); else one inverted or composed through English from those in
        lexicon_dir (or the shipped ones); else MUSE or induced with the configured translator
        (trainers.lexicons; the translator loads a model only to induce one)."""
        translation: TranslationConfig = self.config.translation
        user_dir = translation.lexicon_dir or None
        folder = Path(user_dir) if user_dir else BUILTIN_LEXICON_DIR
        out = {}
        for lang in langs:
            found = find_lexicon_file(translation.source_lang, lang.code, user_dir, Path(ctx.work_dir))
            if found is not None and found.origin != "induced":
                out[lang.code] = load_lexicon(found.path)
                continue
            try:
                out[lang.code] = lexicon_from_folder(folder, translation.source_lang, lang.code)
            except HarnessError:
                translator = make_config_translator(translation, ctx)
                path = resolve_lexicon(translation.source_lang, lang.code, user_dir, translator, Path(ctx.work_dir))
                out[lang.code] = load_lexicon(path)
        return out
