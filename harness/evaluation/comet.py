"""COMET through a subprocess in its own virtual environment, with a content-keyed cache.

unbabel-comet pins transformers<5, numpy<2, huggingface-hub<1 and setuptools<81, which cannot live
beside vLLM and lm-eval, so it has its own venv (`bash scripts/install.sh --comet`, default
<cache>/venv-comet, shared by every checkout on the machine) and scores through scripts/comet_score.py: JSONL {"src","mt","ref"} on stdin, JSONL
{"score"} on stdout, one line per item in order, batched, on the GPU when there is one.

Settings (environment, so `harness eval` and `harness run` need no new flag):
  SDRRL_COMET_MODEL    a hub id (our default when set to "default": Unbabel/wmt22-comet-da) or a local
                       checkpoint: a COMET model folder (with checkpoints/model.ckpt) or a .ckpt file.
                       Unset: no COMET.
  SDRRL_COMET_PYTHON   the venv's python (default: <cache>/venv-comet/bin/python; <cache> is
                       $SDRRL_HOME or ~/.cache/sdrrl-harness)
  SDRRL_COMET_BATCH    batch size (default 16)
Scores are cached per (model, source, hypothesis, reference) under <cache>/comet/.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.models import cache_root
from harness.core.runstore import read_json, sha256_json, write_json

DEFAULT_MODEL = "Unbabel/wmt22-comet-da"
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "comet_score.py"
INSTALL_HINT = "bash scripts/install.sh --comet"


@dataclass(frozen=True)
class CometSettings:
    model: str  # hub id or local path
    python: Path
    batch_size: int = 16


def default_python() -> Path:
    return cache_root() / "venv-comet" / "bin" / "python"


def from_env() -> CometSettings | None:
    model = os.environ.get("SDRRL_COMET_MODEL", "").strip()
    if not model:
        return None
    python = Path(os.environ.get("SDRRL_COMET_PYTHON", "").strip() or default_python())
    batch = os.environ.get("SDRRL_COMET_BATCH", "16").strip()
    if not batch.isdigit() or int(batch) < 1:
        raise HarnessError(f"SDRRL_COMET_BATCH must be a positive integer, got {batch!r}")
    return CometSettings(model=DEFAULT_MODEL if model == "default" else model, python=python, batch_size=int(batch))


def _is_local(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()


def model_identity(settings: CometSettings) -> str:
    """The hub id, or the local checkpoint's path plus size and mtime (a retrained file is a new model)."""
    if not _is_local(settings.model):
        return settings.model
    path = Path(settings.model).expanduser().resolve()
    ckpt = path / "checkpoints" / "model.ckpt" if path.is_dir() else path
    stat = ckpt.stat() if ckpt.exists() else None
    return f"{ckpt}:{stat.st_size}:{int(stat.st_mtime)}" if stat else str(ckpt)


def settings_key(settings: CometSettings | None) -> str | None:
    return None if settings is None else model_identity(settings)


def check_ready(settings: CometSettings) -> None:
    """One line naming the fix when the COMET environment or a local model is missing."""
    if not settings.python.exists():
        raise HarnessError(f"COMET is on (SDRRL_COMET_MODEL={settings.model}) but its environment "
                           f"{settings.python} does not exist; run: {INSTALL_HINT}")
    if _is_local(settings.model):
        path = Path(settings.model).expanduser()
        ckpt = path / "checkpoints" / "model.ckpt" if path.is_dir() else path
        if not ckpt.is_file():
            raise HarnessError(f"COMET model {settings.model!r} has no checkpoint at {ckpt}; set SDRRL_COMET_MODEL "
                               f"to a COMET model folder or .ckpt file, or to a hub id such as {DEFAULT_MODEL}")


def _cache_file(settings: CometSettings) -> Path:
    return cache_root() / "comet" / f"{sha256_json(model_identity(settings))[:20]}.json"


def score(settings: CometSettings, items: list[tuple[str, str, str]]) -> list[float]:
    """COMET of each (source, hypothesis, reference), in order; cached items are not rescored."""
    check_ready(settings)
    cache_path = _cache_file(settings)
    cache: dict[str, float] = read_json(cache_path) if cache_path.exists() else {}
    keys = [sha256_json(list(item)) for item in items]
    # An empty hypothesis is not sent (some COMET models return NaN for it): it scores 0.0, our default.
    todo = sorted({k: item for k, item in zip(keys, items) if k not in cache and item[1].strip()}.items())
    if todo:
        scores = _run_scorer(settings, [item for _k, item in todo])
        fresh = read_json(cache_path) if cache_path.exists() else {}  # another process may have added some
        cache = {**fresh, **cache, **{k: s for (k, _item), s in zip(todo, scores)}}
        write_json(cache_path, cache)
    return [float(cache[k]) if item[1].strip() else 0.0 for k, item in zip(keys, items)]


def _run_scorer(settings: CometSettings, items: list[tuple[str, str, str]]) -> list[float]:
    payload = "".join(json.dumps({"src": s, "mt": m, "ref": r}, ensure_ascii=False) + "\n" for s, m, r in items)
    cmd = [str(settings.python), str(SCRIPT), "--model", settings.model, "--batch-size", str(settings.batch_size)]
    proc = subprocess.run(cmd, input=payload, capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no error output"])[-1]
        raise HarnessError(f"COMET scorer failed (model {settings.model}): {last}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if len(lines) != len(items):
        raise HarnessError(f"COMET scorer returned {len(lines)} scores for {len(items)} items")
    scores = [float(json.loads(ln)["score"]) for ln in lines]
    bad = [i for i, s in enumerate(scores) if math.isnan(s)]
    if bad:
        raise HarnessError(f"COMET scorer returned NaN for {len(bad)} item(s), the first: {items[bad[0]]!r}")
    return scores
