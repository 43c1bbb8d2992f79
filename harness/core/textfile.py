"""Reading a user's text file (data rows, translations, instructions, JSON configs): UTF-8 or one line saying where not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError


def decode_utf8(data: bytes, where: str) -> str:
    """`data` as UTF-8; a file saved in another encoding (Latin-1, cp1252) is named with its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise HarnessError(f"{where}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
                           "save the file as UTF-8") from None


def read_utf8(path: Path, what: str = "file") -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise HarnessError(f"{what} {str(path)!r} cannot be read ({exc.strerror or exc})") from None
    return decode_utf8(data, str(path))


def json_file(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{what} {str(path)!r} cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{what} {str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
