"""What the translating trainers (sdrrl, translate_sft) share: the source language, its
instructions (machine-translated when written in another language), the translator the settings
name, and translating question/answer pairs into every target language.

The source language (`source_lang=`, en or fr): the resource-rich language the trainer learns
from. Instructions written in another language (`instructions_lang=`) are machine-translated into
it with the configured translator, and the run's statistics say so.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.langs import Language, get_language
from trainers.config import InstructionConfig, ParallelConfig, TranslationConfig
from trainers.instructions import load_instructions
from trainers.parallel import check_parallel_source


def make_config_translator(translation: TranslationConfig, ctx):
    """The translator the settings name, cached in the run's work folder, generating (translator=llm)
    with the run's engine settings."""
    from trainers.translators import make_translator

    return make_translator(
        translation.translator,
        model=translation.translator_model,
        model_dir=ctx.model_dir,
        engine=ctx.engine,
        settings=ctx.settings,
        lexicon_dir=translation.lexicon_dir or None,
        translations_file=translation.translations_file or None,
        cache_dir=Path(ctx.work_dir),
    )


def source_language(translation: TranslationConfig) -> Language:
    """The resource-rich language the trainer learns from (`source_lang=`, en or fr)."""
    return get_language(translation.source_lang)


def load_source_instructions(instruction_set: InstructionConfig, translation: TranslationConfig, seed: int,
                             translator) -> tuple[list[dict], dict]:
    """The sampled instructions in the source language, and how they got there.

    Instructions written in another language (instructions_lang) are machine-translated, the
    reference answers too (translate-then-SFT and the reference-answer ablation use them)."""
    src = source_language(translation)
    examples = load_instructions(instruction_set.instructions, instruction_set.num_instructions, seed)
    origin = {"instructions": instruction_set.instructions, "written_in": translation.instructions_lang, "source_lang": src.code}
    if translation.instructions_lang == src.code:
        return examples, origin
    written = get_language(translation.instructions_lang)
    fields = ("instruction", "input", "output")
    texts = [ex[f] for ex in examples for f in fields]
    translated = iter(translator.translate(texts, written, src))
    out = [{**ex, **{f: next(translated) for f in fields}} for ex in examples]
    origin["machine_translated_by"] = translator.id
    return out, origin


def translate_pairs(
    translator, questions: list[str], answers: list[str], src: Language, langs: list[Language]
) -> dict[str, tuple[list[str], list[str]]]:
    """MT of every question and answer into each language, in one translator call: {code: (Qs, As)}."""
    jobs = []
    for lang in langs:
        jobs.append((questions, src, lang))
        jobs.append((answers, src, lang))
    results = translator.translate_jobs(jobs)
    return {lang.code: (results[2 * k], results[2 * k + 1]) for k, lang in enumerate(langs)}


def check_translation_sources(translation: TranslationConfig, parallel: ParallelConfig, langs: list[Language]) -> None:
    """Plan-stage checks every translating trainer shares beyond its settings' own (trainers.config):
    the parallel data for each language pair, and the lexicon translator's dictionaries. Nothing is loaded."""
    src = source_language(translation)
    if parallel.parallel_per_lang > 0:
        for lang in langs:
            check_parallel_source(parallel.parallel_data, src, lang)
    if translation.translator == "lexicon":
        from trainers.translators import LexiconTranslator

        translator = LexiconTranslator(translation.lexicon_dir or None)
        if translation.instructions_lang != src.code:
            translator.lexicon(get_language(translation.instructions_lang), src)
        for lang in langs:
            translator.lexicon(src, lang)
