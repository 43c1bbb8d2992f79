"""A plain lm-eval task's local data files (`dataset_kwargs.data_files`), resolved as the harness reads them.

lm-eval hands `data_files` to the datasets library, which reads a relative path from the working
directory: the same YAML then worked from one folder and failed from another, after evaluation had
begun. The harness reads a relative path from the folder of the task's YAML instead (README "Adding a
task"), hands lm-eval the resolved paths, and checks that every file is there before any model loads.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError, shown
from harness.evaluation.registry import TaskInfo, read_yaml

_GLOB_CHARS = "*?["


def _resolved(name: str, folder: Path) -> str:
    path = Path(name).expanduser()
    return str(path if path.is_absolute() or "://" in name else folder / path)


def _map(given: Any, fn) -> Any:
    """`data_files` in any of the datasets library's shapes (a path, a list, {split: path or list}) with
    each path passed through `fn`."""
    if isinstance(given, str):
        return fn(given)
    if isinstance(given, dict):
        return {split: _map(value, fn) for split, value in given.items()}
    if isinstance(given, (list, tuple)):
        return [_map(value, fn) for value in given]
    return given


def _paths(given: Any) -> list[str]:
    found: list[str] = []
    _map(given, found.append)
    return found


def dataset_kwargs(task: TaskInfo) -> dict[str, Any] | None:
    """The task's `dataset_kwargs` with its data files resolved against its YAML's folder; None when its
    YAML names no local data files (a harness family task, or hub data)."""
    if "config" in task.metadata and "family" in task.metadata and "kind" in task.metadata:
        return None  # a harness family task: its loader reads the data folder
    cfg = read_yaml(task.yaml_path)
    kwargs = cfg.get("dataset_kwargs") if isinstance(cfg, dict) else None
    if not isinstance(kwargs, dict) or not kwargs.get("data_files"):
        return None
    folder = task.yaml_path.parent
    return {**kwargs, "data_files": _map(kwargs["data_files"], lambda name: _resolved(str(name), folder))}


def data_files(task: TaskInfo) -> list[Path]:
    """Every local file (a glob pattern: every match) the task's YAML names, resolved; [] for none."""
    kwargs = dataset_kwargs(task)
    if kwargs is None:
        return []
    files: list[Path] = []
    for name in _paths(kwargs["data_files"]):
        files += [Path(p) for p in sorted(glob.glob(name))] if any(c in name for c in _GLOB_CHARS) else [Path(name)]
    return files


def check_data_files(task: TaskInfo) -> None:
    """One line naming the first data file of the task that is missing (or a pattern that matches none)."""
    kwargs = dataset_kwargs(task)
    if kwargs is None:
        return
    for name in _paths(kwargs["data_files"]):
        missing = not glob.glob(name) if any(c in name for c in _GLOB_CHARS) else not Path(name).is_file()
        if missing and "://" not in name:
            raise HarnessError(f"task {shown(task.name)} ({task.yaml_path}): data file {name!r} does not exist "
                               "(a relative data_files path is read from the YAML's folder)")
