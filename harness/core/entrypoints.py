"""Plugin classes registered under an entry-point group (trainers, engines): loaded and checked alike."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TypeVar

from harness.core.errors import HarnessError, shown

T = TypeVar("T")


def load_plugin_classes(group: str, base: type[T], kind: str, label: str = "") -> dict[str, type[T]]:
    """Every class registered under `group`, by its entry-point name, which must also be the class's
    `name` (logs, run names and reports use `name`, so a subclass that kept its parent's would pass as
    the parent). `kind` names one in messages ("a trainer"), `label` prefixes "entry point" ("engine ")."""
    found: dict[str, type[T]] = {}
    for ep in entry_points(group=group):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise HarnessError(f"{label}entry point {ep.name!r} ({ep.value}) is not a harness {base.__name__} subclass")
        if getattr(cls, "name", None) != ep.name:
            raise HarnessError(f"{label}entry point {ep.name!r} ({ep.value}) is {kind} named "
                               f"{shown(getattr(cls, 'name', None))}; set name = {ep.name!r} in the class")
        found[ep.name] = cls
    return found
