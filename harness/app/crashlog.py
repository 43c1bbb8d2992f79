"""The last resort: an unexpected exception becomes one line plus a log file holding the traceback."""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path


def write_crash_log(exc: BaseException) -> Path | None:
    """The command line and traceback in <cache>/logs/crash-<time>-<pid>.log (else the temp folder)."""
    import os

    from harness.core.models import cache_root

    text = f"argv: {sys.argv!r}\n\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    name = f"crash-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}.log"
    for folder in (cache_root() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return folder / name
        except OSError:
            continue
    return None


def crash_line(exc: BaseException) -> str:
    path = write_crash_log(exc)
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    where = f"the traceback is in {path}" if path else "no log could be written"
    return f"harness: internal error: {type(exc).__name__}: {first} ({where}; please report it)"
