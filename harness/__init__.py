"""sdrrl-harness: an evaluation-first benchmark harness with pluggable trainers."""

import sys
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path

__version__ = "0.1.0"

# The project's other top-level packages. Their names are generic: under `python -m harness` the
# working folder comes first on sys.path, so a user's own `tasks/` folder there would be imported
# in place of ours. They are looked up beside harness/ first, whatever sys.path says.
SIBLINGS = ("tasks", "trainers", "reports")
_ROOT = str(Path(__file__).resolve().parent.parent)


class _SiblingFinder(MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        return PathFinder.find_spec(fullname, [_ROOT]) if fullname in SIBLINGS else None


if not any(type(finder).__name__ == _SiblingFinder.__name__ for finder in sys.meta_path):
    sys.meta_path.insert(0, _SiblingFinder())
