"""`--config FILE`: a YAML mapping of trainer settings, read strictly.

PyYAML's safe_load is lenient where a settings file must not be: a key written twice silently takes
the last value; YAML 1.1 reads `010` as 8, `1:30` as 90 and `1_000` as 1000; and nine lines of
aliases (a "billion laughs") expand to a billion values, which took minutes and printed gigabytes
before the bad value was refused. Here a repeated key is refused naming it, a number is decimal
(anything else stays a string, which the setting's own check then names), and aliases may be used
as long as what they expand to stays the size of a settings file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from harness.core.errors import HarnessError, shown
from harness.core.rules import DECIMAL_FLOAT, DECIMAL_INT

MAX_BYTES = 1 << 20  # a settings file is a few dozen lines
MAX_NODES = 10_000  # values after alias expansion; the largest shipped setting is a list of 7
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class SettingsLoader(yaml.SafeLoader):
    """SafeLoader whose only numbers are decimal ints and floats (read by int() and float())."""


SettingsLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SettingsLoader.add_implicit_resolver(_INT, DECIMAL_INT, list("-+0123456789"))  # first: "12" is an int
SettingsLoader.add_implicit_resolver(_FLOAT, DECIMAL_FLOAT, list("-+0123456789."))
SettingsLoader.add_constructor(_INT, lambda loader, node: int(loader.construct_scalar(node)))
SettingsLoader.add_constructor(_FLOAT, lambda loader, node: float(loader.construct_scalar(node)))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_keys(node: MappingNode, where: str) -> None:
    seen: dict[str, int] = {}
    for key, _ in node.value:
        if key.tag == "tag:yaml.org,2002:merge" or not isinstance(key.value, str):
            continue
        line = key.start_mark.line + 1
        if key.value in seen:
            raise HarnessError(f"{where}: key {key.value[:60]!r} is given twice (lines {seen[key.value]} and {line}); "
                               "give each setting once")
        seen[key.value] = line


def check_nodes(root: Node, where: str) -> None:
    """Repeated keys in any mapping, and the size after alias expansion: each distinct node is
    visited once (an alias is the same node object again), so a bomb is refused in milliseconds."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise HarnessError(f"{where}: an alias refers to the value that holds it (line {node.start_mark.line + 1})")
        active.add(key)
        if isinstance(node, MappingNode):
            _check_keys(node, where)
        total = 1 + sum(size(child) for child in _children(node))
        if total > MAX_NODES:
            raise HarnessError(f"{where}: its aliases expand to more than {MAX_NODES} values (a YAML alias bomb?); "
                               "a settings file holds a few dozen settings")
        active.discard(key)
        sizes[key] = total
        return total

    size(root)


def _parse(text: str, where: str) -> Any:
    loader = SettingsLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return {}
        check_nodes(root, where)
        return loader.construct_document(root)
    finally:
        loader.dispose()


def load_config_file(path: str | None) -> dict[str, Any]:
    """The settings in `path` (none: {}); every problem is one HarnessError naming the file."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise HarnessError(f"config file {path!r} does not exist or is not a file")
    where = f"config file {path!r}"
    try:
        if p.stat().st_size > MAX_BYTES:
            raise HarnessError(f"{where} is {p.stat().st_size} bytes; a settings file is at most {MAX_BYTES}")
        data = _parse(p.read_text(encoding="utf-8"), where) or {}
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{where} cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise HarnessError(f"{where} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise HarnessError(f"{where} must hold a mapping of trainer settings (setting: value)")
    bad = next((k for k in data if not isinstance(k, str)), None)
    if bad is not None:
        raise HarnessError(f"{where}: key {shown(bad)} is not a setting name; keys are names such as epochs or sdrrl.learning_rate "
                           "(harness list settings --trainer T)")
    return data
