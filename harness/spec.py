"""RunSpec: everything that defines a run, frozen and hashed, saved as runs/<name>/spec.yaml."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError
from harness.runstore import sha256_json, write_text


@dataclass(frozen=True)
class RunSpec:
    name: str
    trainer: str
    model: str  # as the user gave it: built-in name, local folder or hub id
    suite: str
    languages: tuple[str, ...]  # the suite's languages this run covers
    trainer_config: dict[str, Any] = field(default_factory=dict)
    engine: str = "auto"
    seed: int = 0
    limit: int | None = None  # items per task, for quick runs; None = the whole test set
    data_dir: str | None = None
    max_model_len: int = 2048
    max_gen_toks: int | None = None
    adapter_serving: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["languages"] = list(self.languages)
        return d

    @property
    def digest(self) -> str:
        return sha256_json(self.to_dict())


def default_run_name(trainer: str, model: str, suite: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name if "/" in model else model).strip("-")
    return f"{trainer}-{slug}-{suite}"


def save_spec(spec: RunSpec, path: Path) -> None:
    write_text(path, yaml.safe_dump(spec.to_dict(), sort_keys=False, allow_unicode=True))


def load_spec_dict(path: Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def diff_specs(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            changed.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return changed


def check_same_run(path: Path, spec: RunSpec) -> None:
    """A run folder belongs to one spec; reusing its name with other settings would mix results."""
    if not path.exists():
        return
    # A field added to RunSpec after the run was made counts as its default, so upgrades keep runs.
    defaults = {f.name: f.default for f in dataclasses.fields(RunSpec) if f.default is not dataclasses.MISSING}
    changed = diff_specs({**defaults, **load_spec_dict(path)}, spec.to_dict())
    if changed:
        raise HarnessError(
            f"run folder {str(path.parent)!r} was made with other settings ({'; '.join(changed)}); "
            "choose another --name, or --force plan to start it over"
        )
