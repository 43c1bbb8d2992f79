"""`harness doctor`: everything a run will need, whether it is there, and the command that fixes it.

`preflight` runs the same checks in the plan stage of `harness run` and stops the run, before any
model is loaded, when one fails. A check never downloads anything and never loads a model; the
hub is probed (one TCP connection) only when something would have to come from it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core import hub, mirror
from harness.engines import all_engines
from harness.engines.measured import machine_id, read_any_routes, read_routes, routes_file
from harness.engines.routing import REQUEST_TYPES, pick_engine
from harness.core.errors import HarnessError
from harness.services.requirements import split_needs, spm_tokenizers, trainer_needs
from harness.evaluation.registry import Suite
from harness.trainer_api import settings_of

DATASETS_TESTED = ("4.0", "6")  # [low, high): the range pyproject.toml pins; tested with 5.2.0
STATUSES = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


@dataclass
class Check:
    item: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


@dataclass
class RunPlan:
    """The parts of a run the checks look at."""

    suite: Suite | None
    model: str | None
    config: Any = None  # the trainer's Config
    trains: bool = False
    data_dir: Path | None = None
    engine: str = "auto"
    runs_dir: Path = Path("runs")

    online_probe: bool | None = None  # the hub probe, done once per plan

    def online(self) -> bool:
        if self.online_probe is None:
            self.online_probe = hub.reachable()
        return self.online_probe

    def fetch_cmd(self) -> str:
        parts = ["harness fetch", f"--suite {self.suite.name}" if self.suite else "", f"--model {self.model}" if self.model else ""]
        return " ".join(p for p in parts if p) + " --out DIR (online), then run with --data-dir DIR"


def check_environment(plan: RunPlan) -> list[Check]:
    checks = [_datasets_version(), _token()]
    checks += _engines({pick_engine(plan.engine, kind) for kind in REQUEST_TYPES}) + [_routes()]
    checks += [_comet(), _gpu(plan), _disk(plan)]
    return checks


def _engines(used: set[str]) -> list[Check]:
    """One row per registered engine (built in or a plugin): here or not, what it runs, what the selftest found.
    An engine the run needs and cannot have fails; one it does not need only warns."""
    table = read_routes()
    checks = []
    for name, cls in all_engines().items():
        item = f"engine {name}" + (" (this run)" if name in used else "")
        declared = f"runs {', '.join(cls.request_types)}; adapters {', '.join(cls.adapter_servings)}"
        why, caveat = cls.missing(), None
        if why:
            checks.append(Check(item, "fail" if name in used else "warn", *_what_and_fix(why)))
        elif table is not None and name in table.failed:
            checks.append(Check(item, "warn", f"failed harness selftest ({table.measured_at}): --engine auto avoids it",
                                "harness selftest shows the finding; fix it and run it again"))
        elif caveat := cls.caveat():
            checks.append(Check(item, "warn", *_what_and_fix(caveat)))
        else:
            checks.append(Check(item, "ok", "; ".join(x for x in (cls.about(), declared) if x)))
    return checks


def _what_and_fix(line: str) -> tuple[str, str]:
    """An engine's "what -> fix" line as the table's detail and fix."""
    what, _, fix = line.partition(" -> ")
    return what, fix


def _routes() -> Check:
    """Whether --engine auto runs on routes measured on this machine or on the design default."""
    table = read_routes()
    if table is not None:
        chosen = ", ".join(f"{kind} {r.engine}+{r.serving}" for kind, r in table.routes.items()) or "none passed"
        return Check("auto routes", "ok", f"measured here by harness selftest ({table.measured_at}, {table.model}): {chosen}")
    other = read_any_routes()
    where = f"the table at {routes_file()} was measured on {other.machine}, this is {machine_id()}" if other else "not measured here"
    return Check("auto routes", "warn", f"--engine auto takes the design default ({where})",
                 "harness selftest (once on new hardware: checks and times every installed engine)")


def _datasets_version() -> Check:
    from packaging.version import Version

    try:
        version = importlib.metadata.version("datasets")
    except importlib.metadata.PackageNotFoundError:
        return Check("datasets", "fail", "not installed", "bash scripts/install.sh")
    low, high = DATASETS_TESTED
    if Version(low) <= Version(version) < Version(high):
        return Check("datasets", "ok", f"{version} (tested range >={low},<{high})")
    return Check("datasets", "fail", f"{version} is outside the tested range >={low},<{high}", f"pip install 'datasets>={low},<{high}'")


def _token() -> Check:
    if hub.token():
        return Check("HF token", "ok", "set (gated repositories readable once their terms are accepted)")
    return Check("HF token", "warn", "none: gated repositories (FLORES+, some models) cannot be read from the hub",
                 f"accept the terms on the repository's page, then {hub.TOKEN_HINT}")


def _comet() -> Check:
    """COMET lives in its own virtual environment (transformers<5, numpy<2): harness.evaluation.comet."""
    import os

    from harness.evaluation.comet import default_python

    python = Path(os.environ.get("SDRRL_COMET_PYTHON") or default_python())
    if python.is_file():
        return Check("COMET", "ok", f"COMET environment at {python}")
    return Check("COMET", "warn", f"no COMET environment at {python} (only COMET scores need it)", "bash scripts/install.sh --comet")


def _gpu_info() -> tuple[str, int] | None:
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            return props.name, int(props.total_memory)
    except Exception:  # a broken CUDA set-up reads as no GPU; the row says so
        return None
    return None


def _model_bytes(model: str | None) -> int | None:
    """Size of the model's safetensors weights, when the folder is here (local or HF cache)."""
    from harness.core.models import BUILTIN_MODELS, cache_root

    if not model:
        return None
    if model in BUILTIN_MODELS:
        folder = cache_root() / "models" / model  # there once built
    elif Path(model).expanduser().exists():
        folder = Path(model).expanduser()
    else:
        folder = hub.cached_snapshot(model) if hub.is_hub_id(model) else None
    if folder is None or not Path(folder).is_dir():
        return None
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors")) or None


def _gpu(plan: RunPlan) -> Check:
    gpu, weights = _gpu_info(), _model_bytes(plan.model)
    size = f"model weights {weights / 2**30:.2f} GiB" if weights else "model size unknown until it is downloaded"
    if gpu is None:
        return Check("GPU", "warn", f"none: CPU only ({size}); fine for the built-in and tiny models",
                     "a CUDA GPU for hub models of 0.5B parameters and more (README, Real run)")
    name, total = gpu
    if weights and total < 1.2 * weights:
        return Check("GPU", "fail", f"{name}, {total / 2**30:.0f} GiB < {size} x 1.2", "a GPU with more memory, or a smaller model")
    if weights and total < 2 * weights:
        return Check("GPU", "warn", f"{name}, {total / 2**30:.0f} GiB; {size}: LoRA training may not fit", "lower max_seq_len / batch size")
    return Check("GPU", "ok", f"{name}, {total / 2**30:.0f} GiB ({size})")


def _disk(plan: RunPlan) -> Check:
    where = Path(plan.runs_dir).resolve()
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    need = 3 * (_model_bytes(plan.model) or 0) + 2**30  # a merged copy per adapter, the adapter, caches
    status = "fail" if free < 2**30 else "warn" if free < need else "ok"
    return Check("disk", status, f"{free / 2**30:.1f} GiB free at {where} (estimate needed: {need / 2**30:.1f} GiB)",
                 "" if status == "ok" else "free space, or --runs-dir on a larger disk")


def _from_hub(item: str, repo: str, plan: RunPlan, what: str) -> Check:
    """A resource not here: fine if the hub serves it to this token, else the fetch command."""
    if not plan.online():
        gate = f"; {repo} is gated: accept its terms at {hub.page_url(repo)} and set HF_TOKEN" if repo in hub.KNOWN_GATED else ""
        return Check(item, "fail", f"{what} not here and the hub is unreachable{gate}", plan.fetch_cmd())
    try:
        hub.check_access(repo)
    except Exception as exc:
        error = hub.explain(exc, repo, repo, "check the name")
        return Check(item, "fail", str(error), f"accept the terms at {hub.page_url(repo)}, {hub.TOKEN_HINT}" if hub.is_gated(exc) else "")
    return Check(item, "ok", f"{what} from the hub ({repo}, read at run time)")


def check_data(plan: RunPlan) -> list[Check]:
    """One row per task family: are its splits in the data folder, or readable from the hub?"""
    from tasks.dataio import resolve_data_dir

    local = resolve_data_dir(plan.data_dir, plan.suite.data_dir)
    by_family: dict[str, list] = {}
    for need in split_needs(plan.suite):
        by_family.setdefault(need.family, []).append(need)
    checks = []
    for family, needs in by_family.items():
        missing = [n for n in needs if local is None or not (local[0] / n.relative).is_file()]
        item = f"data: {family}"
        if not missing:
            checks.append(Check(item, "ok", f"{len(needs)} splits in {local[0]}"))
            continue
        configs = sorted({n.config for n in missing})
        what = f"{len(missing)}/{len(needs)} splits ({', '.join(configs[:6])}{', ...' if len(configs) > 6 else ''})"
        repos = sorted({n.dataset for n in missing if n.dataset})
        if not repos:
            checks.append(Check(item, "fail", f"{what} missing from {local[0] if local else 'no data_dir'}", "give --data-dir with them"))
        else:
            checks.append(_from_hub(item, repos[0], plan, what))
    return checks


def check_trainer(plan: RunPlan) -> list[Check]:
    needs = trainer_needs(plan.config, plan.suite.languages, plan.trains)
    checks = []
    if needs.instructions:
        here = mirror.find(mirror.instructions_path(Path(), needs.instructions))
        cached = None if here else hub.cached_dataset(needs.instructions)
        checks.append(Check("instructions", "ok", f"mirror {here}") if here else
                      Check("instructions", "ok", f"HF cache {cached}") if cached else
                      _from_hub("instructions", needs.instructions, plan, needs.instructions))
    if needs.parallel:
        folder = mirror.find(mirror.parallel_dir(Path(), needs.parallel))
        missing = [c for c in needs.target_langs if folder is None or not (folder / f"en-{c}.jsonl").is_file()]
        checks.append(Check("parallel pairs", "ok", f"en-{{{','.join(needs.target_langs)}}} in the mirror {folder}") if not missing else
                      _from_hub("parallel pairs", needs.parallel, plan, f"{needs.parallel} en-{{{','.join(missing)}}}"))
    if needs.translator_model:
        cached = hub.cached_snapshot(needs.translator_model)
        checks.append(Check("translator model", "ok", f"{needs.translator_model} in the HF cache") if cached else
                      _from_hub("translator model", needs.translator_model, plan, needs.translator_model))
    if needs.lexicon_pairs:
        checks.append(_lexicons(plan, needs))
    if needs.translator == "lexicon" and needs.target_langs:
        checks.append(_word_by_word(plan, needs.target_langs))
    if plan.trains and settings_of(plan.config).get("kernels") == "liger":
        checks.append(_liger())
    return checks


def _liger() -> Check:
    """kernels=liger (trainers.kernels): liger-kernel installed, and a CUDA GPU for its Triton kernels."""
    from trainers.kernels import LIGER_INSTALL, liger_installed

    if not liger_installed():
        return Check("liger kernels", "fail", "kernels=liger, but liger-kernel is not installed", f"{LIGER_INSTALL}, or --set kernels=none")
    gpu = _gpu_info()
    if gpu is None:
        return Check("liger kernels", "fail", "kernels=liger needs a CUDA GPU; none here", "--set kernels=none")
    return Check("liger kernels", "ok", f"liger-kernel {importlib.metadata.version('liger-kernel')} on {gpu[0]}")


def _in_folder(folder: Path, src: str, tgt: str) -> bool:
    """A src->tgt lexicon in `folder`: its own file, the inverse one, or two composable through English."""
    from trainers.lexicons import lexicon_from_folder

    try:
        lexicon_from_folder(folder, src, tgt)
        return True
    except HarnessError:
        return False


def _word_by_word(plan: RunPlan, targets: list[str]) -> Check:
    """translator=lexicon translates through <lexicon_dir> (as is, inverted or composed through English)
    only: no download, no induction."""
    from trainers.lexicons import BUILTIN_LEXICON_DIR

    settings = settings_of(plan.config)
    folder = Path(settings.get("lexicon_dir") or BUILTIN_LEXICON_DIR)
    source = str(settings.get("source_lang") or "en")
    missing = [c for c in targets if not _in_folder(folder, source, c)]
    if missing:
        return Check("translator=lexicon", "fail", f"no {source}-{{{','.join(missing)}}} lexicon in {folder}",
                     "translator=nllb (the default), or lexicon_dir=<folder with <src>-<xx>.txt>, e.g. the mirror's lexicons/")
    return Check("translator=lexicon", "ok", f"word-by-word MT through {folder}")


def _lexicons(plan: RunPlan, needs) -> Check:
    from trainers.lexicons import BUILTIN_LEXICON_DIR, find_lexicon_file, muse_url

    origins, missing, induced = [], [], []
    lexicon_dir = settings_of(plan.config).get("lexicon_dir") or None
    folder = Path(lexicon_dir or BUILTIN_LEXICON_DIR)
    for src, tgt in needs.lexicon_pairs:
        found = find_lexicon_file(src, tgt, lexicon_dir)
        if found:
            origins.append(f"{tgt}: {found.origin}")
        elif _in_folder(folder, src, tgt):
            origins.append(f"{tgt}: inverted or composed through English in {folder}")
        elif muse_url(src, tgt) and plan.online():
            origins.append(f"{tgt}: MUSE download")
        elif muse_url(src, tgt):
            missing.append(f"{src}-{tgt}")
        else:
            induced.append(f"{src}-{tgt}")
    if induced and needs.translator not in ("nllb", "nllb-ct2", "llm"):
        missing += [f"{p} (no MUSE; translator={needs.translator} cannot induce one)" for p in induced]
    elif induced:
        origins.append(f"induced with {needs.translator}: {', '.join(induced)}")
    if missing:
        return Check("lexicons", "fail", "; ".join([f"missing: {', '.join(missing)}"] + origins),
                     f"{plan.fetch_cmd()}; or lexicon_dir with <src>-<tgt>.txt")
    return Check("lexicons", "warn" if induced else "ok", "; ".join(origins))


def check_model(plan: RunPlan) -> Check:
    from harness.core.models import BUILTIN_MODELS

    model = plan.model
    if model in BUILTIN_MODELS:
        return Check("model", "ok", f"{model} (built in)")
    if Path(model).expanduser().exists():
        ok = (Path(model).expanduser() / "config.json").is_file()
        return Check("model", "ok" if ok else "fail", f"{model}: local folder" + ("" if ok else " without config.json"))
    if not hub.is_hub_id(model):
        return Check("model", "fail", f"{model!r} is not a folder, a hub id or a built-in", f"one of: {', '.join(BUILTIN_MODELS)}")
    if hub.cached_snapshot(model):
        return Check("model", "ok", f"{model} in the HF cache")
    return _from_hub("model", model, plan, model)


def check_tokenizers(plan: RunPlan) -> list[Check]:
    from harness.evaluation.metrics import spm_model_path

    checks = []
    for name in sorted(spm_tokenizers(plan.suite)):
        path = spm_model_path(name)
        checks.append(Check(f"sacreBLEU {name}", "ok", str(path)) if path.is_file() else
                      Check(f"sacreBLEU {name}", "warn", f"no SentencePiece model at {path}: BLEU falls back to the task's "
                            "fallback tokenizer (the signature says which)", plan.fetch_cmd()))
    return checks


def collect(plan: RunPlan) -> list[Check]:
    checks = check_environment(plan)
    if plan.model:
        checks.append(check_model(plan))
    if plan.suite is not None:
        checks += check_data(plan) + check_tokenizers(plan) + check_trainer(plan)
    return checks


def render(checks: list[Check]):
    from rich.markup import escape
    from rich.table import Table

    table = Table("status", "requirement", "detail", "fix")
    for c in checks:
        table.add_row(STATUSES[c.status], escape(c.item), escape(c.detail), escape(c.fix))
    return table


def preflight(plan: RunPlan) -> list[Check]:
    """The checks of a run's plan stage: a failing one stops it here, in one line, before any model loads.
    Also makes the run's --data-dir the mirror the trainers' hub loaders read."""
    mirror.activate(plan.data_dir)
    checks = collect(plan)
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        raise HarnessError("not ready to run (harness doctor shows all): " +
                           "; ".join(f"{c.item}: {c.detail}" + (f" -> {c.fix}" if c.fix else "") for c in failed))
    return checks


def preflight_run(spec, suite: Suite, trainer, runs_dir: Path, data_built: bool = False) -> list[Check]:
    """preflight() for `harness run` (harness/app/pipeline.py calls this in its plan stage). Once the
    training set is built (`data_built`), the trainer's sources are no longer needed."""
    return preflight(RunPlan(suite=suite, model=spec.model, config=trainer.config, trains=type(trainer).trains and not data_built,
                             data_dir=Path(spec.data_dir) if spec.data_dir else None, engine=spec.engine, runs_dir=Path(runs_dir)))
