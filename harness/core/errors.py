"""The one exception type the CLI turns into a one-line message."""

import reprlib

MAX_SHOWN = 80  # characters of a user's value quoted in a message: a line stays a line whatever the input
_REPR = reprlib.Repr()
# reprlib stops at these sizes while it writes, so even a value of gigabytes (a YAML alias bomb) is shown at once
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = MAX_SHOWN, MAX_SHOWN, 12, 12, 3


class HarnessError(Exception):
    """A user-facing error: bad input or a missing resource. Printed as one line, no traceback."""


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """repr(value), at most `limit` characters: errors quote values from files and the command
    line, and one of those can be megabytes long."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unknown(kind: str, value: object, valid: "list[str] | tuple[str, ...]") -> HarnessError:
    """An error naming the bad value and the valid ones."""
    listed = ", ".join(sorted(str(v) for v in valid)) or "none"
    return HarnessError(f"unknown {kind} {shown(value)}; valid: {listed}")
