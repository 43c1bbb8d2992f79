"""Rules for settings: type, range and choice, each able to say what it accepts.

A settings dataclass (a trainer's Config, or one concern of it: trainers/config.py) lists its rules
in a `RULES` class attribute ({field: Rule}); a subclass adds its own and inherits its parents'.
`check_rules` applies every rule of a config's class tree, so a bad value fails in the plan stage
with one line naming the value and what is valid. A field declared with `setting(...)` carries its
help text and what backs its default (`harness list settings --trainer T` prints both).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from harness.core.errors import HarnessError, shown

# How a number is written in a setting: int() and float() also take "1_000", "١٢" (Arabic-Indic
# digits), "nan" and "inf"; a setting takes ASCII decimals only.
# A leading zero is refused too: YAML 1.1 reads `010` as 8, Python's int() as 10.
DECIMAL_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
DECIMAL_FLOAT = re.compile(r"[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z")
# Training lengths past any real run (our default): a typo of a few zeros is refused, not run for years.
MAX_EPOCHS = 1000
MAX_STEPS = 10_000_000
TRUE_WORDS = ("true", "1", "yes", "on")  # how a true/false setting may be written
FALSE_WORDS = ("false", "0", "no", "off")
FLAG_WORDS = tuple(word for pair in zip(TRUE_WORDS, FALSE_WORDS) for word in pair)
# What backs a setting's default: the paper's own text, only a third party's report, nothing known
# (our default), or nothing to back (how the harness runs, not a choice of the method).
PAPER_WORDS = ("confirmed", "third-party", "unknown", "n/a")
_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a comma-separated list"}


@dataclass(frozen=True)
class Rule:
    kind: type
    lo: float | None = None
    hi: float | None = None
    hi_open: bool = False  # True: hi itself is not allowed
    lo_open: bool = False  # True: lo itself is not allowed
    choices: tuple[str, ...] = ()
    non_empty: bool = False
    note: str = ""  # what the range alone does not say

    def describe(self) -> str:
        return self._describe() + (f" ({self.note})" if self.note else "")

    def _describe(self) -> str:
        if self.choices:
            return f"one of: {', '.join(self.choices)}"
        text = _TYPE_WORDS.get(self.kind, self.kind.__name__)
        if self.lo is not None and self.hi is not None:
            return f"{text} in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{text} {'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{text} <= {_num(self.hi)}"
        return f"a non-empty {text.removeprefix('a ').removeprefix('an ')}" if self.non_empty else text

    def accepts(self, value: Any) -> bool:
        if not _is_kind(value, self.kind):
            return False
        if self.choices:
            return value in self.choices
        if self.non_empty and not value:
            return False
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                return False
            if self.lo is not None and (value < self.lo or (self.lo_open and value <= self.lo)):
                return False
            if self.hi is not None and (value > self.hi or (self.hi_open and value >= self.hi)):
                return False
        return True


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _is_kind(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def at_least(lo: float, kind: type = int) -> Rule:
    return Rule(kind, lo=lo)


def above(lo: float, kind: type = float) -> Rule:
    return Rule(kind, lo=lo, lo_open=True)


def between(lo: float, hi: float, kind: type = float, hi_open: bool = False) -> Rule:
    return Rule(kind, lo=lo, hi=hi, hi_open=hi_open)


def one_of(*choices: str) -> Rule:
    return Rule(str, choices=tuple(choices))


def rules_of(cls: type) -> dict[str, Rule]:
    """Every rule of `cls` and its bases; a subclass's rule for a field wins."""
    merged: dict[str, Rule] = {}
    for klass in reversed(cls.__mro__):
        merged.update(vars(klass).get("RULES", {}))
    return merged


def describe(cls: type, name: str, default: Any) -> str:
    """What field `name` of config class `cls` accepts: its rule, else the type of its default."""
    rule = rules_of(cls).get(name)
    if rule:
        return rule.describe()
    kind = next((k for k in (bool, int, float, str, list) if isinstance(default, k)), type(default))
    return _TYPE_WORDS.get(kind, kind.__name__)


def check_rules(config: Any, owner: str) -> None:
    """Raise one HarnessError for the first field of `config` its rules refuse."""
    for name, rule in rules_of(type(config)).items():
        value = getattr(config, name, None)
        if not rule.accepts(value):
            raise HarnessError(f"bad value for {owner}.{name}: {shown(value)}; expected {rule.describe()}")


def setting(default: Any = dataclasses.MISSING, *, help: str, paper: str, factory: Callable[[], Any] | None = None) -> Any:
    """A settings dataclass field with its help text and `paper` (one of PAPER_WORDS) in its metadata;
    `factory` instead of `default` for a mutable default."""
    if paper not in PAPER_WORDS:
        raise ValueError(f"paper={paper!r}; valid: {', '.join(PAPER_WORDS)}")
    metadata = {"help": help, "paper": paper}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
