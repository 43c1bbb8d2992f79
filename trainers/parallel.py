"""Parallel sentence pairs and the training records made from them.

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

import random
from pathlib import Path
from typing import TYPE_CHECKING

from harness.core.errors import HarnessError
from harness.core.hub import is_hub_id
from harness.core.langs import Language
from trainers.instructions import chat, read_rows, refuse_flores
from trainers.parallel_choices import BUILTIN_PARALLEL, OPUS_100, PARALLEL_FORMATS, parse_formats

if TYPE_CHECKING:
    from trainers.config import ParallelConfig

# Worded unlike the FLORES evaluation prompt ("Translate the following sentence from A to B.\nA: ...\nB:").
PARALLEL_PROMPTS = {
    "translation": "Here is a sentence in {src}:\n{text}\n\nWrite the same sentence in {tgt}.",
    "partial": "A {tgt} translation of this {src} sentence was started but not finished.\n"
               "{src} sentence: {text}\nStarted translation: {prefix}\n\nGive the rest of the translation.",
    "completion": "Continue this {tgt} sentence from where it stops:\n{prefix}",
}


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
    elif is_hub_id(spec):
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
    return [p for p in (_pair(row, src, tgt) for row in read_rows(path)) if p]


def _load_hub_parallel(spec: str, src: Language, tgt: Language, n: int, seed: int) -> list[tuple[str, str]]:
    """`n` pairs: from the active mirror (`harness fetch` stored the same seeded draw), else streamed
    from the hub's train split through a seeded shuffle buffer (OPUS-100 has up to 1M pairs)."""
    from harness.core import hub, mirror

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


def parallel_records(pairs: list[tuple[str, str]], src: Language, tgt: Language, parallel: ParallelConfig, seed: int) -> list[dict]:
    """Training records from sentence pairs, in the configured formats; each pair is its own group."""
    rng = random.Random(f"{seed}:parallel:{src.code}-{tgt.code}")
    formats = assign_formats(len(pairs), parse_formats(parallel.parallel_formats), rng)
    records = []
    for i, ((src_text, tgt_text), fmt) in enumerate(zip(pairs, formats)):
        forward = parallel.parallel_direction == "src-xx" or (parallel.parallel_direction == "both" and i % 2 == 0)
        a, b, text, target = (src, tgt, src_text, tgt_text) if forward else (tgt, src, tgt_text, src_text)
        if fmt == "completion":  # always in the target language: it teaches writing it, not translating
            a, b, target = src, tgt, tgt_text
        prefix, rest = split_sentence(target, b, rng) if fmt != "translation" else ("", target)
        prompt = PARALLEL_PROMPTS[fmt].format(src=a.name, tgt=b.name, text=text, prefix=prefix)
        group = f"parallel-{tgt.code}-{i}"
        records.append({"id": f"{group}:{fmt}:{a.code}-{b.code}", "group": group, "kind": f"parallel_{fmt}",
                        "lang": tgt.code, "messages": chat(prompt, rest)})
    return records


def add_parallel(records: list[dict], src: Language, langs: list[Language], parallel: ParallelConfig, seed: int) -> list[dict]:
    """`records` plus parallel_per_lang parallel-data records for each target language."""
    out = list(records)
    for lang in langs:
        pairs = load_parallel(parallel.parallel_data, src, lang, parallel.parallel_per_lang, seed)
        out.extend(parallel_records(pairs, src, lang, parallel, seed))
    return out
