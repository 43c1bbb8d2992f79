"""The plan stage's checks: every input is looked at before any model is loaded or anything written.

CLI values, the run name and folder, the model folder (config, safetensors weights, tokenizer,
chat template), the data folder (every task's file, every row, through the same loader lm-eval
calls later) and baseline tolerances. Each failure is one HarnessError naming the bad value and
what is valid.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

from harness.core.errors import HarnessError, shown, unknown
from harness.core.safetensors_header import read_header, weight_files
from harness.core.textfile import json_file
from harness.evaluation.registry import TaskInfo, read_yaml

RUN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")  # '+': comparison members, "sdrrl+no_cs-s0"
# File systems allow 255 bytes a name; files beside a run folder take its name plus a prefix and a
# suffix (temporary copies), and a comparison's member folders are named inside it.
MAX_RUN_NAME = 128
MAX_SEED = 2**32 - 1  # numpy's seed range
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model", "sentencepiece.bpe.model")


# --------------------------------------------------------------------------------------------
# CLI values
# --------------------------------------------------------------------------------------------


def _at_least(flag: str, value: int | None, lo: int, hi: int | None = None) -> None:
    if value is None:
        return
    if value < lo or (hi is not None and value > hi):
        valid = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
        raise HarnessError(f"bad value for {flag}: {value}; expected {valid}")


def check_cli(args: argparse.Namespace) -> None:
    """The values `harness eval` and `harness run` share (and run's own), before anything else."""
    from harness.engines import ADAPTER_SERVING, check_engine_name

    check_engine_name(args.engine)
    if getattr(args, "seeds", None) is not None and args.seed is not None:
        raise HarnessError(f"--seed {args.seed} and --seeds {shown(args.seeds)} both given; a comparison's seeds are --seeds alone")
    if args.seed is None:
        args.seed = 0  # our default
    _at_least("--limit", args.limit, 1)
    _at_least("--max-gen-toks", args.max_gen_toks, 1)
    _at_least("--max-model-len", args.max_model_len, 16)
    _at_least("--seed", args.seed, 0, MAX_SEED)
    if args.adapter_serving not in ADAPTER_SERVING:
        raise unknown("--adapter-serving", args.adapter_serving, ADAPTER_SERVING)
    if args.engine != "auto" and args.adapter_serving != "auto":
        from harness.engines import engine_class

        servings = engine_class(args.engine).adapter_servings
        if args.adapter_serving not in servings:
            raise HarnessError(f"bad value for --adapter-serving: {shown(args.adapter_serving)}; engine {args.engine!r} "
                               f"serves an adapter: auto, {', '.join(servings)}")
    env_data = os.environ.get("SDRRL_DATA_DIR", "").strip()
    if env_data and not Path(env_data).expanduser().is_dir():  # read by the task loaders wherever no data folder is given
        raise HarnessError(f"$SDRRL_DATA_DIR {shown(env_data)} is not a folder (expected <data_dir>/<family>/<flores code>/<split>.jsonl); "
                           "fix it or unset it")
    if args.data_dir is not None and not Path(args.data_dir).expanduser().is_dir():
        raise HarnessError(f"--data-dir {args.data_dir!r} is not a folder (expected <data_dir>/<family>/<flores code>/<split>.jsonl)")
    if getattr(args, "force", None) is not None:
        from harness.core.runstore import STAGES

        if args.force not in STAGES:
            raise unknown("stage for --force", args.force, STAGES)
    if getattr(args, "name", None) is not None:
        check_run_name(args.name, "--name")
    if getattr(args, "keep_cache", False) and not getattr(args, "force", None):
        raise HarnessError("--keep-cache only applies with --force STAGE")
    check_cache_dirs()


def check_cache_dirs() -> None:
    """The harness's own folders (built-in models, merged adapters, the shared evaluation cache) are
    folders it can write, before any work: not a file, not under a read-only home."""
    from harness.core.models import cache_root
    from harness.evaluation.evalcache import shared_cache_dir

    for folder, named in ((cache_root(), "SDRRL_HOME"), (shared_cache_dir(), "SDRRL_EVAL_CACHE")):
        source = f"{named} {str(folder)!r}" if named in os.environ else f"the default cache folder {str(folder)!r}"
        existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise HarnessError(f"{source}: {str(existing)!r} is a file, not a folder; set {named} to a folder")
        try:
            check_writable(folder, named)
        except HarnessError as exc:
            raise HarnessError(f"{source} is not a writable folder ({str(exc).rsplit('(', 1)[-1]}; set {named} to a writable folder") from None


def check_run_name(name: str, what: str) -> None:
    if not RUN_NAME.match(name):
        raise HarnessError(f"bad value for {what}: {shown(name)}; expected letters, digits, '.', '_', '+' or '-' (a folder name, not a path)")
    if len(name) > MAX_RUN_NAME:
        raise HarnessError(f"bad value for {what}: {shown(name)} is {len(name)} characters; expected at most {MAX_RUN_NAME}")


def check_output_file(path: Path, flag: str) -> None:
    """`path` can be written as a file: not a folder, its folder not a file, and writable (the file is
    replaced by a rename, so its folder must be writable; an existing read-only file is not replaced)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise HarnessError(f"{flag} {str(path)!r} is a folder; expected the path of a file to write")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise HarnessError(f"{flag} {str(path)!r}: {str(parent)!r} is a file, not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise HarnessError(f"{flag} {str(path)!r} is read-only; make it writable or write elsewhere")
    check_writable(path.parent, flag)


def check_report_out(out: Path, given: bool) -> None:
    """Where `harness report` writes report.{md,html,json}: --out, else the first run's folder (a
    missing run folder is named by the report itself, as not a run folder)."""
    if given:
        check_writable(out, "--out")
        return
    for name in ("report.md", "report.html", "report.json"):
        if (out / name).exists() and not os.access(out / name, os.W_OK):
            raise HarnessError(f"{str(out / name)!r} is read-only; give --out FOLDER")
    if out.is_dir():
        check_writable(out, "the run folder (report.md goes there; or give --out)")


def check_writable(path: Path, flag: str) -> None:
    """`path` is (or can become) a folder we can write into: made if missing, probed with a temp file."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{flag} {str(path)!r} is a file; expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise HarnessError(f"{flag} {str(path)!r} is not a writable folder ({exc.strerror or exc})") from None


def parse_tolerances(pairs: Sequence[str]) -> dict[str, float]:
    """`--tolerance METRIC=POINTS` values: a metric name and a number of points >= 0."""
    tolerance: dict[str, float] = {}
    for pair in pairs:
        metric, sep, value = pair.partition("=")
        metric, value = metric.strip(), value.strip()
        try:
            points = float(value) if sep and metric else None
        except ValueError:
            points = None
        if points is None or not points >= 0 or points == float("inf"):
            raise HarnessError(f"bad value for --tolerance: {pair!r}; expected METRIC=POINTS with POINTS a number >= 0, e.g. acc=0.05")
        tolerance[metric] = points
    return tolerance


# --------------------------------------------------------------------------------------------
# The model folder
# --------------------------------------------------------------------------------------------


def check_safetensors(path: Path) -> None:
    """The header parses and the file is as long as the header says (a truncated copy is not)."""
    read_header(path)


def has_chat_template(model_dir: Path) -> bool:
    if (model_dir / "chat_template.jinja").is_file() or (model_dir / "chat_template.json").is_file():
        return True
    config = model_dir / "tokenizer_config.json"
    return config.is_file() and bool(json_file(config, "tokenizer config").get("chat_template"))


def check_model(model_dir: Path, needs_chat_template: bool) -> None:
    """An HF model folder both engines can load: config, safetensors weights, tokenizer (and chat template)."""
    model_dir = Path(model_dir)
    config = json_file(model_dir / "config.json", "model config")
    if not isinstance(config, dict) or not config.get("model_type"):
        raise HarnessError(f"model config {str(model_dir / 'config.json')!r} has no model_type; is it a Hugging Face model folder?")
    for weights in weight_files(model_dir):
        check_safetensors(weights)
    if not any((model_dir / name).is_file() for name in TOKENIZER_FILES):
        raise HarnessError(f"model folder {str(model_dir)!r} has no tokenizer (one of: {', '.join(TOKENIZER_FILES)})")
    if (model_dir / "tokenizer_config.json").is_file():
        json_file(model_dir / "tokenizer_config.json", "tokenizer config")
    if needs_chat_template and not has_chat_template(model_dir):
        raise HarnessError(
            f"model folder {str(model_dir)!r} has no chat template (tokenizer_config.json 'chat_template' or "
            "chat_template.jinja); the trainers train and generate in the chat format, so use an instruction-tuned model"
        )


def _same_model(named: str, model: str, model_dir: Path) -> bool:
    """Whether a run's model (as its spec names it: a built-in, a folder, a hub id) is `model`, resolved to `model_dir`."""
    from harness.core.models import BUILTIN_MODELS, cache_root

    if named == model:
        return True
    if named in BUILTIN_MODELS:
        return (cache_root() / "models" / named).resolve() == model_dir.resolve()
    if Path(named).expanduser().exists():
        return Path(named).expanduser().resolve() == model_dir.resolve()
    return "models--" + named.replace("/", "--") in model_dir.parts  # a hub id: its snapshot in the HF cache


def check_eval_out(out: Path, model: str, model_dir: Path, adapter: Path | None) -> None:
    """`harness eval --out` onto a run folder writes that run's results: only with the run's own model
    (and adapter), or its report would compare the adapter with another model's base."""
    from harness.core.runstore import RunPaths

    paths = RunPaths(Path(out))
    if not paths.spec.is_file():
        return
    import yaml

    try:
        spec = yaml.safe_load(paths.spec.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise HarnessError(f"--out {str(out)!r} holds a spec.yaml that cannot be read; give another --out") from None
    run_model = str(spec.get("model")) if isinstance(spec, dict) and spec.get("model") is not None else None
    if run_model is None or not _same_model(run_model, model, Path(model_dir)):
        raise HarnessError(f"--out {str(out)!r} is a run of model {shown(run_model)}; evaluating model {shown(model)} into it "
                           "would replace that run's results with another model's: give another --out")
    if adapter is not None and Path(adapter).resolve() != paths.adapter.resolve():
        raise HarnessError(f"--out {str(out)!r} is a run whose adapter is {str(paths.adapter)!r}; evaluating adapter "
                           f"{str(adapter)!r} into it would replace that run's adapter results: give another --out")


# --------------------------------------------------------------------------------------------
# The data folder: the loader lm-eval will call, called now
# --------------------------------------------------------------------------------------------

_LOADERS: dict[Path, ModuleType] = {}


def _task_loader(task: TaskInfo) -> Callable | None:
    """The task's `custom_dataset: !function module.name`, imported from the task's folder as lm-eval does."""
    ref = read_yaml(task.yaml_path).get("custom_dataset")
    if not (isinstance(ref, str) and ref.startswith("!function ")):
        return None
    module_name, _, attr = ref.split(" ", 1)[1].strip().rpartition(".")
    path = task.yaml_path.parent / f"{module_name.replace('.', '/')}.py"
    if path not in _LOADERS:
        spec = importlib.util.spec_from_file_location(f"_preflight_{task.family}_{module_name}", path)
        if spec is None or spec.loader is None:
            raise HarnessError(f"{task.yaml_path}: cannot import {path} for custom_dataset")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _LOADERS[path] = module
    return getattr(_LOADERS[path], attr)


def check_hub_data(tasks: Sequence[TaskInfo], local_data: bool) -> None:
    """A task that loads a hub data set (lm-eval's own tasks: `dataset_path`) needs it in the local
    cache or a reachable hub: said now, not as a ConnectionError after the model has loaded."""
    from harness.core import hub

    reachable: bool | None = None
    for task in tasks:
        config = read_yaml(task.yaml_path)
        repo = config.get("dataset_path") if isinstance(config, dict) else None
        if (local_data and config.get("custom_dataset")) or not isinstance(repo, str) or not hub.is_hub_id(repo):
            continue
        if hub.cached_dataset(repo) is not None:
            continue
        reachable = hub.reachable() if reachable is None else reachable
        if not reachable:
            why = "downloads are off (SDRRL_OFFLINE / HF_HUB_OFFLINE)" if not hub.downloads_allowed() else "the hub is unreachable"
            raise HarnessError(f"task {task.name!r} loads the Hugging Face hub data set {repo!r}, which is not in the local cache, "
                               f"and {why}: fetch it on a connected machine first (`harness fetch`, or the datasets cache), then rerun")


def check_data(tasks: Sequence[TaskInfo], data_dir: Path | None) -> None:
    """Every task's local data read and validated row by row, by the task's own loader.

    Hub data (no data folder) is not fetched here; it is checked when the evaluation loads it. A plain
    task's own data files (its YAML's data_files, relative ones read from its folder) must exist.
    """
    from harness.evaluation.taskdata import check_data_files
    from tasks.dataio import resolve_data_dir

    for task in tasks:
        check_data_files(task)
    local = resolve_data_dir(data_dir)
    check_hub_data(tasks, local_data=local is not None)
    if local is None:
        return
    root, source = local
    if not root.is_dir():
        raise HarnessError(f"data folder {str(root)!r} ({source}) does not exist")
    for task in tasks:
        loader = _task_loader(task)
        if loader is not None:
            loader(**task.metadata, data_dir=str(root))


# --------------------------------------------------------------------------------------------
# A whole run
# --------------------------------------------------------------------------------------------


def check_run(spec: Any, trains: bool, tasks: Sequence[TaskInfo], data_dir: Path | None, runs_dir: Path) -> Path:
    """Everything `harness run` needs, checked before the spec is frozen; returns the model folder."""
    from harness.core.models import resolve_model

    check_run_name(spec.name, "run name")  # a default name is made from the model's, which may be long
    check_writable(Path(runs_dir), "--runs-dir")
    if (Path(runs_dir) / spec.name).exists():
        check_writable(Path(runs_dir) / spec.name, "run folder")
    # lexicons: the trainer's own check (pipeline.check_plan) and harness.services.doctor (fetched or induced ones)
    check_data(tasks, data_dir)  # first: resolving a built-in model may build it
    model_dir = resolve_model(spec.model)
    check_model(model_dir, needs_chat_template=trains)
    return model_dir
