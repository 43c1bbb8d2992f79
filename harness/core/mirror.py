"""The local mirror `harness fetch` writes and `harness run --data-dir` reads: one folder.

    <root>/<family>/<flores code>/<split>.jsonl        task data (tasks/dataio.py's layout)
    <root>/instructions/<org>__<name>/train.jsonl      an instruction set (hub records as they are)
    <root>/parallel/<org>__<name>/en-<xx>.jsonl        parallel pairs ({"translation": {...}})
    <root>/lexicons/<src>-<tgt>.txt                    bilingual lexicons (MUSE format)
    <root>/fetch_manifest.json                         what came from where (repo, commit, licence)

The hub loaders of the trainers look here first for a hub id, so a run with the network off reads
the mirror; the active mirror is $SDRRL_MIRROR, else $SDRRL_DATA_DIR (`activate` sets the first).
Models are not copied in: they go to the Hugging Face cache, where `harness.core.models` finds them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from harness.core.runstore import read_json, write_json

ENV_MIRROR = "SDRRL_MIRROR"
MANIFEST = "fetch_manifest.json"


def repo_folder(repo_id: str) -> str:
    return repo_id.replace("/", "__")


def instructions_path(root: Path, repo_id: str) -> Path:
    return Path(root) / "instructions" / repo_folder(repo_id) / "train.jsonl"


def parallel_dir(root: Path, repo_id: str) -> Path:
    return Path(root) / "parallel" / repo_folder(repo_id)


def lexicon_dir(root: Path) -> Path:
    return Path(root) / "lexicons"


def active_root() -> Path | None:
    for name in (ENV_MIRROR, "SDRRL_DATA_DIR"):
        value = os.environ.get(name, "").strip()
        if value:
            return Path(value).expanduser().resolve()
    return None


def activate(root: Path | None) -> None:
    """Make `root` the mirror the trainers' hub loaders read (for this process and its children)."""
    if root is not None:
        os.environ[ENV_MIRROR] = str(Path(root).resolve())


def find(relative: Path | str) -> Path | None:
    """`relative` inside the active mirror, if it is there."""
    root = active_root()
    if root is None:
        return None
    path = root / relative
    return path if path.exists() else None


class FetchManifest:
    """<root>/fetch_manifest.json: one entry per fetched resource, written after each one."""

    def __init__(self, root: Path):
        self.path = Path(root) / MANIFEST
        self.entries: dict[str, dict[str, Any]] = read_json(self.path)["resources"] if self.path.exists() else {}

    def has(self, key: str) -> bool:
        return key in self.entries

    def record(self, key: str, **entry: Any) -> None:
        self.entries[key] = {**entry, "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_json(self.path, {"resources": dict(sorted(self.entries.items()))})
