"""What every benchmark script ends with: its summary printed as JSON, and written where asked."""

from __future__ import annotations

import json
from pathlib import Path


def emit(summary: dict, path: Path | None) -> None:
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    print(text)
    if path:
        path.write_text(text + "\n", encoding="utf-8")
