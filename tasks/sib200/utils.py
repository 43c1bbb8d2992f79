"""SIB-200 (topic classification over 7 categories): data loading and the target index.

Records as in Davlan/sib200: index_id, category, text. Splits: train, validation, test.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import HarnessError, unknown
from tasks import dataio

TASKS_ROOT = Path(__file__).resolve().parent.parent  # relative suite data dirs start here
SPLITS = ("train", "validation", "test")
REQUIRED_FIELDS = ("category", "text")
# The order of doc_to_choice in _default_template_yaml (a test checks they agree).
CATEGORIES = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")


def load(*, family: str, config: str, dataset: str | None = None, data_dir=None, suite_data_dir=None, **_):
    """custom_dataset: lm-eval calls it with the task metadata and dataset_kwargs as keywords."""
    splits = {}
    for split in SPLITS:
        records, where = dataio.read_split(
            family=family, config=config, split=split, dataset=dataset,
            required=REQUIRED_FIELDS, data_dir=data_dir, suite_data_dir=suite_data_dir, tasks_root=TASKS_ROOT,
        )
        for r in records:
            if r["category"] not in CATEGORIES:
                raise HarnessError(f"{where}: unknown category {r['category']!r}; valid: {', '.join(CATEGORIES)}")
        splits[split] = records
    return dataio.to_dataset_dict(splits)


def data_files(root: Path, metadata: dict) -> list[Path]:
    """The local files `load` reads for a task with this metadata (the evaluation cache hashes them)."""
    return [dataio.split_path(root, metadata["family"], metadata["config"], split) for split in SPLITS]


def doc_to_target(doc: dict) -> int:
    try:
        return CATEGORIES.index(doc["category"])
    except ValueError:
        raise unknown("SIB-200 category", doc["category"], CATEGORIES) from None
