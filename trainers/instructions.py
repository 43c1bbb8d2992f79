"""English instructions and the training record every trainer builds from them.

Instructions (`instructions=`): a hub id loaded with `datasets` (default tatsu-lab/alpaca), a local
JSON/JSONL file of Alpaca rows (instruction, input, output), or `builtin:alpaca-smoke` (32 items
shipped in trainers/data, offline). Here too the checks every data source setting shares: FLORES
is refused (it is the evaluation set), a built-in must exist, a local path must exist.
"""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path

from harness.core.errors import HarnessError, shown
from harness.core.hub import is_hub_id
from harness.core.textfile import read_utf8
from trainers.codeswitch import DATA_DIR

BUILTIN_INSTRUCTIONS = {"alpaca-smoke": DATA_DIR / "alpaca_smoke.json"}
JSON_SUFFIXES = (".json", ".jsonl")


def check_source(spec: str, name: str, builtins: dict, local: str = "file") -> None:
    """A data source setting that can be checked without loading it: a known built-in, an existing
    local path of the right kind (`local`: "file" or "folder"), not FLORES. A name that cannot be a
    hub id (org/name), or a file name ending in .json/.jsonl, is a local path and must exist."""
    refuse_flores(spec, name)
    if spec.startswith("builtin:"):
        if spec.split(":", 1)[1] not in builtins:
            raise HarnessError(f"bad value for {name}: {shown(spec)}; built-ins: {', '.join(f'builtin:{k}' for k in builtins)}")
        return
    path = Path(spec).expanduser()
    if path.exists():
        if local == "file" and not path.is_file():
            raise HarnessError(f"bad value for {name}: {shown(spec)} is a folder; expected a JSON or JSONL file of rows")
        if local == "folder" and not path.is_dir():
            raise HarnessError(f"bad value for {name}: {shown(spec)} is a file; expected a folder of <src>-<xx>.jsonl files")
        return
    if spec.startswith((".", "/", "~")) or not is_hub_id(spec) or (local == "file" and spec.lower().endswith(JSON_SUFFIXES)):
        raise HarnessError(f"bad value for {name}: {shown(spec)} does not exist (a hub id org/name, a local path, or builtin:...)")


def read_rows(path: Path) -> list:
    """The rows of a JSONL file, or of a JSON list (also under "train" or "data")."""
    text = read_utf8(path, "data file")
    if path.suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines: JSON text may hold U+2028
            if line.strip():
                rows.append(_json(line, f"{path}:{lineno}"))
        return rows
    data = _json(text, str(path))
    if isinstance(data, dict):  # {"train": [...]} or {"data": [...]}
        data = data.get("train", data.get("data"))
    if not isinstance(data, list):
        raise HarnessError(f"{path}: expected a JSON list of rows (or JSONL)")
    return data


def _json(text: str, where: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{where}: invalid JSON ({exc})") from None


def alpaca_rows(rows: list, spec: str) -> list[dict]:
    """Rows checked and normalised: each has an instruction (a non-empty string; a null one would
    train the text "None"), and input and output as strings (null: empty)."""
    out = []
    for i, row in enumerate(rows):
        instruction = row.get("instruction") if isinstance(row, dict) else None
        if not isinstance(instruction, str) or not instruction.strip():
            raise HarnessError(f"instructions {shown(spec)}: row {i + 1} has no 'instruction' (got {shown(instruction)}; "
                               "Alpaca format: instruction, input, output)")
        out.append({"id": row.get("id"), "instruction": instruction.strip(),
                    "input": str(row.get("input") or "").strip(), "output": str(row.get("output") or "").strip()})
    return out


@functools.lru_cache(maxsize=8)
def _checked_file(path: Path, _size: int, _mtime_ns: int) -> int:
    return len(alpaca_rows(read_rows(path), str(path)))


def check_instruction_file(spec: str) -> None:
    """A local instructions file read and checked row by row in the plan stage (once per version of the file)."""
    path = Path(spec).expanduser().resolve()
    if path.is_file():
        stat = path.stat()
        _checked_file(path, stat.st_size, stat.st_mtime_ns)


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
        rows, tag = read_rows(BUILTIN_INSTRUCTIONS[name]), name
    elif Path(spec).expanduser().exists():
        path = Path(spec).expanduser()
        rows, tag = read_rows(path), path.stem
    elif is_hub_id(spec):
        rows, tag = _load_hub_instructions(spec), spec.split("/")[-1]
    else:
        raise HarnessError(f"instructions {spec!r} is not a file, a hub id (org/name) or builtin:alpaca-smoke")
    out = [{**row, "id": str(row["id"] or f"{tag}-{i}")} for i, row in enumerate(alpaca_rows(rows, spec))]
    if 0 < n < len(out):
        keep = sorted(random.Random(seed).sample(range(len(out)), n))
        out = [out[i] for i in keep]
    return out


def _load_hub_instructions(spec: str) -> list[dict]:
    """The train split of a hub instruction set: from the active mirror (`harness fetch`), else the hub."""
    from harness.core import hub, mirror

    local = mirror.find(mirror.instructions_path(Path(), spec))
    if local is not None:
        return read_rows(local)
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
    """A record's messages: the question as the user's turn, the answer as the assistant's (the trained part)."""
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def record(group: str, kind: str, lang: str, question: str, answer: str, variant: int | None = None) -> dict:
    """One training record (see harness.trainer_api): id = group:kind:lang[:variant]."""
    suffix = "" if variant is None else f":{variant}"
    return {"id": f"{group}:{kind}:{lang}{suffix}", "group": group, "kind": kind, "lang": lang, "messages": chat(question, answer)}


def kind_counts(records: list[dict]) -> dict[str, int]:
    """How many records of each kind and language ({"mt/cs": 8, ...}): what a trainer's data_stats report."""
    counts: dict[str, int] = {}
    for r in records:
        key = f"{r['kind']}/{r['lang']}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
