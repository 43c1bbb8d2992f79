"""A third-party plugin package as `pip install` leaves it: the module and its dist-info with one entry
point, in a folder put first on sys.path (tests/test_plugin.py, test_plugin_recipe.py, test_engine_plugin.py)."""

from __future__ import annotations

import ast
from pathlib import Path

OUR_PACKAGES = ("harness", "trainers", "tasks", "reports")


def install_plugin(site: Path, module: str, source: str, group: str, entry_name: str, target: str) -> Path:
    """`module` (its __init__ is `source`) and its dist-info under `site`; `target` is "module:Class"."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(source, encoding="utf-8")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[{group}]\n{entry_name} = {target}\n", encoding="utf-8")
    return site


def our_imports(source: str) -> set[str]:
    """The modules of this project a plugin's source imports from."""
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) and node.module}
    return {m for m in imported if m.split(".")[0] in OUR_PACKAGES}
