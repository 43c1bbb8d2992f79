"""The one exception type the CLI turns into a one-line message."""


class HarnessError(Exception):
    """A user-facing error: bad input or a missing resource. Printed as one line, no traceback."""


def unknown(kind: str, value: object, valid: "list[str] | tuple[str, ...]") -> HarnessError:
    """An error naming the bad value and the valid ones."""
    shown = ", ".join(sorted(str(v) for v in valid)) or "none"
    return HarnessError(f"unknown {kind} {value!r}; valid: {shown}")
