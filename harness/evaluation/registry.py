"""The task registry: tasks and suites as declared by lm-eval YAML files.

Everything here comes from data: a task is any YAML file with a `task:` name, under tasks/ or in a
user's include path (`--include-path`, as lm-eval names it), or one of lm-eval's built-in tasks.
A harness family task carries a `metadata:` block with REQUIRED_METADATA (family, lang, kind,
primary_metric, config, version); a plain lm-eval YAML without it is read as lm-eval reads it
(plain_task_info). A suite is an entry of tasks/suites.yaml selecting task families and languages
of the repository's tasks. Reading ours is cheap (plain YAML, no lm-eval import); lm-eval's own
index is built only for a name found nowhere else. No family or task is named in this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from harness.core.errors import HarnessError, shown, unknown
from harness.core.langs import LANGUAGES, iso_code, parse_languages

REQUIRED_METADATA = ("version", "family", "lang", "kind", "primary_metric", "config")
# Metadata keys only a harness family task has (lm-eval's own YAML may carry version, even lang or
# family): one of them present means the task must carry all of REQUIRED_METADATA, so a typo in a
# family's metadata is an error instead of a silently inferred task.
HARNESS_METADATA = ("kind", "primary_metric", "config")
KINDS = ("comprehension", "generation")
# lm-eval's output_type -> our kind, and lm-eval's metric when a YAML names none (TaskConfig's defaults)
OUTPUT_KINDS = {"multiple_choice": "comprehension", "loglikelihood": "comprehension", "generate_until": "generation"}
DEFAULT_OUTPUT_TYPE = "generate_until"
DEFAULT_METRICS = {"multiple_choice": "acc", "loglikelihood": "acc", "generate_until": "exact_match"}
# A plain task with no metadata.lang and no language suffix in its name (name_rule): most of lm-eval's
# unsuffixed tasks (hellaswag, arc_easy, ...) are English; metadata.lang says otherwise.
DEFAULT_LANG = "en"
SOURCES = ("repo", "include", "lm-eval")  # where a task was found: tasks/, an include path, lm-eval's own
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
    source: str = "repo"  # one of SOURCES: which TaskManager paths lm-eval needs to load it
    root: Path | None = None  # the include path it was found under (source "include")


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


def _read_one(path: Path) -> Any:
    """One YAML file, its includes not merged; one line naming the file when it does not parse."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except FileNotFoundError:
        raise HarnessError(f"task file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise HarnessError(f"task file {path} is not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                           "save it as UTF-8") from None
    except OSError as exc:
        raise HarnessError(f"task file {path} cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise HarnessError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None


def read_yaml(path: Path, _seen: tuple[Path, ...] = ()) -> Any:
    """A task YAML with its `include:` files merged in (shallow, local keys win), as lm-eval does."""
    path = Path(path).resolve()
    if path in _seen:
        raise HarnessError(f"include cycle at {path}")
    cfg = _read_one(path)
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


def yaml_files(path: Path, _seen: tuple[Path, ...] = ()) -> list[Path]:
    """A task YAML and every file its `include:` chain reads, in reading order (what its content is)."""
    path = Path(path).resolve()
    if path in _seen:
        raise HarnessError(f"include cycle at {path}")
    cfg = _read_one(path)
    includes = cfg.get("include") if isinstance(cfg, dict) else None
    files = [path]
    for inc in includes if isinstance(includes, list) else [includes] if includes else []:
        files += yaml_files(Path(inc) if Path(inc).is_absolute() else path.parent / inc, _seen + (path,))
    return files


def task_from_config(cfg: dict[str, Any], yaml_path: Path, source: str = "repo", root: Path | None = None) -> TaskInfo:
    """A TaskInfo from a task's (merged) YAML config; errors name the file and what is wrong."""
    meta = cfg.get("metadata")
    if not isinstance(meta, dict) or not any(k in meta for k in HARNESS_METADATA):
        info = plain_task_info(cfg, yaml_path)
    else:
        info = _family_task_info(cfg, meta, yaml_path)
    return replace(info, source=source, root=Path(root).resolve() if root is not None else None)


def _family_task_info(cfg: dict[str, Any], meta: dict[str, Any], yaml_path: Path) -> TaskInfo:
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


def plain_task_info(cfg: dict[str, Any], yaml_path: Path) -> TaskInfo:
    """A plain lm-eval task YAML read as lm-eval reads it: kind from output_type, primary metric
    from metric_list[0]; language, family and direction from `metadata` or the naming rule
    (name_rule). A name the rule cannot read is refused, never guessed."""
    name = str(cfg["task"])
    meta = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
    output_type = str(cfg.get("output_type", DEFAULT_OUTPUT_TYPE))
    if output_type not in OUTPUT_KINDS:
        raise unknown(f"output_type of task {name!r} in {yaml_path} (the harness scores)", output_type, list(OUTPUT_KINDS))
    metrics = cfg.get("metric_list")
    if metrics is not None and not (isinstance(metrics, list) and metrics and isinstance(metrics[0], dict) and "metric" in metrics[0]):
        raise HarnessError(f"{yaml_path}: metric_list of task {name!r} must be a list of {{metric: NAME, ...}} entries")
    lang, family, direction = name_rule(name, meta, yaml_path)
    metadata = dict(meta)
    if direction:
        metadata["direction"] = direction  # the report's en→xx / xx→en grouping reads it
    return TaskInfo(
        name=name,
        family=family,
        lang=lang,
        kind=OUTPUT_KINDS[output_type],
        primary_metric=str(metrics[0]["metric"]) if metrics else DEFAULT_METRICS[output_type],
        metadata=metadata,
        yaml_path=Path(yaml_path).resolve(),
    )


# A name's last part that looks like a language pair: 'en-cs', 'eng_Latn-ces_Latn', 'en2cs'
_PAIR = re.compile(r"^(?P<head>.+?)_(?P<pair>[a-z]{2,3}(?:_[A-Z][a-z]{3})?(?:-|2)[a-z]{2,3}(?:_[A-Z][a-z]{3})?)$")
_SCRIPT_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")  # a script-tagged code (ISO 639-3 + ISO 15924), 'deu_Latn'


def name_rule(name: str, meta: dict[str, Any], yaml_path: Path) -> tuple[str, str, str | None]:
    """(language, family, direction) of a plain task, by the rule README "Adding a task" documents:

    metadata.lang, metadata.family and metadata.direction ('<src>-<tgt>') win; without metadata.lang,
    a direction gives the pair's non-English side (its target when neither is English). Else the name:
    `<family>_<code>` or `<family>_<script-tagged code>` (`_cs`, `_ces_Latn`) with a code of the language
    table, or no language suffix at all: DEFAULT_LANG, family = the name. A name ending in a pair
    (`wordtr_en-cs`) or in a language code the table lacks (`_de`, `_deu_Latn`) is refused with one
    line naming the metadata to add."""
    where = f"task {shown(name)} ({yaml_path})"
    direction = _direction(meta.get("direction"), where) if "direction" in meta else None
    if "lang" in meta:
        if meta["lang"] not in LANGUAGES:
            raise unknown(f"metadata.lang of {where}", meta["lang"], list(LANGUAGES))
        lang: str | None = str(meta["lang"])
    elif direction:
        src, tgt = direction.split("-")
        lang = tgt if src == "en" else src
    else:
        lang = None
    pair = _PAIR.match(name)
    head, last = (pair["head"], pair["pair"]) if pair else (name, "")
    if pair and not direction:
        guess = last if "-" in last else last.replace("2", "-", 1)
        raise HarnessError(f"{where}: the name ends in {last!r}, which looks like a language pair the naming rule does not "
                           f"read; add to its YAML: metadata: {{direction: {guess}, lang: <the task's language>, family: "
                           f"{head}}} (language codes: {', '.join(LANGUAGES)})")
    stem, code = (head, None) if pair else _name_language(name)
    if lang is None and code is None and _language_suffix(name):
        raise HarnessError(f"{where}: the name ends in {_language_suffix(name)!r}, read as a language code the harness's "
                           f"language table lacks; add to its YAML: metadata: {{lang: <one of {', '.join(LANGUAGES)}>, "
                           f"family: <its family>}} (lang: en if the suffix is no language)")
    lang = lang or code or DEFAULT_LANG
    family = str(meta.get("family") or stem)
    return lang, family, direction


def _direction(value: Any, where: str) -> str:
    """metadata.direction as '<src>-<tgt>' in harness codes (script-tagged codes read as ours)."""
    parts = str(value).split("-")
    codes = [iso_code(p) for p in parts]
    if len(parts) != 2 or not all(c in LANGUAGES for c in codes):
        raise HarnessError(f"metadata.direction of {where} is {shown(value)}; expected <source>-<target> with codes "
                           f"of the language table: {', '.join(LANGUAGES)} (e.g. en-cs)")
    return "-".join(codes)


def _name_language(name: str) -> tuple[str, str | None]:
    """(name less its language suffix, language) of a `<stem>_cs` or `<stem>_ces_Latn` name; (name, None)
    when its last parts are no code of the language table."""
    head, _, last = name.rpartition("_")
    if head and last in LANGUAGES:
        return head, last
    stem, _, script_part = head.rpartition("_")
    code = iso_code(f"{script_part}_{last}")  # a script-tagged code ('ces_Latn') -> ours ('cs')
    if stem and code in LANGUAGES:
        return stem, code
    return name, None


def _language_suffix(name: str) -> str | None:
    """The name's last part(s) when they look like a language code the table lacks: `_<script-tagged code>`
    (`_deu_Latn`) or `_<xx>`, a two-letter code of a language the language identifier knows (ISO 639-1);
    None for a word (`_easy`, `_mc1`)."""
    parts = name.split("_")
    if len(parts) >= 3 and _SCRIPT_CODE.match(f"{parts[-2]}_{parts[-1]}"):
        return f"{parts[-2]}_{parts[-1]}"
    if len(parts) >= 2 and len(parts[-1]) == 2 and parts[-1] in _iso_639_1():
        return parts[-1]
    return None


@lru_cache(maxsize=1)
def _iso_639_1() -> frozenset[str]:
    import py3langid.langid as lid

    lid.classify("")  # loads the model, whose classes are the language codes
    return frozenset(c for c in lid.IDENTIFIER.nb_classes if len(c) == 2)


def is_task_config(cfg: Any) -> bool:
    """A YAML that is one task (not suites.yaml, an lm-eval group file or a Python-class task)."""
    return isinstance(cfg, dict) and isinstance(cfg.get("task"), str) and "group" not in cfg and "class" not in cfg


def _tasks_under(root: Path, source: str, include_root: Path | None = None) -> Iterable[TaskInfo]:
    for path in sorted(root.rglob("*.yaml")):
        if "__pycache__" in path.parts:
            continue
        cfg = read_yaml(path)
        if not is_task_config(cfg):
            continue
        yield task_from_config(cfg, path, source, include_root)


def check_include_paths(paths: Sequence[str | Path]) -> tuple[Path, ...]:
    """--include-path values (each may be comma-separated) as resolved folders; one line for a missing one."""
    found: list[Path] = []
    for value in paths:
        for part in str(value).split(","):
            if not part.strip():
                continue
            path = Path(part.strip()).expanduser().resolve()
            if not path.is_dir():
                raise HarnessError(f"--include-path {shown(part.strip())} is not a folder (resolved: {path})")
            if path != tasks_dir() and path not in found:  # tasks/ is always searched
                _check_yaml_text(path)
                found.append(path)
    return tuple(found)


def _check_yaml_text(folder: Path) -> None:
    """lm-eval reads every *.yaml under an include path, named in --tasks or not: one it cannot
    decode is named now, not met as a crash inside the evaluation."""
    for path in sorted(folder.rglob("*.yaml")):
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise HarnessError(f"task file {path} (in --include-path {str(folder)!r}) is not UTF-8 "
                               f"(byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save it as UTF-8") from None
        except OSError as exc:
            raise HarnessError(f"task file {path} (in --include-path {str(folder)!r}) cannot be read ({exc.strerror or exc})") from None


def all_tasks(root: Path | None = None, include_paths: Sequence[Path] = ()) -> dict[str, TaskInfo]:
    """Every task under `root` (default tasks_dir()) and the include paths, by name, sorted."""
    root = Path(root) if root is not None else tasks_dir()
    found: dict[str, TaskInfo] = {}
    sources = [(root, "repo", None)] + [(Path(p), "include", Path(p)) for p in include_paths]
    for folder, source, include_root in sources:
        for info in _tasks_under(folder, source, include_root):
            if info.name in found:
                raise HarnessError(f"task {info.name!r} is defined twice: {found[info.name].yaml_path} and {info.yaml_path}")
            found[info.name] = info
    return dict(sorted(found.items()))


def get_task(name: str, include_paths: Sequence[Path] = ()) -> TaskInfo:
    tasks = all_tasks(include_paths=include_paths)
    if name not in tasks:
        raise unknown("task", name, list(tasks))
    return tasks[name]


def lm_eval_paths(tasks: Sequence[TaskInfo]) -> tuple[list[str], bool]:
    """(include_path, include_defaults) of the lm-eval TaskManager that loads `tasks`: tasks/, the
    include paths they came from, and lm-eval's own tasks only if one of them is built in (slow)."""
    roots = sorted({str(t.root) for t in tasks if t.source == "include" and t.root is not None})
    return [str(tasks_dir()), *roots], any(t.source == "lm-eval" for t in tasks)


SHOWN_VALID = 40  # how many valid names an unknown --tasks name lists (lm-eval knows thousands)


def resolve_tasks(names: Sequence[str], include_paths: Sequence[Path] = ()) -> list[TaskInfo]:
    """The named tasks, in order: ours, the include paths', then lm-eval's built-in ones (its index
    is built only when a name is found in neither, as it reads thousands of files)."""
    known = all_tasks(include_paths=include_paths)
    missing = [n for n in names if n not in known]
    if missing:
        known.update(_builtin_tasks(missing, include_paths, known))
    for name in names:
        if name not in known:
            raise _unknown_task(name, known)
    return [known[n] for n in names]


def _unknown_task(name: str, known: dict[str, TaskInfo]) -> HarnessError:
    ours = sorted(known, key=lambda n: (known[n].source != "include", n))  # the include paths' first: the likelier meant
    listed = ", ".join(ours[:SHOWN_VALID]) + (f", ... ({len(ours)} in all; `harness list tasks`)" if len(ours) > SHOWN_VALID else "")
    return HarnessError(f"unknown task {shown(name)}: not in tasks/, the include paths or lm-eval's tasks; valid: {listed}")


@lru_cache(maxsize=4)
def _lm_eval_index(include_paths: tuple[str, ...]) -> dict[str, Any]:
    """lm-eval's index of its own tasks and ours (seconds: thousands of files), built once per process."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=[str(tasks_dir()), *include_paths], include_defaults=True).task_index


def _builtin_tasks(names: Sequence[str], include_paths: Sequence[Path], ours: dict[str, TaskInfo]) -> dict[str, TaskInfo]:
    index = _lm_eval_index(tuple(map(str, include_paths)))
    found: dict[str, TaskInfo] = {}
    for name in names:
        entry = index.get(name)
        if entry is None:
            continue
        kind = str(getattr(entry.kind, "name", entry.kind)).lower()
        if kind != "task" or entry.yaml_path is None:
            raise HarnessError(f"lm-eval's {shown(name)} is a {kind.replace('_', ' ')}, not a YAML task; name its tasks one by one "
                               "(lm-eval's task list: `lm_eval ls tasks`)")
        cfg = read_yaml(Path(entry.yaml_path))
        found[name] = task_from_config({**cfg, "task": name}, Path(entry.yaml_path), "lm-eval")
    return found


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


def parse_task_names(text: str, suite: Suite) -> list[str]:
    """--tasks A,B as names, each once; an empty value (an unset shell variable) names no task."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        listed = ", ".join(sorted(t.name for t in suite.tasks))
        raise HarnessError(f"--tasks {shown(text)} names no task; the suite's: {listed} (or any of `harness list tasks`)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise HarnessError(f"--tasks names {', '.join(repeated)} more than once; name each task once")
    return names


def with_tasks(suite: Suite, names: Sequence[str] | None, include_paths: Sequence[Path] = ()) -> Suite:
    """The suite running exactly the named tasks (None: its own): a name of the suite keeps that task,
    any other (ours, an include path's, lm-eval's) adds it. The suite's data folder and trainer
    settings stay; a plain lm-eval task reads the data its YAML names and ignores them."""
    if names is None:
        return suite
    in_suite = {t.name: t for t in suite.tasks}
    outside = [n for n in names if n not in in_suite]
    added = dict(zip(outside, resolve_tasks(outside, include_paths))) if outside else {}
    return replace(suite, tasks=[in_suite.get(n) or added[n] for n in names])
