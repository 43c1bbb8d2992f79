"""Training data every trainer shares: English instructions, parallel sentence pairs, and the
config fields that select them. One place, so the trainers differ only in how they combine them.

Instructions (`instructions=`): a hub id loaded with `datasets` (default tatsu-lab/alpaca), a local
JSON/JSONL file of Alpaca rows (instruction, input, output), or `builtin:alpaca-smoke` (32 items
shipped in trainers/data, offline).

Parallel pairs (`parallel_data=`): a hub id in OPUS-100 layout (default Helsinki-NLP/opus-100,
config "<a>-<b>" with the codes sorted, split train), a local folder of `en-<xx>.jsonl` files in
the same layout ({"translation": {"en": ..., "<xx>": ...}}), or `builtin:opus-smoke` (16 pairs for
cs and ja). FLORES is refused: it is the evaluation set.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from harness.errors import HarnessError
from harness.langs import Language
from harness.rules import Rule, at_least, one_of
from trainers.codeswitch import DATA_DIR
from trainers.lora import TrainConfig
from trainers.translators import TRANSLATORS, FileTranslator

BUILTIN_INSTRUCTIONS = {"alpaca-smoke": DATA_DIR / "alpaca_smoke.json"}
BUILTIN_PARALLEL = {"opus-smoke": DATA_DIR / "opus_smoke"}
PARALLEL_PROMPT = "Translate the following {src} text into {tgt}.\n\n{text}"


@dataclass
class InstructionConfig(TrainConfig):
    instructions: str = "tatsu-lab/alpaca"  # hub id | local .json/.jsonl (Alpaca fields) | builtin:alpaca-smoke
    num_instructions: int = 5000  # English instructions sampled by seed; 0 = all (paper's count unknown)

    RULES: ClassVar[dict] = {"instructions": Rule(str, non_empty=True), "num_instructions": at_least(0)}

    def validate(self, owner: str = "train") -> None:
        super().validate(owner)
        check_source(self.instructions, f"{owner}.instructions", BUILTIN_INSTRUCTIONS)


@dataclass
class TranslationConfig(InstructionConfig):
    translator: str = "nllb"  # nllb | llm (the base model) | lexicon (offline, word by word) | file
    translator_model: str = ""  # nllb: hub id or folder (default facebook/nllb-200-distilled-600M); llm: unused
    lexicon_dir: str = ""  # MUSE lexicons <dir>/en-<xx>.txt for translator=lexicon and code-switching; "" = shipped ones
    translations_file: str = ""  # translator=file: JSONL of {src_lang, tgt_lang, source, translation}
    parallel_data: str = "Helsinki-NLP/opus-100"  # hub id (OPUS-100 layout) | local folder of en-<xx>.jsonl | builtin:opus-smoke
    parallel_per_lang: int = 0  # parallel sentence pairs per target language, as translation instructions
    parallel_direction: str = "en-xx"  # en-xx | xx-en | both (alternating): direction of the translation instructions
    parallel_prompt: str = PARALLEL_PROMPT  # translation instruction; {src}, {tgt} (language names), {text}

    RULES: ClassVar[dict] = {
        "translator": one_of(*TRANSLATORS),
        "parallel_data": Rule(str, non_empty=True),
        "parallel_per_lang": at_least(0),
        "parallel_direction": one_of("en-xx", "xx-en", "both"),
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
            self.parallel_prompt.format(src="", tgt="", text="")
        except (KeyError, IndexError, ValueError) as exc:
            raise HarnessError(f"bad value for {owner}.parallel_prompt: {self.parallel_prompt!r} ({exc!r}); placeholders: {{src}}, {{tgt}}, {{text}}") from None
        if "{text}" not in self.parallel_prompt:
            raise HarnessError(f"bad value for {owner}.parallel_prompt: {self.parallel_prompt!r} lacks {{text}}")


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
    try:
        from datasets import load_dataset

        return list(load_dataset(spec, split="train"))
    except Exception as exc:  # offline, unknown id: the same advice either way
        raise HarnessError(
            f"instructions {spec!r} could not be loaded from the hub ({type(exc).__name__}); "
            "offline, use instructions=builtin:alpaca-smoke or a local JSON/JSONL file"
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


def load_parallel(spec: str, lang: Language, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (English, target) sentence pairs for `lang`, sampled by `seed`."""
    refuse_flores(spec, "parallel_data")
    if n <= 0:
        return []
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name not in BUILTIN_PARALLEL:
            raise HarnessError(f"unknown built-in parallel data {spec!r}; valid: " + ", ".join(f"builtin:{k}" for k in BUILTIN_PARALLEL))
        pairs = _read_parallel_folder(BUILTIN_PARALLEL[name], lang, spec)
    elif Path(spec).expanduser().is_dir():
        pairs = _read_parallel_folder(Path(spec).expanduser(), lang, spec)
    elif "/" in spec and not spec.startswith((".", "/", "~")):
        return _load_hub_parallel(spec, lang, n, seed)
    else:
        raise HarnessError(f"parallel_data {spec!r} is not a folder, a hub id (org/name) or builtin:opus-smoke")
    if len(pairs) < n:
        raise HarnessError(f"parallel_data {spec!r} has {len(pairs)} en-{lang.code} pairs, fewer than parallel_per_lang={n}")
    keep = sorted(random.Random(f"{seed}:{lang.code}").sample(range(len(pairs)), n))
    return [pairs[i] for i in keep]


def _pair(row: dict, lang: Language) -> tuple[str, str] | None:
    tr = row.get("translation", row)
    en, xx = str(tr.get("en", "")).strip(), str(tr.get(lang.code, "")).strip()
    return (en, xx) if en and xx else None


def _read_parallel_folder(folder: Path, lang: Language, spec: str) -> list[tuple[str, str]]:
    for name in (f"en-{lang.code}.jsonl", f"{lang.code}-en.jsonl"):
        if (folder / name).is_file():
            pairs = [_pair(row, lang) for row in _read_rows(folder / name)]
            return [p for p in pairs if p]
    have = sorted(p.stem for p in folder.glob("*.jsonl"))
    raise HarnessError(f"parallel_data {spec!r} has no {folder / f'en-{lang.code}.jsonl'}; it has: {', '.join(have) or 'nothing'}")


def _load_hub_parallel(spec: str, lang: Language, n: int, seed: int) -> list[tuple[str, str]]:
    """Stream the train split and take `n` pairs from a seeded shuffle buffer (OPUS-100 has up to 1M)."""
    config = "-".join(sorted(["en", lang.code]))
    try:
        from datasets import load_dataset

        stream = load_dataset(spec, config, split="train", streaming=True).shuffle(seed=seed, buffer_size=10_000)
        pairs = []
        for row in stream:
            pair = _pair(row, lang)
            if pair:
                pairs.append(pair)
            if len(pairs) >= n:
                break
    except Exception as exc:
        raise HarnessError(
            f"parallel_data {spec!r} (config {config!r}) could not be loaded ({type(exc).__name__}); "
            "offline, use parallel_data=builtin:opus-smoke or a local folder of en-<xx>.jsonl"
        ) from None
    if len(pairs) < n:
        raise HarnessError(f"parallel_data {spec!r} gave {len(pairs)} en-{lang.code} pairs, fewer than {n}")
    return pairs


def parallel_records(pairs: list[tuple[str, str]], lang: Language, config: TranslationConfig) -> list[dict]:
    """Translation instructions from sentence pairs; each pair is its own group."""
    from harness.langs import LANGUAGES

    en = LANGUAGES["en"]
    if config.parallel_direction not in ("en-xx", "xx-en", "both"):
        raise HarnessError(f"parallel_direction must be en-xx, xx-en or both, got {config.parallel_direction!r}")
    records = []
    for i, (en_text, xx_text) in enumerate(pairs):
        to_xx = config.parallel_direction == "en-xx" or (config.parallel_direction == "both" and i % 2 == 0)
        src, tgt, source, target = (en, lang, en_text, xx_text) if to_xx else (lang, en, xx_text, en_text)
        prompt = config.parallel_prompt.format(src=src.name, tgt=tgt.name, text=source)
        group = f"parallel-{lang.code}-{i}"
        records.append(
            {"id": f"{group}:{src.code}-{tgt.code}", "group": group, "kind": "parallel", "lang": lang.code, "messages": chat(prompt, target)}
        )
    return records


def add_parallel(records: list[dict], ctx_langs: list[Language], config: TranslationConfig, seed: int) -> list[dict]:
    """`records` plus parallel_per_lang translation instructions for each language."""
    out = list(records)
    for lang in ctx_langs:
        out.extend(parallel_records(load_parallel(config.parallel_data, lang, config.parallel_per_lang, seed), lang, config))
    return out


def make_config_translator(config: TranslationConfig, ctx):
    """The translator the config names, cached in the run's work folder."""
    from trainers.translators import make_translator

    return make_translator(
        config.translator,
        model=config.translator_model,
        model_dir=ctx.model_dir,
        engine=ctx.engine,
        lexicon_dir=config.lexicon_dir or None,
        translations_file=config.translations_file or None,
        cache_dir=Path(ctx.work_dir),
    )


def translate_pairs(translator, questions: list[str], answers: list[str], langs: list[Language]) -> dict[str, tuple[list[str], list[str]]]:
    """MT of every question and answer into each language, in one translator call: {code: (Qs, As)}."""
    from harness.langs import LANGUAGES

    en = LANGUAGES["en"]
    jobs = []
    for lang in langs:
        jobs.append((questions, en, lang))
        jobs.append((answers, en, lang))
    results = translator.translate_jobs(jobs)
    return {lang.code: (results[2 * k], results[2 * k + 1]) for k, lang in enumerate(langs)}


def kind_counts(records: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        key = f"{r['kind']}/{r['lang']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
