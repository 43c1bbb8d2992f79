"""RunSpec: everything that defines a run, frozen and hashed, saved as runs/<name>/spec.yaml."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import HarnessError, shown
from harness.core.runstore import sha256_json, write_text


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
    # --tasks (empty: the suite's own) and --include-path, frozen: a resumed run resolves the same tasks
    tasks: tuple[str, ...] = ()
    include_paths: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for key in _LIST_FIELDS:
            d[key] = list(d[key])
        return d

    @property
    def digest(self) -> str:
        """The hash of a fresh run's spec; a resumed run hashes check_same_run's view (spec_digest)."""
        return spec_digest(self.to_dict())


_LIST_FIELDS = ("languages", "tasks", "include_paths")  # tuples in the spec, lists in spec.yaml


def default_run_name(trainer: str, model: str, suite: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name if "/" in model else model).strip("-")
    return f"{trainer}-{slug}-{suite}"


def save_spec(spec: RunSpec | dict[str, Any], path: Path) -> None:
    """Write a spec, or the dict `check_same_run` returned (the spec as its run folder keeps it)."""
    d = spec.to_dict() if isinstance(spec, RunSpec) else spec
    write_text(path, yaml.safe_dump(d, sort_keys=False, allow_unicode=True))


def load_spec_dict(path: Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


_ABSENT = object()  # a key the stored spec does not have


def _shown_value(value: Any) -> str:
    return "(absent)" if value is _ABSENT else shown(value, 60)


def _at_defaults(stored: dict[str, Any], new: dict[str, Any], defaults: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`new` less the keys `stored` lacks whose new value is their default (added since the run was
    made), and the keys that still differ, as 'key: stored -> new'."""
    kept = {k: v for k, v in new.items() if k in stored or k not in defaults or v != defaults[k]}
    changed = [f"{key}: {_shown_value(stored.get(key, _ABSENT))} -> {_shown_value(kept.get(key, _ABSENT))}"
               for key in [*stored, *(k for k in kept if k not in stored)] if stored.get(key, _ABSENT) != kept.get(key, _ABSENT)]
    return kept, changed


def frozen_view(stored: dict[str, Any] | None, spec: RunSpec, trainer_defaults: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The spec as the run folder keeps it, and what differs from the stored one (empty: the same run).

    A field or trainer setting added after the run was made is absent from the stored spec; at its
    default it changes nothing, so it is left out of the view, which then hashes as the stored spec
    did: the run's stages stay cached. Trainer settings are named by their flat names."""
    new = spec.to_dict()
    if stored is None:
        return new, []
    fields = {f.name: list(f.default) if f.name in _LIST_FIELDS else f.default
              for f in dataclasses.fields(RunSpec) if f.default is not dataclasses.MISSING}
    top, changed = _at_defaults({k: v for k, v in stored.items() if k != "trainer_config"},
                                {k: v for k, v in new.items() if k != "trainer_config"}, fields)
    settings, changed_settings = _at_defaults(stored.get("trainer_config") or {}, new["trainer_config"], trainer_defaults)
    view = {k: (settings if k == "trainer_config" else top[k]) for k in new if k in top or k == "trainer_config"}
    return view, changed + [f"setting {line}" for line in changed_settings]


def check_same_run(path: Path, spec: RunSpec, trainer_defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run folder belongs to one spec; reusing its name with other settings would mix results.
    Returns the spec as the folder keeps it (frozen_view): what the stages hash, and what is saved.
    `trainer_defaults`: the trainer's flat settings at their defaults."""
    stored = load_spec_dict(path) if path.exists() else None
    view, changed = frozen_view(stored, spec, trainer_defaults or {})
    if changed:
        raise HarnessError(
            f"run folder {str(path.parent)!r} was made with other settings ({'; '.join(changed)}); "
            "choose another --name, or --force plan to start it over"
        )
    return view


def spec_digest(view: dict[str, Any]) -> str:
    """The run's identity hash, an input of every stage: of the view check_same_run returns."""
    return sha256_json(view)
