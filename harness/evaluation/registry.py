"""The task registry: tasks and suites as declared by the lm-eval YAML files under tasks/.

Everything here comes from data: a task is any YAML file with a `task:` name and a `metadata:`
block (family, lang, kind, primary_metric, config, version, ...); a suite is an entry of
tasks/suites.yaml selecting task families and languages. Reading them is cheap (plain YAML,
no lm-eval import). No family or task is named in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from harness.core.errors import HarnessError, unknown
from harness.core.langs import LANGUAGES, parse_languages

REQUIRED_METADATA = ("version", "family", "lang", "kind", "primary_metric", "config")
KINDS = ("comprehension", "generation")
SUITES_FILE = "suites.yaml"
SUITE_KEYS = ("description", "languages", "families", "data_dir", "trainer_settings")


def tasks_dir() -> Path:
    """The folder holding the task YAML (what `lm_eval --include_path` gets)."""
    return Path(__file__).resolve().parents[2] / "tasks"


@dataclass
class TaskInfo:
    name: str
    family: str
    lang: str  # harness language code
    kind: str  # comprehension | generation
    primary_metric: str
    metadata: dict[str, Any]
    yaml_path: Path


@dataclass
class Suite:
    name: str
    description: str
    tasks: list[TaskInfo]
    data_dir: Path | None
    languages: list[str] = field(default_factory=list)
    # Defaults for a run's trainer on this suite (e.g. an offline suite's shipped data);
    # only the keys the chosen trainer's Config has apply. --config and --set override them.
    trainer_settings: dict = field(default_factory=dict)


class _Loader(yaml.SafeLoader):
    """Safe YAML that reads lm-eval's `!function module.name` tags as plain strings."""


_Loader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def read_yaml(path: Path, _seen: tuple[Path, ...] = ()) -> Any:
    """A task YAML with its `include:` files merged in (shallow, local keys win), as lm-eval does."""
    path = Path(path).resolve()
    if path in _seen:
        raise HarnessError(f"include cycle at {path}")
    try:
        with path.open(encoding="utf-8") as fh:
            cfg = yaml.load(fh, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or "include" not in cfg:
        return cfg
    merged: dict[str, Any] = {}
    includes = cfg.pop("include")
    for inc in includes if isinstance(includes, list) else [includes]:
        inc_path = Path(inc) if Path(inc).is_absolute() else path.parent / inc
        if not inc_path.is_file():
            raise HarnessError(f"{path}: included file {inc_path} does not exist")
        merged.update(read_yaml(inc_path, _seen + (path,)))
    merged.update(cfg)
    return merged


def task_from_config(cfg: dict[str, Any], yaml_path: Path) -> TaskInfo:
    """A TaskInfo from a task's (merged) YAML config; errors name the file and what is wrong."""
    meta = cfg.get("metadata")
    if not isinstance(meta, dict):
        raise HarnessError(f"{yaml_path}: task {cfg.get('task')!r} has no metadata block")
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise HarnessError(f"{yaml_path}: metadata lacks {', '.join(missing)}")
    if meta["lang"] not in LANGUAGES:
        raise unknown(f"language in {yaml_path}", meta["lang"], list(LANGUAGES))
    if meta["kind"] not in KINDS:
        raise unknown(f"task kind in {yaml_path}", meta["kind"], KINDS)
    return TaskInfo(
        name=str(cfg["task"]),
        family=str(meta["family"]),
        lang=str(meta["lang"]),
        kind=str(meta["kind"]),
        primary_metric=str(meta["primary_metric"]),
        metadata=dict(meta),
        yaml_path=Path(yaml_path).resolve(),
    )


def all_tasks(root: Path | None = None) -> dict[str, TaskInfo]:
    """Every task under `root` (default tasks_dir()), by name, sorted."""
    root = Path(root) if root is not None else tasks_dir()
    found: dict[str, TaskInfo] = {}
    for path in sorted(root.rglob("*.yaml")):
        if "__pycache__" in path.parts:
            continue
        cfg = read_yaml(path)
        if not isinstance(cfg, dict) or not isinstance(cfg.get("task"), str) or "group" in cfg:
            continue  # suites.yaml, lm-eval group files
        info = task_from_config(cfg, path)
        if info.name in found:
            raise HarnessError(f"task {info.name!r} is defined twice: {found[info.name].yaml_path} and {path}")
        found[info.name] = info
    return dict(sorted(found.items()))


def get_task(name: str) -> TaskInfo:
    tasks = all_tasks()
    if name not in tasks:
        raise unknown("task", name, list(tasks))
    return tasks[name]


def _language_codes(spec: Any, where: str) -> list[str]:
    if isinstance(spec, str):
        text = spec
    elif isinstance(spec, list) and all(isinstance(s, str) for s in spec):
        text = ",".join(spec)
    else:
        raise HarnessError(f"{where}: languages must be a language set name or a list of codes")
    codes = [lang.code for lang in parse_languages(text)]
    if not codes:
        raise HarnessError(f"{where}: no languages given")
    return codes


def load_suites(suites_file: Path, tasks: dict[str, TaskInfo]) -> dict[str, Suite]:
    """The suites declared in `suites_file`, resolved against `tasks`.

    A suite holds every task whose metadata.family is one of its `families` and metadata.lang one
    of its `languages`, ordered by family, then language (both in the suite's order), then name.
    A relative `data_dir` is taken from the folder of `suites_file`.
    """
    suites_file = Path(suites_file).resolve()
    raw = read_yaml(suites_file)
    if not isinstance(raw, dict) or not isinstance(raw.get("suites"), dict):
        raise HarnessError(f"{suites_file}: expected a top-level 'suites:' mapping")
    families_known = sorted({t.family for t in tasks.values()})
    suites: dict[str, Suite] = {}
    for name, spec in raw["suites"].items():
        where = f"{suites_file} suite {name!r}"
        if not isinstance(spec, dict):
            raise HarnessError(f"{where}: expected a mapping")
        extra = sorted(set(spec) - set(SUITE_KEYS))
        if extra:
            raise unknown(f"key in {where}", extra[0], SUITE_KEYS)
        languages = _language_codes(spec.get("languages"), where)
        families = spec.get("families")
        if not isinstance(families, list) or not families:
            raise HarnessError(f"{where}: families must be a non-empty list")
        for fam in families:
            if fam not in families_known:
                raise unknown(f"task family in {where}", fam, families_known)
        selected = [t for t in tasks.values() if t.family in families and t.lang in languages]
        selected.sort(key=lambda t: (families.index(t.family), languages.index(t.lang), t.name))
        data_dir = spec.get("data_dir")
        if data_dir not in (None, ""):
            data_dir = Path(str(data_dir)).expanduser()
            data_dir = (data_dir if data_dir.is_absolute() else suites_file.parent / data_dir).resolve()
        else:
            data_dir = None
        suites[str(name)] = Suite(
            name=str(name),
            description=str(spec.get("description") or ""),
            tasks=selected,
            data_dir=data_dir,
            languages=languages,
            trainer_settings=dict(spec.get("trainer_settings") or {}),
        )
    return suites


def all_suites() -> dict[str, Suite]:
    return load_suites(tasks_dir() / SUITES_FILE, all_tasks())


def get_suite(name: str, languages: str | None = None) -> Suite:
    """A suite by name, optionally restricted to some of its languages ("cs,ja" or a set name)."""
    suites = all_suites()
    if name not in suites:
        raise unknown("suite", name, list(suites))
    suite = suites[name]
    if languages is None:
        return suite
    wanted = [lang.code for lang in parse_languages(languages)]
    if not wanted:
        raise HarnessError(f"no languages given for suite {name!r}; valid: {', '.join(suite.languages)}")
    for code in wanted:
        if code not in suite.languages:
            raise unknown(f"language for suite {name!r}", code, suite.languages)
    return replace(
        suite,
        tasks=[t for t in suite.tasks if t.lang in wanted],
        languages=[c for c in suite.languages if c in wanted],
    )
