"""Data for the task families: the hub datasets by default, or a local folder in the same format.

Local layout:  <data_dir>/<family>/<flores code>/<split>.jsonl   (one hub record per line)

Where the folder comes from, first match wins:
  1. `data_dir` in the task metadata: the harness passes it through
     lm_eval.tasks.TaskManager(metadata={"data_dir": ...}), the CLI through
     `lm_eval --metadata '{"data_dir": ...}'`. Given by the user: a relative path is taken
     from the current working directory.
  2. the environment variable SDRRL_DATA_DIR (same rule).
  3. `suite_data_dir` in the task's dataset_kwargs, set by a suite's lm-eval group file
     (tasks/suite_<name>.yaml). Written inside a task file, a relative path is taken from the
     folder of that file (the tasks folder, beside suites.yaml), never from the current
     working directory.
Without any of them the hub dataset named in the metadata (`dataset`) is loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from harness.core.errors import HarnessError, shown
from harness.core.textfile import read_utf8

ENV_DATA_DIR = "SDRRL_DATA_DIR"
# Required fields that may be numbers (an id, an answer's number); every other required field is a text.
NUMBER_FIELDS = ("id", "correct_answer_num")
TASKS_ROOT = Path(__file__).resolve().parent  # the folder holding suites.yaml and the group files


def resolve_data_dir(
    data_dir: Any = None, suite_data_dir: Any = None, tasks_root: Path | None = None
) -> tuple[Path, str] | None:
    """(folder, where the setting came from), or None for the hub.

    `tasks_root` is the tasks folder the calling task file lives in (default: this package's).
    """
    if data_dir not in (None, ""):
        return Path(str(data_dir)).expanduser().resolve(), "metadata data_dir"
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_dir():
            raise HarnessError(f"${ENV_DATA_DIR} {shown(env)} is not a folder (expected <data_dir>/<family>/<flores code>/<split>.jsonl); "
                               f"fix it or unset it")
        return path, f"${ENV_DATA_DIR}"
    if suite_data_dir not in (None, ""):
        path = Path(str(suite_data_dir)).expanduser()
        if not path.is_absolute():
            path = Path(tasks_root or TASKS_ROOT) / path
        return path.resolve(), "suite data_dir"
    return None


def split_path(root: Path, family: str, config: str, split: str) -> Path:
    return Path(root) / family / config / f"{split}.jsonl"


def read_local_split(
    root: Path, family: str, config: str, split: str, required: Iterable[str] = (), source: str = "data_dir"
) -> list[dict[str, Any]]:
    """Records of one split from <root>/<family>/<config>/<split>.jsonl; one-line errors."""
    path = split_path(root, family, config, split)
    if path.is_dir():
        raise HarnessError(f"data file {path} is a folder; expected a JSON Lines file")
    if path.is_symlink() and not path.exists():
        raise HarnessError(f"data file {path} is a link that leads nowhere (a broken or looping symlink)")
    if not path.is_file():
        raise HarnessError(
            f"missing data file {path} ({source} {root}; expected <data_dir>/{family}/{config}/{split}.jsonl)"
        )
    required = tuple(required)
    records: list[dict[str, Any]] = []
    kinds = _FieldKinds(str(path))
    for lineno, line in enumerate(read_utf8(path, "data file").split("\n"), 1):  # not splitlines: U+2028 is text
        if not line.strip():
            continue
        record = _record(line, path, lineno, required)
        kinds.check(record, lineno)
        records.append(record)
    if not records:
        raise HarnessError(f"{path} holds no records")
    return records


def _unique_keys(where: str):
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in items:
            if key in seen:  # json.loads keeps the last silently: which one the author meant is a guess
                raise HarnessError(f"{where}: key {shown(key)} is given twice in one record; give each field once")
            seen[key] = value
        return seen
    return pairs


def _record(line: str, path: Path, lineno: int, required: tuple[str, ...]) -> dict[str, Any]:
    try:
        record = json.loads(line, object_pairs_hook=_unique_keys(f"{path}:{lineno}"))
    except json.JSONDecodeError as exc:
        if lineno == 1 and line.strip() in ("[", "{"):
            raise HarnessError(f"{path}:1: a JSON document over several lines (pretty-printed); a data file holds one JSON object "
                               "per line (JSON Lines)") from None
        raise HarnessError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise HarnessError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
    missing = [f for f in required if f not in record]
    if missing:
        raise HarnessError(f"{path}:{lineno}: record lacks field(s) {', '.join(missing)}")
    _check_values(record, required, f"{path}:{lineno}")
    return record


def _check_values(record: dict[str, Any], required: Iterable[str], where: str) -> None:
    """A null would reach the prompt as the text "None" (a passage), or fail once the model is loaded
    (a question); an empty text is an item no system can get right (an empty FLORES reference)."""
    for name in required:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise HarnessError(f"{where}: field {name!r} is {'null' if value is None else 'empty'}; it needs a value")
        if isinstance(value, (list, dict)):
            raise HarnessError(f"{where}: field {name!r} is {_kind(value)} ({shown(value)}); expected a text")
        if name not in NUMBER_FIELDS and not isinstance(value, str):  # a number would reach the prompt as its digits
            raise HarnessError(f"{where}: field {name!r} is {_kind(value)} ({shown(value)}); expected a text (in quotes)")


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object"}[type(value)]


class _FieldKinds:
    """The JSON type of each field across a file's rows: a table column has one type (datasets,
    through Arrow, refuses a column of numbers and strings with an ArrowTypeError)."""

    def __init__(self, where: str):
        self.where = where
        self.first: dict[str, tuple[str, int]] = {}

    def check(self, record: dict[str, Any], lineno: int) -> None:
        for name, value in record.items():
            kind = _kind(value)
            if kind is None:
                continue
            seen = self.first.setdefault(name, (kind, lineno))
            if seen[0] != kind:
                raise HarnessError(f"{self.where}:{lineno}: field {name!r} is {kind} here but {seen[0]} on line {seen[1]}; "
                                   "give a field one type in every row")


def read_hub_split(dataset: str, config: str, split: str) -> list[dict[str, Any]]:
    """One split from the hub (a script repository such as Davlan/sib200 through its Parquet
    conversion; a gated one such as openlanguagedata/flores_plus ends in a line naming its page)."""
    from harness.core import hub

    try:
        return hub.load_split(dataset, config, split)
    except HarnessError:
        raise
    except Exception as exc:
        raise hub.explain(
            exc, dataset, f"{dataset} (config {config}, split {split})",
            f"offline, run `harness fetch` where the hub is reachable and pass its folder as a data_dir "
            f"(--data-dir, lm_eval --metadata '{{\"data_dir\": ...}}' or ${ENV_DATA_DIR})",
        ) from exc


def read_split(
    *,
    family: str,
    config: str,
    split: str,
    dataset: str | None,
    required: Iterable[str] = (),
    data_dir: Any = None,
    suite_data_dir: Any = None,
    tasks_root: Path | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Records of one split and a label naming where they came from (a path or a hub id)."""
    local = resolve_data_dir(data_dir, suite_data_dir, tasks_root)
    if local is not None:
        root, source = local
        records = read_local_split(root, family, config, split, required, source)
        return records, str(split_path(root, family, config, split))
    if not dataset:
        raise HarnessError(f"no data_dir given and no hub dataset named for {family} {config}")
    where = f"{dataset}:{config}:{split}"
    records = read_hub_split(dataset, config, split)
    for n, record in enumerate(records, 1):
        _check_values(record, required, f"{where} record {n}")
    return records, where


def to_dataset_dict(splits: dict[str, list[dict[str, Any]]]):
    """{split: records} -> datasets.DatasetDict, the shape lm-eval expects from custom_dataset."""
    import datasets
    import pyarrow

    out = {}
    for name, rows in splits.items():
        try:
            out[name] = datasets.Dataset.from_list(rows)
        except pyarrow.ArrowException as exc:  # e.g. a list of numbers in one row, of strings in another
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            raise HarnessError(f"the {name!r} records do not form a table ({type(exc).__name__}: {first}); "
                               "give each field one type in every row") from None
    return datasets.DatasetDict(out)
