"""The house's floors: a module imports only from its own floor or the floors below it.

Each floor is a package (or, for the two doors of the trainers, one module); bottom to top:
  1. harness.core         errors, languages, setting rules, run store, progress, the Hub, models
  2. harness.engines      vLLM and HF, the routing between them, their scorers
  3. harness.evaluation   the task registry, one evaluation through lm-eval, its cache, the metrics
  4. tasks                lm-eval task families and their data loading
  5. harness.trainer_api  the interface every trainer implements, and the trainers' registry
  6. trainers             what builds training data and trains an adapter
  7. harness.plugin       the public API third-party trainers import (re-exports 1, 5 and 6)
  8. harness.services     what checks, fetches and measures a run's inputs across tasks and trainers
  9. reports              the report and the regression check, from run folders
 10. harness.app          the command line, the pipeline of stages, comparisons

Imports are read from the source (every `import`, also those inside functions), not executed.
No module-level imports run in a circle either (an import inside a function runs when it is called,
after both modules are loaded, so it does not count).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "tasks", "trainers", "reports")
FLOORS = ("harness.core", "harness.engines", "harness.evaluation", "tasks", "harness.trainer_api", "trainers",
          "harness.plugin", "harness.services", "reports", "harness.app")
# `harness` itself (its __init__: the version and the guard against shadowed packages) is the ground;
# `python -m harness` runs the app.
ALIASES = {"harness": "harness.core", "harness.__main__": "harness.app"}


def floor_of(module: str) -> int:
    """The floor (index into FLOORS) of a dotted module name of this project; ValueError: none."""
    if module in ALIASES:
        return FLOORS.index(ALIASES[module])
    for i, floor in enumerate(FLOORS):
        if module == floor or module.startswith(floor + "."):
            return i
    raise ValueError(f"{module} is on no floor: put it in one of the floor packages ({', '.join(FLOORS)})")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _import_nodes(tree: ast.AST, module_level: bool) -> list[ast.AST]:
    """The import statements of `tree`; module_level: not those inside a function (class bodies
    and `if TYPE_CHECKING:` blocks run, or are read by type checkers, at import time: they count)."""
    if not module_level:
        return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    found: list[ast.AST] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            found += _import_nodes(node, module_level=True)
    return found


def imported_modules(source: str, module: str, is_package: bool = False, module_level: bool = False) -> list[tuple[int, str]]:
    """(line, module) for every import of this project's packages in `source` (module_level: only
    those that run when the module is imported)."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in _import_nodes(ast.parse(source), module_level):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from harness.core import hub` imports the module harness.core.hub
            found += [(node.lineno, f"{base}.{alias.name}" if _is_module(f"{base}.{alias.name}") else base)
                      for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def upward_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    own = floor_of(module)
    return [f"{module}:{line} imports {name} ({FLOORS[floor_of(name)]} is above {FLOORS[own]})"
            for line, name in imported_modules(source, module, is_package) if floor_of(name) > own]


def project_sources() -> list[Path]:
    files = [f for package in PACKAGES for f in sorted((ROOT / package).rglob("*.py"))]
    return [f for f in files if "fixtures" not in f.relative_to(ROOT).parts]


def test_no_import_runs_up_the_house():
    sources = project_sources()
    assert len(sources) > 50  # the walk found the tree
    upward = [line for f in sources
              for line in upward_imports(f.read_text(encoding="utf-8"), module_name(f), f.name == "__init__.py")]
    assert not upward, "imports that run up the house:\n" + "\n".join(upward)


def test_every_module_is_on_a_floor():
    homeless = []
    for f in project_sources():
        try:
            floor_of(module_name(f))
        except ValueError as exc:
            homeless.append(str(exc))
    assert not homeless, "\n".join(homeless)
    with pytest.raises(ValueError, match="harness.helpers is on no floor"):
        floor_of("harness.helpers")  # a new module loose in harness/ has no floor


def test_the_check_sees_an_upward_import():
    # Each form of import a module could use to reach a higher floor.
    assert upward_imports("from reports.build import build_report\n", "harness.evaluation.evaluate")
    assert upward_imports("def f():\n    import trainers.lora\n", "tasks.dataio")
    assert upward_imports("from harness.app import pipeline\n", "reports.build")
    assert upward_imports("from ..app.cli import main\n", "harness.engines.base")
    assert not upward_imports("from harness.core import hub\nimport harness.core.runstore\n", "trainers.lora")
    assert upward_imports("from harness.evaluation.metrics import corpus_score\n", "harness.core.hub")  # floors inside harness/ too
    assert upward_imports("from harness.services import doctor\n", "trainers.sdrrl")
    assert not upward_imports("from harness.trainer_api import Trainer\n", "trainers.base")
    assert not upward_imports("from reports.build import build_report\n", "harness.app.pipeline")
    assert upward_imports("from harness.plugin import Trainer\n", "trainers.sdrrl")  # the plugin API is above the trainers
    assert not upward_imports("from trainers.lora import train_lora\n", "harness.plugin")


def import_graph(sources: list[Path]) -> dict[str, set[str]]:
    """Module -> the project's modules it imports at module level."""
    graph: dict[str, set[str]] = {}
    for f in sources:
        module = module_name(f)
        found = imported_modules(f.read_text(encoding="utf-8"), module, f.name == "__init__.py", module_level=True)
        graph[module] = {name for _, name in found if name != module}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle a depth-first walk closes, as its path (a, b, ..., a)."""
    circles: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            circles.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            walk(nxt, path + [node])
        done.add(node)

    for node in sorted(graph):
        walk(node, [])
    return circles


def test_no_module_level_import_runs_in_a_circle():
    graph = import_graph(project_sources())
    assert "trainers.config" in graph["trainers.parallel"]  # the walk read the imports, TYPE_CHECKING ones too
    circles = import_circles(graph)
    assert not circles, "import circles:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_check_sees_a_circle():
    config = "from trainers.parallel import parse_formats\n"
    parallel = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from trainers.config import ParallelConfig\n"
    graph = {m: {n for _, n in imported_modules(src, m, module_level=True)}
             for m, src in (("trainers.config", config), ("trainers.parallel", parallel))}
    assert import_circles(graph) == [["trainers.config", "trainers.parallel", "trainers.config"]]
    lazy = "def f():\n    from trainers.config import ParallelConfig\n"  # runs after both are loaded
    graph["trainers.parallel"] = {n for _, n in imported_modules(lazy, "trainers.parallel", module_level=True)}
    assert import_circles(graph) == []
    assert imported_modules(lazy, "trainers.parallel")  # the upward-import check still reads it
