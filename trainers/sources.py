"""Training data every trainer shares: English instructions, parallel sentence pairs, and the
config fields that select them. One place, so the trainers differ only in how they combine them.

Instructions (`instructions=`): a hub id loaded with `datasets` (default tatsu-lab/alpaca), a local
JSON/JSONL file of Alpaca rows (instruction, input, output), or `builtin:alpaca-smoke` (32 items
shipped in trainers/data, offline).

The source language (`source_lang=`, en or fr): the resource-rich language the trainer learns
from. Instructions written in another language (`instructions_lang=`) are machine-translated into
it with the configured translator, and the run's statistics say so.

Parallel pairs (`parallel_data=`): a hub id in OPUS-100 layout (default Helsinki-NLP/opus-100,
config "<a>-<b>" with the codes sorted, split train; English-centric only), a local folder of
`<src>-<xx>.jsonl` files in the same layout ({"translation": {"<src>": ..., "<xx>": ...}}), or
`builtin:opus-smoke` (16 en-cs and en-ja pairs). FLORES is refused: it is the evaluation set.
Each pair becomes one training record in one of three formats (`parallel_formats=`, shares):
whole-sentence translation, partial translation (the source plus the start of its translation;
the model continues it) and target-language completion (the start of a sentence; the model
continues it). Their prompts are worded unlike the FLORES evaluation prompt on purpose, so that
no trainer is taught the evaluation's exact format.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.errors import HarnessError
from harness.langs import LANGUAGES, Language
from harness.rules import Rule, at_least, one_of
from trainers.codeswitch import DATA_DIR
from trainers.lora import TrainConfig
from trainers.translators import TRANSLATORS, FileTranslator

BUILTIN_INSTRUCTIONS = {"alpaca-smoke": DATA_DIR / "alpaca_smoke.json"}
BUILTIN_PARALLEL = {"opus-smoke": DATA_DIR / "opus_smoke"}
OPUS_100 = "Helsinki-NLP/opus-100"
SOURCE_LANGS = ("en", "fr")  # resource-rich source languages (paper: English and French, confirmed)
PARALLEL_FORMATS = ("translation", "partial", "completion")
PARALLEL_DIRECTIONS = ("src-xx", "xx-src", "both")
# Worded unlike the FLORES evaluation prompt ("Translate the following sentence from A to B.\nA: ...\nB:").
PARALLEL_PROMPTS = {
    "translation": "Here is a sentence in {src}:\n{text}\n\nWrite the same sentence in {tgt}.",
    "partial": "A {tgt} translation of this {src} sentence was started but not finished.\n"
               "{src} sentence: {text}\nStarted translation: {prefix}\n\nGive the rest of the translation.",
    "completion": "Continue this {tgt} sentence from where it stops:\n{prefix}",
}


@dataclass
class InstructionConfig(TrainConfig):
    instructions: str = "tatsu-lab/alpaca"  # hub id | local .json/.jsonl (Alpaca fields) | builtin:alpaca-smoke
    num_instructions: int = 5000  # instructions sampled by seed; 0 = all (paper: count unknown; our default)

    RULES: ClassVar[dict] = {"instructions": Rule(str, non_empty=True), "num_instructions": at_least(0)}

    def validate(self, owner: str = "train") -> None:
        super().validate(owner)
        check_source(self.instructions, f"{owner}.instructions", BUILTIN_INSTRUCTIONS)


@dataclass
class TranslationConfig(InstructionConfig):
    source_lang: str = "en"  # resource-rich source language: en | fr (paper: both confirmed as sources)
    instructions_lang: str = "en"  # the language `instructions` is written in; MT into source_lang when different
    translator: str = "nllb"  # nllb | nllb-ct2 (NLLB through CTranslate2) | llm (the base model) | lexicon (offline, word by word) | file (paper: MT system unknown)
    translator_model: str = ""  # nllb: hub id or folder (default facebook/nllb-200-distilled-600M); llm: unused
    lexicon_dir: str = ""  # MUSE lexicons <dir>/<src>-<xx>.txt for translator=lexicon and code-switching; "" = shipped ones
    translations_file: str = ""  # translator=file: JSONL of {src_lang, tgt_lang, source, translation}
    parallel_data: str = OPUS_100  # hub id (OPUS-100 layout) | local folder of <src>-<xx>.jsonl | builtin:opus-smoke
    parallel_per_lang: int = 0  # parallel sentence pairs per target language (0: none)
    # Shares of the pairs per format. Third-party: the later paper that re-ran SDRRL describes its
    # parallel part as "partially translated data and completion data"; the shares are our default.
    parallel_formats: str = "partial:0.5,completion:0.5"  # translation | partial | completion, name:share,...
    parallel_direction: str = "src-xx"  # src-xx | xx-src | both (alternating): direction of translation/partial records

    RULES: ClassVar[dict] = {
        "translator": one_of(*TRANSLATORS),
        "parallel_data": Rule(str, non_empty=True),
        "parallel_per_lang": at_least(0),
        "parallel_direction": one_of(*PARALLEL_DIRECTIONS),
        "source_lang": one_of(*SOURCE_LANGS),
        "instructions_lang": one_of(*LANGUAGES),
    }

    def validate(self, owner: str = "train") -> None:
        super().validate(owner)
        check_source(self.parallel_data, f"{owner}.parallel_data", BUILTIN_PARALLEL)
        if self.translator == "file":
            if not Path(self.translations_file).is_file():
                raise HarnessError(f"bad value for {owner}.translations_file: {self.translations_file!r}; translator=file needs an existing JSONL file")
            FileTranslator(self.translations_file)  # reads and checks every row now, not after self-distillation
        if self.lexicon_dir and not Path(self.lexicon_dir).is_dir():
            raise HarnessError(f"bad value for {owner}.lexicon_dir: {self.lexicon_dir!r} is not a folder")
        try:
            parse_formats(self.parallel_formats)
        except HarnessError as exc:
            raise HarnessError(f"bad value for {owner}.parallel_formats: {exc}") from None


def check_source(spec: str, name: str, builtins: dict) -> None:
    """A data source setting that can be checked without loading it: a known built-in, an existing local path, not FLORES."""
    refuse_flores(spec, name)
    if spec.startswith("builtin:") and spec.split(":", 1)[1] not in builtins:
        raise HarnessError(f"bad value for {name}: {spec!r}; built-ins: {', '.join(f'builtin:{k}' for k in builtins)}")
    if spec.startswith((".", "/", "~")) and not Path(spec).expanduser().exists():
        raise HarnessError(f"bad value for {name}: {spec!r} does not exist (a hub id org/name, a local path, or builtin:...)")


# --------------------------------------------------------------------------------------------
# Instructions
# --------------------------------------------------------------------------------------------


def _read_rows(path: Path) -> list[dict]:
    try:
        if path.suffix == ".jsonl":
            with open(path, encoding="utf-8") as fh:
                return [json.loads(line) for line in fh if line.strip()]
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"cannot read {path}: {exc}") from None
    if isinstance(data, dict):  # {"train": [...]} or {"data": [...]}
        data = data.get("train", data.get("data"))
    if not isinstance(data, list):
        raise HarnessError(f"{path}: expected a JSON list of rows (or JSONL)")
    return data


def refuse_flores(spec: str, what: str) -> None:
    if "flores" in spec.lower():
        raise HarnessError(
            f"{what} {spec!r} looks like FLORES, the evaluation set; training on it leaks the test data. "
            "Use OPUS-100 (Helsinki-NLP/opus-100), a local folder, or builtin:opus-smoke"
        )


def load_instructions(spec: str, n: int, seed: int) -> list[dict]:
    """Up to `n` Alpaca rows ({id, instruction, input, output}) sampled by `seed` (n <= 0: all)."""
    refuse_flores(spec, "instructions")
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_INSTRUCTIONS:
            raise HarnessError(f"unknown built-in instructions {spec!r}; valid: " + ", ".join(f"builtin:{k}" for k in BUILTIN_INSTRUCTIONS))
        rows, tag = _read_rows(BUILTIN_INSTRUCTIONS[name]), name
    elif Path(spec).expanduser().exists():
        path = Path(spec).expanduser()
        rows, tag = _read_rows(path), path.stem
    elif "/" in spec and not spec.startswith((".", "/", "~")):
        rows, tag = _load_hub_instructions(spec), spec.split("/")[-1]
    else:
        raise HarnessError(f"instructions {spec!r} is not a file, a hub id (org/name) or builtin:alpaca-smoke")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not str(row.get("instruction", "")).strip():
            raise HarnessError(f"instructions {spec!r}: row {i} has no 'instruction' (Alpaca format: instruction, input, output)")
        out.append(
            {
                "id": str(row.get("id") or f"{tag}-{i}"),
                "instruction": str(row["instruction"]).strip(),
                "input": str(row.get("input") or "").strip(),
                "output": str(row.get("output") or "").strip(),
            }
        )
    if 0 < n < len(out):
        keep = sorted(random.Random(seed).sample(range(len(out)), n))
        out = [out[i] for i in keep]
    return out


def _load_hub_instructions(spec: str) -> list[dict]:
    """The train split of a hub instruction set: from the active mirror (`harness fetch`), else the hub."""
    from harness import hub, mirror

    local = mirror.find(mirror.instructions_path(Path(), spec))
    if local is not None:
        return _read_rows(local)
    try:
        return hub.load_split(spec, None, "train")
    except Exception as exc:  # offline, unknown id, gated
        raise hub.explain(
            exc, spec, f"instructions {spec!r}",
            "offline, run `harness fetch` and pass --data-dir, or use instructions=builtin:alpaca-smoke or a local JSON/JSONL file",
        ) from None


def question_of(example: dict) -> str:
    """The user turn of an Alpaca row: the instruction, then its input (if any) after a blank line."""
    return example["instruction"] + (f"\n\n{example['input']}" if example["input"] else "")


def chat(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def record(group: str, kind: str, lang: str, question: str, answer: str, variant: int | None = None) -> dict:
    """One training record (see harness.trainer_api): id = group:kind:lang[:variant]."""
    suffix = "" if variant is None else f":{variant}"
    return {"id": f"{group}:{kind}:{lang}{suffix}", "group": group, "kind": kind, "lang": lang, "messages": chat(question, answer)}


# --------------------------------------------------------------------------------------------
# Parallel pairs
# --------------------------------------------------------------------------------------------


def load_parallel(spec: str, src: Language, tgt: Language, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (source, target) sentence pairs for src-tgt, sampled by `seed`."""
    refuse_flores(spec, "parallel_data")
    if n <= 0:
        return []
    check_parallel_source(spec, src, tgt)
    if spec.startswith("builtin:") or Path(spec).expanduser().is_dir():
        folder = BUILTIN_PARALLEL[spec.split(":", 1)[1]] if spec.startswith("builtin:") else Path(spec).expanduser()
        pairs = _read_parallel_folder(folder, src, tgt, spec)
    else:
        return _load_hub_parallel(spec, src, tgt, n, seed)
    if len(pairs) < n:
        raise HarnessError(f"parallel_data {spec!r} has {len(pairs)} {src.code}-{tgt.code} pairs, fewer than parallel_per_lang={n}")
    keep = sorted(random.Random(f"{seed}:{tgt.code}").sample(range(len(pairs)), n))
    return [pairs[i] for i in keep]


def _parallel_files(folder: Path, src: Language, tgt: Language) -> list[Path]:
    return [folder / f"{src.code}-{tgt.code}.jsonl", folder / f"{tgt.code}-{src.code}.jsonl"]


def check_parallel_source(spec: str, src: Language, tgt: Language) -> None:
    """Raise, naming what is missing and how to supply it, when `spec` cannot serve src-tgt pairs.

    Runs without reading the data, so the plan stage can call it before any work."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_PARALLEL:
            raise HarnessError(f"unknown built-in parallel data {spec!r}; valid: " + ", ".join(f"builtin:{k}" for k in BUILTIN_PARALLEL))
        folder = BUILTIN_PARALLEL[name]
    elif Path(spec).expanduser().is_dir():
        folder = Path(spec).expanduser()
    elif "/" in spec and not spec.startswith((".", "/", "~")):
        if spec == OPUS_100 and "en" not in (src.code, tgt.code):
            raise HarnessError(
                f"parallel_data {OPUS_100} has English-centric pairs only, so no {src.code}-{tgt.code} pairs; "
                f"set parallel_data to a folder holding {src.code}-{tgt.code}.jsonl (OPUS-100 rows), or parallel_per_lang=0"
            )
        return
    else:
        raise HarnessError(f"parallel_data {spec!r} is not a folder, a hub id (org/name) or builtin:opus-smoke")
    if not any(f.is_file() for f in _parallel_files(folder, src, tgt)):
        have = sorted(p.stem for p in folder.glob("*.jsonl"))
        raise HarnessError(
            f"parallel_data {spec!r} has no {folder / f'{src.code}-{tgt.code}.jsonl'}; it has: {', '.join(have) or 'nothing'}; "
            f"add that file (OPUS-100 rows) or set parallel_per_lang=0"
        )


def _pair(row: dict, src: Language, tgt: Language) -> tuple[str, str] | None:
    tr = row.get("translation", row)
    a, b = str(tr.get(src.code, "")).strip(), str(tr.get(tgt.code, "")).strip()
    return (a, b) if a and b else None


def _read_parallel_folder(folder: Path, src: Language, tgt: Language, spec: str) -> list[tuple[str, str]]:
    path = next(f for f in _parallel_files(folder, src, tgt) if f.is_file())
    return [p for p in (_pair(row, src, tgt) for row in _read_rows(path)) if p]


def _load_hub_parallel(spec: str, src: Language, tgt: Language, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` pairs: from the active mirror (`harness fetch` stored the same seeded draw), else streamed
    from the hub's train split through a seeded shuffle buffer (OPUS-100 has up to 1M pairs)."""
    from harness import hub, mirror

    folder = mirror.find(mirror.parallel_dir(Path(), spec))
    if folder is not None and any(f.is_file() for f in _parallel_files(folder, src, tgt)):
        pairs = _read_parallel_folder(folder, src, tgt, spec)
        if len(pairs) < n:
            raise HarnessError(f"the mirror {folder} has {len(pairs)} {src.code}-{tgt.code} pairs, fewer than {n}; rerun `harness fetch` with this parallel_per_lang")
        keep = sorted(random.Random(f"{seed}:{tgt.code}").sample(range(len(pairs)), n))
        return [pairs[i] for i in keep]
    config = "-".join(sorted([src.code, tgt.code]))
    try:
        pairs = []
        for row in hub.stream_split(spec, config, "train", seed):
            pair = _pair(row, src, tgt)
            if pair:
                pairs.append(pair)
            if len(pairs) >= n:
                break
    except Exception as exc:
        raise hub.explain(
            exc, spec, f"parallel_data {spec!r} (config {config!r})",
            f"offline, run `harness fetch` and pass --data-dir, or use parallel_data=builtin:opus-smoke or a local folder of {src.code}-<xx>.jsonl",
        ) from None
    if len(pairs) < n:
        raise HarnessError(f"parallel_data {spec!r} gave {len(pairs)} {src.code}-{tgt.code} pairs, fewer than {n}")
    return pairs


def parse_formats(spec: str) -> dict[str, float]:
    """'partial:0.5,completion:0.5' -> shares per format (normalised to sum to 1)."""
    shares: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        name, _, share = part.partition(":")
        if name not in PARALLEL_FORMATS:
            raise HarnessError(f"unknown parallel format {name!r} in parallel_formats={spec!r}; valid: {', '.join(PARALLEL_FORMATS)}")
        try:
            shares[name] = float(share) if share else 1.0
        except ValueError:
            raise HarnessError(f"parallel_formats={spec!r}: share of {name!r} is not a number: {share!r}") from None
        if shares[name] < 0:
            raise HarnessError(f"parallel_formats={spec!r}: share of {name!r} is negative")
    total = sum(shares.values())
    if total <= 0:
        raise HarnessError(f"parallel_formats={spec!r} gives no format a share; e.g. translation:1 or partial:0.5,completion:0.5")
    return {name: share / total for name, share in shares.items()}


def assign_formats(n: int, shares: dict[str, float], rng: random.Random) -> list[str]:
    """`n` format names in the given shares (largest remainder), in a seeded order."""
    counts = {name: int(share * n) for name, share in shares.items()}
    by_remainder = sorted(shares, key=lambda name: shares[name] * n - counts[name], reverse=True)
    for name in by_remainder[: n - sum(counts.values())]:
        counts[name] += 1
    formats = [name for name in PARALLEL_FORMATS for _ in range(counts.get(name, 0))]
    rng.shuffle(formats)
    return formats


def split_sentence(text: str, lang: Language, rng: random.Random) -> tuple[str, str]:
    """(prefix, rest) at 30-70% of the sentence: at a word boundary, or a character one for
    languages written without spaces (ja, th, km)."""
    words = text.split()
    if len(words) >= 2:
        cut = min(len(words) - 1, max(1, round(len(words) * rng.uniform(0.3, 0.7))))
        return " ".join(words[:cut]), " ".join(words[cut:])
    cut = min(len(text) - 1, max(1, round(len(text) * rng.uniform(0.3, 0.7))))
    return text[:cut], text[cut:]


def parallel_records(pairs: list[tuple[str, str]], src: Language, tgt: Language, config: TranslationConfig, seed: int) -> list[dict]:
    """Training records from sentence pairs, in the configured formats; each pair is its own group."""
    if config.parallel_direction not in PARALLEL_DIRECTIONS:
        raise HarnessError(f"parallel_direction must be one of {', '.join(PARALLEL_DIRECTIONS)}, got {config.parallel_direction!r}")
    rng = random.Random(f"{seed}:parallel:{src.code}-{tgt.code}")
    formats = assign_formats(len(pairs), parse_formats(config.parallel_formats), rng)
    records = []
    for i, ((src_text, tgt_text), fmt) in enumerate(zip(pairs, formats)):
        forward = config.parallel_direction == "src-xx" or (config.parallel_direction == "both" and i % 2 == 0)
        a, b, text, target = (src, tgt, src_text, tgt_text) if forward else (tgt, src, tgt_text, src_text)
        if fmt == "completion":  # always in the target language: it teaches writing it, not translating
            a, b, target = src, tgt, tgt_text
        prefix, rest = split_sentence(target, b, rng) if fmt != "translation" else ("", target)
        prompt = PARALLEL_PROMPTS[fmt].format(src=a.name, tgt=b.name, text=text, prefix=prefix)
        group = f"parallel-{tgt.code}-{i}"
        records.append({"id": f"{group}:{fmt}:{a.code}-{b.code}", "group": group, "kind": f"parallel_{fmt}",
                        "lang": tgt.code, "messages": chat(prompt, rest)})
    return records


def add_parallel(records: list[dict], src: Language, langs: list[Language], config: TranslationConfig, seed: int) -> list[dict]:
    """`records` plus parallel_per_lang parallel-data records for each target language."""
    out = list(records)
    for lang in langs:
        pairs = load_parallel(config.parallel_data, src, lang, config.parallel_per_lang, seed)
        out.extend(parallel_records(pairs, src, lang, config, seed))
    return out


def make_config_translator(config: TranslationConfig, ctx):
    """The translator the config names, cached in the run's work folder, generating (translator=llm)
    with the run's engine settings."""
    from trainers.translators import make_translator

    return make_translator(
        config.translator,
        model=config.translator_model,
        model_dir=ctx.model_dir,
        engine=ctx.engine,
        settings=ctx.settings,
        lexicon_dir=config.lexicon_dir or None,
        translations_file=config.translations_file or None,
        cache_dir=Path(ctx.work_dir),
    )


def source_language(config: TranslationConfig) -> Language:
    from harness.langs import get_language

    if config.source_lang not in SOURCE_LANGS:
        raise HarnessError(f"source_lang must be one of {', '.join(SOURCE_LANGS)}, got {config.source_lang!r}")
    return get_language(config.source_lang)


def load_source_instructions(config: TranslationConfig, seed: int, translator) -> tuple[list[dict], dict]:
    """The sampled instructions in the source language, and how they got there.

    Instructions written in another language (instructions_lang) are machine-translated, the
    reference answers too (translate-then-SFT and the reference-answer ablation use them)."""
    from harness.langs import get_language

    src = source_language(config)
    examples = load_instructions(config.instructions, config.num_instructions, seed)
    origin = {"instructions": config.instructions, "written_in": config.instructions_lang, "source_lang": src.code}
    if config.instructions_lang == src.code:
        return examples, origin
    written = get_language(config.instructions_lang)
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


def check_translation_sources(config: TranslationConfig, langs: list[Language]) -> None:
    """Plan-stage checks every translating trainer shares: the source language, the parallel data for
    each pair, and the lexicon translator's dictionaries. Nothing is loaded."""
    from harness.langs import get_language

    src = source_language(config)
    get_language(config.instructions_lang)
    refuse_flores(config.instructions, "instructions")
    if config.parallel_per_lang > 0:
        parse_formats(config.parallel_formats)
        for lang in langs:
            refuse_flores(config.parallel_data, "parallel_data")
            check_parallel_source(config.parallel_data, src, lang)
    if config.translator == "lexicon":
        from trainers.translators import LexiconTranslator

        translator = LexiconTranslator(config.lexicon_dir or None)
        if config.instructions_lang != src.code:
            translator.lexicon(get_language(config.instructions_lang), src)
        for lang in langs:
            translator.lexicon(src, lang)


def kind_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        key = f"{r['kind']}/{r['lang']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
