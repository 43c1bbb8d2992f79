"""Held-out evaluation items must not appear in a trainer's data: a content-hash check at run build.

A task opts in with metadata `disjoint_from_training: <doc field>` (the open-ended instruct family:
`instruction`). Texts are compared after case folding and whitespace collapsing, by sha256, against
every message of every training record, so a held-out instruction used as a training prompt (or
answer) is caught whatever the trainer did with it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from harness.core.errors import HarnessError
from harness.evaluation.registry import TaskInfo


@dataclass(frozen=True)
class HeldOutDoc:
    task: str
    doc_id: str
    text: str


def content_hash(text: str) -> str:
    return hashlib.sha256(" ".join(str(text).casefold().split()).encode("utf-8")).hexdigest()


def record_texts(record: dict[str, Any]) -> Iterable[str]:
    for message in record.get("messages") or []:
        if isinstance(message, dict) and message.get("content"):
            yield str(message["content"])
    for key in ("instruction", "prompt", "text"):
        if record.get(key):
            yield str(record[key])


def check_disjoint(train_records: list[dict], task_docs: list[HeldOutDoc]) -> None:
    """HarnessError naming the overlap when any held-out doc's text is in the training records."""
    wanted = {content_hash(d.text): d for d in task_docs}
    if not wanted:
        return
    hits: list[tuple[HeldOutDoc, str]] = []
    for record in train_records:
        for text in record_texts(record):
            doc = wanted.get(content_hash(text))
            if doc is not None:
                hits.append((doc, str(record.get("id", "?"))))
    if hits:
        doc, rec = hits[0]
        raise HarnessError(f"{len(hits)} held-out evaluation item(s) appear in the training data, e.g. {doc.task} "
                           f"doc {doc.doc_id} in training record {rec}; remove them from the trainer's sources")


def heldout_docs(tasks: list[TaskInfo], data_dir: Path | None) -> list[HeldOutDoc]:
    """The held-out texts of the tasks that opted in, read through each task's own loader."""
    docs: list[HeldOutDoc] = []
    for task in tasks:
        field = task.metadata.get("disjoint_from_training")
        if not field:
            continue
        loaded = _task_utils(task).load(**task.metadata, data_dir=str(data_dir) if data_dir else None)
        for split in loaded.values():
            docs.extend(HeldOutDoc(task.name, str(d.get("id", i)), str(d[field])) for i, d in enumerate(split))
    return docs


def _task_utils(task: TaskInfo):
    path = task.yaml_path.parent / "utils.py"
    spec = importlib.util.spec_from_file_location(f"_heldout_{task.family}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
