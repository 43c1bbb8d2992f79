"""Belebele (reading comprehension): data loading for lm-eval's custom_dataset hook.

Records as in facebook/belebele: link, question_number, flores_passage, question,
mc_answer1..mc_answer4, correct_answer_num ("1".."4"), dialect, ds. One split: test.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import HarnessError
from tasks import dataio

TASKS_ROOT = Path(__file__).resolve().parent.parent  # relative suite data dirs start here
SPLITS = ("test",)
REQUIRED_FIELDS = ("flores_passage", "question", "mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4", "correct_answer_num")


def load(*, family: str, config: str, dataset: str | None = None, data_dir=None, suite_data_dir=None, **_):
    """custom_dataset: lm-eval calls it with the task metadata and dataset_kwargs as keywords."""
    splits = {}
    for split in SPLITS:
        records, where = dataio.read_split(
            family=family, config=config, split=split, dataset=dataset,
            required=REQUIRED_FIELDS, data_dir=data_dir, suite_data_dir=suite_data_dir, tasks_root=TASKS_ROOT,
        )
        for r in records:
            r["correct_answer_num"] = str(r["correct_answer_num"])
            if r["correct_answer_num"] not in ("1", "2", "3", "4"):
                raise HarnessError(f"{where}: correct_answer_num must be '1'..'4', got {r['correct_answer_num']!r}")
        splits[split] = records
    return dataio.to_dataset_dict(splits)


def data_files(root: Path, metadata: dict) -> list[Path]:
    """The local files `load` reads for a task with this metadata (the evaluation cache hashes them)."""
    return [dataio.split_path(root, metadata["family"], metadata["config"], split) for split in SPLITS]
