"""Open-ended instructions: data loading and the per-answer length.

Records (one JSON object a line): id, instruction (in the task's language), provenance (where the
instruction came from: "human", "mt:<system>" for a machine translation, or "fixture").
Language fidelity and hygiene are added to every generation task by harness.evaluation.genmetrics.
"""

from __future__ import annotations

from pathlib import Path

from tasks import dataio

TASKS_ROOT = Path(__file__).resolve().parent.parent
SPLIT = "test"
REQUIRED_FIELDS = ("id", "instruction", "provenance")
# Thai, Khmer, kana, CJK ideographs: scripts written without spaces between words
_NO_SPACE_SCRIPTS = ((0x0E00, 0x0E7F), (0x1780, 0x17FF), (0x3040, 0x30FF), (0x4E00, 0x9FFF))


def load(*, family: str, config: str, dataset: str | None = None, data_dir=None, suite_data_dir=None, **_):
    records, _where = dataio.read_split(family=family, config=config, split=SPLIT, dataset=dataset,
                                        required=REQUIRED_FIELDS, data_dir=data_dir,
                                        suite_data_dir=suite_data_dir, tasks_root=TASKS_ROOT)
    docs = [{"id": str(r["id"]), "instruction": str(r["instruction"]), "provenance": str(r["provenance"])}
            for r in records]
    return dataio.to_dataset_dict({SPLIT: docs})


def data_files(root: Path, metadata: dict) -> list[Path]:
    """The local file `load` reads for a task with this metadata (the evaluation cache hashes it)."""
    return [dataio.split_path(root, metadata["family"], metadata["config"], SPLIT)]


def answer_words(text: str) -> int:
    """Whitespace words, or characters / 2 for text written without spaces (a rough word count)."""
    words = len(text.split())
    no_space_chars = sum(1 for ch in text if any(lo <= ord(ch) <= hi for lo, hi in _NO_SPACE_SCRIPTS))
    return max(words, no_space_chars // 2)


def process_results(doc: dict, results: list) -> dict:
    return {"answer_words": answer_words(results[0] if results else "")}
