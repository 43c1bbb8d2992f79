"""SDRRL: Self-Distillation from Resource-Rich Languages (Zhang et al., ACL 2024), as we implement it.

build_dataset, for each sampled English instruction Q_EN:
  1. A*_EN: the base model's own greedy answer (self-distillation; cached in the work folder);
  2. for each target language xx: MT(Q_EN), MT(A*_EN) -> a target-language pair;
  3. `code_switch_variants` code-switched variants of (Q_EN, A*_EN): a fraction
     `code_switch_ratio` of the lexicon-known English words replaced by xx words (MUSE lexicons);
  4. plus (Q_EN, A*_EN) itself, so the resource-rich language is kept.
All of these share the source example's `group`, and the same-batch sampler puts a whole group in
one batch ("sentence-level self-distillation within the same batch"). Then `parallel_per_lang`
sentence pairs per language (OPUS-100 by default, never FLORES) are added as translation
instructions, to align representations and soften MT noise.

The paper's exact hyper-parameters are not available to us: every choice is a named Config field
with a documented default, so it can be matched to the paper later without code changes.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.runstore import sha256_json, write_json
from harness.trainer_api import TrainContext
from trainers.codeswitch import code_switch, load_lexicon, translatable_words
from trainers.generation import generate
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

CODE_SWITCH_SIDES = ("both", "question", "answer")


@dataclass
class SDRRLConfig(TranslationConfig):
    # Self-distillation. The paper's values for these are not available to us.
    answer_max_new_tokens: int = 512  # greedy tokens for the model's own English answers A*_EN
    min_answer_chars: int = 1  # self-answers shorter than this (e.g. empty generations) drop the example
    include_english: bool = True  # keep (Q_EN, A*_EN) as a training pair (retains the resource-rich language)
    # Code-switching (MUSE lexicons en-<xx>.txt in lexicon_dir). Paper's count and ratio unknown.
    code_switch_variants: int = 1  # code-switched variants per example and language; 0 = none
    code_switch_ratio: float = 0.3  # fraction of the lexicon-known English words replaced
    code_switch_side: str = "both"  # which side is code-switched: both | question | answer (the other stays English)
    # Parallel data: "a small amount" in the paper; the exact count is unknown.
    parallel_per_lang: int = 200
    parallel_data: str = "Helsinki-NLP/opus-100"  # hub id (OPUS-100 layout) | local folder of en-<xx>.jsonl | builtin:opus-smoke
    same_batch: bool = True  # all variants of one source example in one batch (the paper's same-batch distillation)


def self_distill(ctx: TrainContext, questions: list[str], max_new_tokens: int) -> list[str]:
    """The base model's greedy answers, cached in work_dir/self_answers.jsonl (key: model + prompt + length)."""
    cache_path = Path(ctx.work_dir) / "self_answers.jsonl"
    model_id = str(Path(ctx.model_dir).resolve())
    keys = [sha256_json([model_id, q, max_new_tokens]) for q in questions]
    cache: dict[str, str] = {}
    if cache_path.exists():
        with open(cache_path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                    cache[row["key"]] = row["answer"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a half-written last line from a killed run
    todo = {k: q for k, q in zip(keys, questions) if k not in cache}
    if todo:
        conversations = [[{"role": "user", "content": q}] for q in todo.values()]
        answers = generate(Path(ctx.model_dir), conversations, max_new_tokens, ctx.engine)
        rows = [{"key": k, "model": model_id, "question": q, "answer": a} for (k, q), a in zip(todo.items(), answers)]
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        with open(cache_path, "a", encoding="utf-8") as fh:
            fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            fh.flush()
            os.fsync(fh.fileno())
        cache.update({r["key"]: r["answer"] for r in rows})
    return [cache[k] for k in keys]


class SDRRLTrainer(LoRATrainer):
    name = "sdrrl"
    description = "SDRRL: self-distilled English answers, translated and code-switched, same-batch, plus parallel data"
    Config = SDRRLConfig

    def build_dataset(self, ctx: TrainContext) -> list[dict]:
        from rich.console import Console

        cfg: SDRRLConfig = self.config
        console = Console(stderr=True)
        if cfg.code_switch_side not in CODE_SWITCH_SIDES:
            raise HarnessError(f"code_switch_side must be one of {', '.join(CODE_SWITCH_SIDES)}, got {cfg.code_switch_side!r}")
        langs = [lang for lang in ctx.target_langs if not lang.is_english]
        lexicons = self._lexicons(langs, ctx) if cfg.code_switch_variants > 0 else {}

        examples = load_instructions(cfg.instructions, cfg.num_instructions, ctx.seed)
        questions = [question_of(ex) for ex in examples]
        console.print(f"sdrrl: {len(examples)} English instructions from {cfg.instructions}; self-distilling ({ctx.engine})")
        answers = self_distill(ctx, questions, cfg.answer_max_new_tokens)
        keep = [i for i, a in enumerate(answers) if len(a.strip()) >= cfg.min_answer_chars]
        dropped = len(examples) - len(keep)
        examples, questions, answers = [examples[i] for i in keep], [questions[i] for i in keep], [answers[i] for i in keep]

        console.print(f"sdrrl: translating {len(questions)} question/answer pairs into {', '.join(l.code for l in langs)} ({cfg.translator})")
        translated = translate_pairs(make_config_translator(cfg, ctx), questions, answers, langs) if langs else {}

        records: list[dict] = []
        switched = {lang.code: [0, 0] for lang in langs}  # replaced, translatable
        skipped_variants = 0
        for n, (ex, q, a) in enumerate(zip(examples, questions, answers)):
            group = ex["id"]
            if cfg.include_english:
                records.append(record(group, "en_self", "en", q, a))
            for lang in langs:
                mt_q, mt_a = translated[lang.code][0][n], translated[lang.code][1][n]
                records.append(record(group, "mt", lang.code, mt_q, mt_a))
                for v in range(cfg.code_switch_variants):
                    rng = random.Random(f"{ctx.seed}:{group}:{lang.code}:{v}")
                    lex = lexicons[lang.code]
                    cs_q, cs_a, replaced, total = q, a, 0, 0
                    if cfg.code_switch_side in ("both", "question"):
                        cs_q, k = code_switch(q, lex, cfg.code_switch_ratio, rng)
                        replaced, total = replaced + k, total + len(translatable_words(q, lex))
                    if cfg.code_switch_side in ("both", "answer"):
                        cs_a, k = code_switch(a, lex, cfg.code_switch_ratio, rng)
                        replaced, total = replaced + k, total + len(translatable_words(a, lex))
                    if replaced == 0:  # nothing the lexicon knows: the variant would repeat (Q_EN, A*_EN)
                        skipped_variants += 1
                        continue
                    switched[lang.code][0] += replaced
                    switched[lang.code][1] += total
                    records.append(record(group, "code_switch", lang.code, cs_q, cs_a, variant=v))
        records = add_parallel(records, langs, cfg, ctx.seed)

        stats = {
            "instructions": len(examples) + dropped,
            "dropped_empty_answers": dropped,
            "skipped_code_switch_variants": skipped_variants,
            "code_switch_ratio_achieved": {c: round(r / t, 4) if t else None for c, (r, t) in switched.items()},
            "records": len(records),
            "groups": len({r["group"] for r in records}),
            "by_kind": kind_counts(records),
        }
        write_json(Path(ctx.work_dir) / "sdrrl_stats.json", stats)
        console.print(f"sdrrl: {len(records)} records in {stats['groups']} groups: {stats['by_kind']}")
        return records

    def _lexicons(self, langs, ctx: TrainContext) -> dict[str, dict]:
        from trainers.lexicons import resolve_lexicon

        # The translator only loads a model if a lexicon must be induced (no MUSE dictionary, e.g. Khmer).
        translator = make_config_translator(self.config, ctx)
        return {lang.code: load_lexicon(resolve_lexicon("en", lang.code, self.config.lexicon_dir or None, translator, Path(ctx.work_dir)))
                for lang in langs}
