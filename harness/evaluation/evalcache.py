"""What identifies one task's evaluation (its key), and the cache of finished evaluations shared by runs.

Base-model scores are the same for every trainer, so a run finds a task the same model, adapter,
task files, data and settings already went through (by any run) in the shared cache by its key.
Local data enters the key by content (the sha256 of each file the task's loader reads), never by
its path: an edited answer key is a new evaluation.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import time
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from harness.evaluation import comet, genmetrics, taskdata
from harness.engines.routing import Route
from harness.core.models import cache_root
from harness.core.runstore import (
    damaged_file, file_record, json_text, read_json, read_jsonl, sha256_file, sha256_json, task_samples, task_scores,
    write_json, write_jsonl, write_text,
)
from harness.evaluation.registry import TaskInfo, read_yaml, tasks_dir, yaml_files

EVAL_FORMAT = 2  # bump when scores.json / samples.jsonl change shape: old caches are then ignored


def eval_key(req, task: TaskInfo, served: Route, model_fp: str, adapter_fp: str | None) -> str:
    """The key of `task` evaluated as `req` (a harness.evaluation.evaluate.EvalRequest) asks, on the engine and
    adapter serving `served` (the route, not the engine asked for: `auto` and its pick share entries)."""
    return sha256_json(
        {
            "model": model_fp,
            "adapter": adapter_fp,
            "engine": served.engine,
            "adapter_served_as": served.serving,
            "task_code": _task_code_hash(task),
            "data": data_fingerprint(task, req.data_dir),
            "limit": req.limit,
            "max_model_len": req.settings.max_model_len,
            "max_gen_toks": req.settings.max_gen_toks,
            "format": EVAL_FORMAT,
            "genmetrics": genmetrics.VERSION if task.kind == "generation" else None,
            "comet": comet.settings_key(comet.from_env()) if task.kind == "generation" else None,
        }
    )


# Code a task's own Python imports from these packages is part of what it runs (the data loader,
# the sacreBLEU helpers, translation hygiene); harness.core (errors, the language table) is not
# scoring code, and what the language table puts in a task reaches the key through its YAML.
SCORING_PACKAGES = ("tasks", "harness.evaluation")
REPO_ROOT = tasks_dir().parent


def task_files(task: TaskInfo) -> list[Path]:
    """The files a task's evaluation runs: its YAML with its includes, the Python beside them (its
    family's utils), and the modules of SCORING_PACKAGES those import. Never tasks/generate.py: the
    generator's output is the YAML, hashed by content."""
    yamls = yaml_files(task.yaml_path)
    code = sorted({py for y in yamls for py in y.parent.glob("*.py")})
    shared = sorted({m for py in code for m in _scoring_imports(py)} - set(code))
    return [*yamls, *code, *shared]


def _task_code_hash(task: TaskInfo) -> str:
    return sha256_json([(f.name, f.read_text(encoding="utf-8")) for f in task_files(task)])


def _scoring_imports(py: Path) -> set[Path]:
    """Files of SCORING_PACKAGES a module imports (`from tasks import dataio`, `import harness.evaluation.metrics`)."""
    try:
        tree = ast.parse(py.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return set()  # lm-eval reports a broken module when it imports it; the key still hashes its text
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    found = set()
    for name in names:
        if any(name == p or name.startswith(p + ".") for p in SCORING_PACKAGES):
            path = REPO_ROOT / (name.replace(".", "/") + ".py")
            if path.is_file():
                found.add(path)
    return found


def data_fingerprint(task: TaskInfo, data_dir: Path | None) -> dict:
    """What identifies the data `task` evaluates: each local file it reads by content, or the hub dataset."""
    family = _family_loader(task)
    if family is None:
        return _plain_data(task)
    dataio = _task_utils(tasks_dir() / "dataio.py")  # read as the task files read it: tasks/ is a floor above
    local = dataio.resolve_data_dir(data_dir)  # the same rule the loader follows ($SDRRL_DATA_DIR too)
    if local is None:
        return {"hub": task.metadata.get("dataset"), "revision": task.metadata.get("revision")}
    root = local[0]
    files = family.data_files(root, task.metadata)
    # Relative names: the same data in another folder is the same evaluation.
    return {"files": {str(f.relative_to(root)): _content_hash(f) for f in files}}


def _family_loader(task: TaskInfo) -> ModuleType | None:
    """A harness family task's utils.py (it names the local files its loader reads), else None."""
    utils = task.yaml_path.parent / "utils.py"
    if "config" not in task.metadata or not utils.is_file():
        return None
    module = _task_utils(utils)
    return module if hasattr(module, "data_files") else None


def _plain_data(task: TaskInfo) -> dict:
    """A plain lm-eval task's data, as its YAML names it: local `dataset_kwargs.data_files` by
    content (a relative path read from the YAML's folder: harness.evaluation.taskdata), else the
    dataset's hub id, config and revision."""
    cfg = read_yaml(task.yaml_path)
    kwargs = cfg.get("dataset_kwargs") if isinstance(cfg.get("dataset_kwargs"), dict) else {}
    files = taskdata.data_files(task)
    if files:
        return {"path": cfg.get("dataset_path"), "files": {str(f): _content_hash(f) for f in sorted(files)}}
    return {"hub": cfg.get("dataset_path"), "name": cfg.get("dataset_name"), "revision": kwargs.get("revision")}


@lru_cache(maxsize=None)
def _task_utils(path: Path) -> ModuleType:
    """A task family's utils.py (lm-eval imports it by its file path too), or tasks/dataio.py."""
    spec = importlib.util.spec_from_file_location(f"_sdrrl_task_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_hashed: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime_ns) -> sha256: hashed once while unchanged


def _content_hash(path: Path) -> str | None:
    """sha256 of the file's bytes (None when missing: the loader then stops with its own message)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    memo = (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
    if memo not in _hashed:
        _hashed[memo] = sha256_file(path)
    return _hashed[memo]


def shared_cache_dir() -> Path:
    """Finished task evaluations, shared between runs (base-model scores are the same for every trainer)."""
    return Path(os.environ.get("SDRRL_EVAL_CACHE", cache_root() / "evals"))


def task_integrity(task_dir: Path) -> Path:
    """<task dir>/integrity.json: the size and sha256 of scores.json and samples.jsonl as written."""
    return Path(task_dir) / "integrity.json"


def write_entry(task_dir: Path, scores: dict, rows: list[dict]) -> None:
    """One task's result (in a run's evaluation or the shared cache) with its integrity record."""
    write_jsonl(task_samples(task_dir), rows)
    text = json_text(scores).encode("utf-8")
    write_json(task_integrity(task_dir), {
        task_samples(Path()).name: file_record(task_samples(task_dir)),
        task_scores(Path()).name: {"size": len(text), "sha256": hashlib.sha256(text).hexdigest()},
    })
    write_text(task_scores(task_dir), text.decode("utf-8"))  # written last: its presence marks the task done


def publish_entry(entry: Path, scores: dict, rows: list[dict], replace: bool = False) -> bool:
    """Put one task's result into the shared cache, safe with concurrent writers and readers (the
    members of a comparison run at once): the entry is written into a scratch folder beside it and
    renamed into place, so a reader sees the whole entry or none; the first intact entry of a key
    stays (writers of one key computed the same evaluation), a damaged one is replaced; `replace`
    (a forced recomputation) replaces an intact one too. Returns whether this call's entry was published."""
    import fcntl
    import shutil
    import tempfile

    entry = Path(entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent))
    try:
        write_entry(scratch, scores, rows)
        with open(entry.parent / f".{entry.name}.lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # one publisher of a key at a time; readers never wait
            if not replace and read_entry(entry, scores["eval_key"])[0] is not None:
                return False
            if entry.exists():  # damaged, another key's or replaced: moved aside whole, then removed
                stale = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=".stale", dir=entry.parent))
                os.replace(entry, stale / "entry")
                shutil.rmtree(stale, ignore_errors=True)
            os.chmod(scratch, 0o777 & ~_umask())
            os.replace(scratch, entry)
            return True
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_entry(task_dir: Path, key: str) -> tuple[dict | None, str | None]:
    """(scores, None) when `task_dir` holds this key's result intact; (None, how it is damaged) when
    it holds a damaged one; (None, None) when it holds none, or another key's (a stale result).
    Read again before calling it damaged: a shared entry replaced (publish_entry) while it was
    read shows files of two entries for a moment."""
    for _ in range(READ_ATTEMPTS - 1):
        try:
            found = _read_entry_once(task_dir, key)
        except FileNotFoundError:
            found = None, "vanished"
        if found[1] is None:
            return found
        time.sleep(0.05)
    try:
        return _read_entry_once(task_dir, key)
    except FileNotFoundError:
        return None, None  # removed while read: none there now


READ_ATTEMPTS = 3


def _read_entry_once(task_dir: Path, key: str) -> tuple[dict | None, str | None]:
    scores_path = task_scores(task_dir)
    if not scores_path.exists():
        return None, None
    try:
        scores = read_json(scores_path)
    except (ValueError, UnicodeDecodeError):
        return None, f"{scores_path} is damaged (it does not parse)"
    if not isinstance(scores, dict):
        return None, f"{scores_path} is damaged (not a JSON object)"
    if scores.get("eval_key") != key:
        return None, None
    damage = entry_damage(task_dir)
    return (None, damage) if damage else (scores, None)


def entry_damage(task_dir: Path, samples_required: bool = True) -> str | None:
    """How one task's result differs from the integrity record written with it (a file edited,
    truncated or replaced since), in words; None when the files it records are as written.
    `samples_required=False` (reports): a result recorded without its samples (they are optional
    there) is whole; one recorded with them is not, once they are gone."""
    try:
        record = read_json(task_integrity(task_dir))
    except FileNotFoundError:
        return f"{task_integrity(task_dir)} is missing"
    except (OSError, ValueError, UnicodeDecodeError):
        return f"{task_integrity(task_dir)} is damaged (it does not parse)"
    names = {task_scores(Path()).name, task_samples(Path()).name}
    try:
        if not isinstance(record, dict) or not (set(record) == names or (not samples_required and set(record) == {task_scores(Path()).name})):
            raise TypeError
        return damaged_file(task_dir, record, "its integrity record")
    except (KeyError, TypeError):
        return f"{task_integrity(task_dir)} is damaged (it does not record {' and '.join(sorted(names))})"


def read_samples(task_dir: Path) -> list[dict] | None:
    """The sample rows of an entry read_entry found intact (None if they still fail to parse)."""
    try:
        return read_jsonl(task_samples(task_dir))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
