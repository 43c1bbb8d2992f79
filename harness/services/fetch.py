"""`harness fetch`: everything a suite and a trainer need, downloaded once into a local mirror.

The mirror has the `--data-dir` layout (harness/core/mirror.py), so `harness run ... --data-dir DIR`
then runs with the network off. Models (the base model, NLLB) go to the Hugging Face cache and
the sacreBLEU SentencePiece model to sacreBLEU's own folder, where the run looks for them.
Resumable: a resource in the manifest whose file exists is not fetched again. A gated
repository stops only its own resources, with one line naming the page to accept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.core import hub, mirror
from harness.core.errors import HarnessError
from harness.services.requirements import SplitNeed, TrainerNeeds, split_needs, spm_tokenizers, trainer_needs
from harness.core.runstore import write_jsonl, write_text
from harness.evaluation.registry import Suite


@dataclass
class Resource:
    key: str  # manifest key, e.g. "data:sib200/nob_Latn/test"
    repo: str | None  # the hub repository it comes from (gates are per repository)
    fetch: Callable[[], dict[str, Any]]  # downloads; returns the manifest entry
    path: Callable[[], Path | None] = lambda: None  # where it lands, for the resume check
    params: dict[str, Any] = field(default_factory=dict)  # settings it was fetched with; a change refetches it


@dataclass
class FetchResult:
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # key -> one-line reason


class _Infos:
    """Commit and licence per repository, looked up once."""

    def __init__(self) -> None:
        self.cache: dict[tuple[str, str], hub.RepoInfo] = {}

    def entry(self, repo: str, repo_type: str = "dataset") -> dict[str, Any]:
        if (repo, repo_type) not in self.cache:
            self.cache[(repo, repo_type)] = hub.repo_info(repo, repo_type)
        info = self.cache[(repo, repo_type)]
        return {"source": repo, "repo_type": repo_type, "revision": info.sha, "license": info.license, "gated": info.gated}


def _split_resource(out: Path, need: SplitNeed, infos: _Infos) -> Resource:
    dest = out / need.relative

    def run() -> dict[str, Any]:
        entry = infos.entry(need.dataset)
        rows = hub.load_split(need.dataset, need.config, need.split, revision=entry["revision"])
        if need.dataset in hub.SCRIPT_REPOS:  # read from the Parquet conversion, not from this commit
            entry = {**entry, "revision": hub.PARQUET_REVISION}
        write_jsonl(dest, rows)
        return {**entry, "kind": "task data", "config": need.config, "split": need.split, "path": str(dest), "records": len(rows)}

    return Resource(f"data:{need.family}/{need.config}/{need.split}", need.dataset, run, lambda: dest)


def _trainer_resources(out: Path, needs: TrainerNeeds, infos: _Infos, seed: int, make_translator: Callable[[], Any]) -> list[Resource]:
    resources: list[Resource] = []
    if needs.translator_model:
        repo = needs.translator_model
        resources.append(Resource(f"model:{repo}", repo, lambda: {**infos.entry(repo, "model"), "kind": "translator model",
                                                                   "path": str(hub.snapshot(repo))}))
    if needs.instructions:
        resources.append(_instructions_resource(out, needs.instructions, infos))
    for code in needs.target_langs if needs.parallel else []:
        resources.append(_parallel_resource(out, needs, code, infos, seed))
    resources += [_lexicon_resource(out, src, tgt, make_translator) for src, tgt in needs.lexicon_pairs]
    return resources


def _lexicon_resource(out: Path, src: str, tgt: str, make_translator: Callable[[], Any]) -> Resource:
    """MUSE's src-tgt dictionary, or one induced with the configured translator where MUSE has none."""
    from trainers.lexicons import MUSE_LICENCE, download_muse, induce_lexicon, muse_url

    folder = mirror.lexicon_dir(out)
    dest, url = folder / f"{src}-{tgt}.txt", muse_url(src, tgt)

    def run() -> dict[str, Any]:
        if url:
            return {"kind": "lexicon", "source": url, "license": MUSE_LICENCE, "induced": False, "path": str(download_muse(src, tgt, folder))}
        translator = make_translator()
        induced = induce_lexicon(src, tgt, translator, folder / ".induced")
        write_text(dest, induced.read_text(encoding="utf-8"))
        return {"kind": "lexicon", "source": f"wordfreq top words of {src!r} translated by {translator.id}", "induced": True,
                "license": None, "path": str(dest), "induced_from": str(induced)}

    return Resource(f"lexicon:{src}-{tgt}", None, run, lambda: dest)


def _instructions_resource(out: Path, repo: str, infos: _Infos) -> Resource:
    dest = mirror.instructions_path(out, repo)

    def run() -> dict[str, Any]:
        rows = hub.load_split(repo, None, "train")
        write_jsonl(dest, rows)
        return {**infos.entry(repo), "kind": "instructions", "split": "train", "path": str(dest), "records": len(rows)}

    return Resource(f"instructions:{repo}", repo, run, lambda: dest)


def _parallel_resource(out: Path, needs: TrainerNeeds, code: str, infos: _Infos, seed: int) -> Resource:
    from harness.core.langs import get_language
    from trainers.parallel import load_parallel

    repo, n = needs.parallel, needs.parallel_per_lang
    dest = mirror.parallel_dir(out, repo) / f"en-{code}.jsonl"

    def run() -> dict[str, Any]:
        pairs = load_parallel(repo, get_language("en"), get_language(code), n, seed)  # the draw a run with this seed makes (OPUS-100: English-centric)
        write_jsonl(dest, ({"translation": {"en": en, code: xx}} for en, xx in pairs))
        return {**infos.entry(repo), "kind": "parallel pairs", "config": "-".join(sorted(["en", code])), "split": "train",
                "seed": seed, "pairs": len(pairs), "path": str(dest)}

    return Resource(f"parallel:{repo}/en-{code}", repo, run, lambda: dest, {"pairs": n, "seed": seed})


def _spm_resource(tokenize: str) -> Resource:
    from harness.evaluation.metrics import _spm_models, spm_model_path

    url, dest = _spm_models()[tokenize]["url"], spm_model_path(tokenize)
    return Resource(f"sacrebleu:{tokenize}", None, lambda: {"kind": "SentencePiece model", "source": url, "path": str(hub.download_url(url, dest))},
                    lambda: dest)


def _model_resource(model: str, infos: _Infos) -> Resource:
    from harness.core.models import resolve_model

    return Resource(f"model:{model}", model, lambda: {**infos.entry(model, "model"), "kind": "model", "path": str(resolve_model(model))})


def _comet_resource(repo: str, infos: _Infos) -> Resource:
    """A COMET checkpoint, plus the tokenizer and config of the encoder it names in hparams.yaml
    (`pretrained_model: xlm-roberta-large`): COMET reads those from the hub when it loads."""
    import yaml

    def run() -> dict[str, Any]:
        folder = hub.snapshot(repo)
        hparams = yaml.safe_load((folder / "hparams.yaml").read_text(encoding="utf-8")) or {}
        encoder = hparams.get("pretrained_model")
        if encoder:
            hub.snapshot(str(encoder), allow_patterns=["*.json", "*.model", "tokenizer*", "sentencepiece*"])
        return {**infos.entry(repo, "model"), "kind": "COMET model", "path": str(folder), "encoder": encoder}

    return Resource(f"model:{repo}", repo, run)


def plan(suite: Suite, out: Path, *, model: str | None, config: Any, trains: bool, seed: int,
         make_translator: Callable[[], Any], comet: str | None = None) -> list[Resource]:
    """The resources in the order they are fetched (models first: an induced lexicon needs the translator)."""
    infos = _Infos()
    resources = [_model_resource(model, infos)] if model and hub.is_hub_id(model) else []
    resources += [_comet_resource(comet, infos)] if comet else []
    needs = trainer_needs(config, suite.languages, trains)
    resources += _trainer_resources(out, needs, infos, seed, make_translator)
    resources += [_split_resource(out, need, infos) for need in split_needs(suite) if need.dataset]
    resources += [_spm_resource(name) for name in sorted(spm_tokenizers(suite))]
    return resources


def run_fetch(resources: list[Resource], out: Path, progress) -> FetchResult:
    """Fetch what is not there yet; one failure does not stop the others (a gate stops its repository)."""
    manifest, result = mirror.FetchManifest(out), FetchResult()
    gated: set[str] = set()
    bar = progress.add_task("fetch", total=len(resources))
    for res in resources:
        progress.update(bar, description=f"fetch {res.key}")
        dest = res.path()
        if manifest.has(res.key) and (dest is None or dest.exists()) and manifest.entries[res.key].get("params", {}) == res.params:
            result.skipped.append(res.key)
        elif res.repo in gated:
            result.failed[res.key] = f"{res.repo} is gated (see above)"
        else:
            try:
                manifest.record(res.key, **res.fetch(), **({"params": res.params} if res.params else {}))
                result.fetched.append(res.key)
            except Exception as exc:  # each resource ends in one line; the rest go on
                error = exc if isinstance(exc, HarnessError) and not hub.is_gated(exc) else \
                    hub.explain(exc, res.repo or res.key, res.key, "check the name and the network, then rerun `harness fetch`",
                                "model" if res.key.startswith("model:") else "dataset",
                                "the Hugging Face Hub" if res.repo else "its URL")
                if res.repo and hub.is_gated(exc):
                    gated.add(res.repo)
                result.failed[res.key] = str(error)
                progress.console.print(f"[red]failed[/] {res.key}: {error}", soft_wrap=True)
        progress.advance(bar)
    return result


def fetch(suite: Suite, out: Path, *, model: str | None, config: Any, trains: bool, seed: int,
          make_translator: Callable[[], Any], progress, comet: str | None = None) -> FetchResult:
    if not hub.reachable():
        raise HarnessError(f"{hub.HUB_HOST} is unreachable from here (no network, or HF_HUB_OFFLINE / SDRRL_OFFLINE set); "
                           "run `harness fetch` on a machine with internet access and copy the --out folder (and the HF cache "
                           "for the models) over")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    previous = os.environ.pop(mirror.ENV_MIRROR, None)  # never read the mirror being written as a source
    try:
        resources = plan(suite, out, model=model, config=config, trains=trains, seed=seed, make_translator=make_translator, comet=comet)
        return run_fetch(resources, out, progress)
    finally:
        if previous is not None:
            os.environ[mirror.ENV_MIRROR] = previous
