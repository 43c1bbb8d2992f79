"""Every Hugging Face Hub and plain-URL access of the harness, in one place.

Loaders (task data, instructions, parallel pairs), `harness fetch` and `harness doctor` go through
these functions, so the tests can replace the hub with fakes serving the public schemas, and so a
gated repository, a script repository or a missing config end in one line that says what to do.

Script repositories: `datasets` 4 and later refuse repositories built on a loading script
("Dataset scripts are no longer supported"); Davlan/sib200 is one. The Hub's automatic Parquet
conversion of such a repository lives on the branch `refs/convert/parquet`, one folder per
config and one per split (`<config>/<split>/0000.parquet`, see huggingface.co/docs/dataset-viewer/parquet
and e.g. huggingface.co/datasets/Davlan/sib200/tree/refs%2Fconvert%2Fparquet/cat_Latn/test).
That branch has no README declaring the configs, so `load_dataset(repo, config,
revision="refs/convert/parquet")` sees a single `default` config; the files are read with the
`parquet` builder and an `hf://` path instead.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.core.errors import HarnessError
from harness.core.runstore import atomic_path

HUB_HOST = "huggingface.co"
PARQUET_REVISION = "refs/convert/parquet"
SCRIPT_REFUSED = "scripts are no longer supported"
# Gated per their dataset cards (a "You need to agree to share your contact information" form): named
# offline, when the gate itself cannot be asked about.
KNOWN_GATED = frozenset({"openlanguagedata/flores_plus"})
SCRIPT_REPOS: set[str] = set()  # repositories this process read through their Parquet conversion
TOKEN_HINT = "set HF_TOKEN=<token from https://huggingface.co/settings/tokens> (or run `hf auth login`)"


def is_hub_id(spec: str | None) -> bool:
    """'org/name' that is not a local path nor a built-in (builtin:...): a Hugging Face Hub repository."""
    if not spec or spec.startswith(("builtin:", ".", "/", "~")) or Path(spec).expanduser().exists():
        return False
    parts = spec.split("/")
    return len(parts) == 2 and all(parts)


@dataclass(frozen=True)
class RepoInfo:
    repo_id: str
    repo_type: str  # dataset | model
    sha: str | None  # the commit the files came from
    license: str | None  # as the card's metadata states it
    gated: bool


def page_url(repo_id: str, repo_type: str = "dataset") -> str:
    return f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


def token() -> str | None:
    """The token huggingface_hub would send: $HF_TOKEN, else the one saved by `hf auth login`."""
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # an unreadable token file counts as no token
        return os.environ.get("HF_TOKEN") or None


def is_gated(exc: BaseException) -> bool:
    """A GatedRepoError anywhere in the chain, or `datasets`' rewording of one."""
    from huggingface_hub.errors import GatedRepoError

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, GatedRepoError) or "is a gated dataset" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def gated_error(repo_id: str, repo_type: str = "dataset") -> HarnessError:
    have = "your token has no access yet" if token() else "no token is set"
    return HarnessError(
        f"{repo_id} is gated ({have}): accept its terms at {page_url(repo_id, repo_type)} while logged in, "
        f"then {TOKEN_HINT}"
    )


def explain(exc: BaseException, repo_id: str, what: str, advice: str, repo_type: str = "dataset",
            source: str = "the Hugging Face Hub") -> HarnessError:
    """One line for a failed hub access: the gate, or the first line of the error plus `advice`."""
    if is_gated(exc):
        return gated_error(repo_id, repo_type)
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return HarnessError(f"cannot load {what} from {source}: {type(exc).__name__}: {first}; {advice}")


def repo_info(repo_id: str, repo_type: str = "dataset") -> RepoInfo:
    """Commit and licence of a repository (raises the hub's own errors)."""
    from huggingface_hub import HfApi

    api = HfApi()
    info = api.dataset_info(repo_id) if repo_type == "dataset" else api.model_info(repo_id)
    card = getattr(info, "card_data", None) or getattr(info, "cardData", None) or {}
    licence = card.get("license") if hasattr(card, "get") else None
    gated = getattr(info, "gated", False)
    return RepoInfo(repo_id, repo_type, getattr(info, "sha", None), str(licence) if licence else None, bool(gated))


def check_access(repo_id: str, repo_type: str = "dataset") -> None:
    """Raise the hub's error when this token cannot read `repo_id` (e.g. a gate not yet accepted)."""
    from huggingface_hub import HfApi

    HfApi().auth_check(repo_id, repo_type=repo_type)


def parquet_files(repo_id: str, config: str, split: str) -> str:
    """The hf:// glob of one config and split in the Hub's Parquet conversion."""
    return f"hf://datasets/{repo_id}@{PARQUET_REVISION}/{config}/{split}/*.parquet"


def _missing_config(exc: BaseException, config: str) -> bool:
    return isinstance(exc, ValueError) and f"'{config}' not found" in str(exc)


def load_split(repo_id: str, config: str | None, split: str, revision: str | None = None) -> list[dict[str, Any]]:
    """All records of one config and split; a script repository is read from its Parquet conversion.

    Raises the hub's errors unchanged except a missing config, which becomes a HarnessError naming
    the config and the ones that exist."""
    import datasets

    try:
        try:
            ds = datasets.load_dataset(repo_id, config, split=split, revision=revision)
        except RuntimeError as exc:
            if SCRIPT_REFUSED not in str(exc) or config is None:
                raise
            SCRIPT_REPOS.add(repo_id)
            ds = datasets.load_dataset("parquet", data_files={split: parquet_files(repo_id, config, split)}, split=split)
    except ValueError as exc:
        if config is not None and _missing_config(exc, config):
            available = str(exc).split("Available:", 1)[-1].strip()[:300]
            raise HarnessError(f"{repo_id} has no config {config!r}; it has: {available}") from None
        raise
    return [dict(r) for r in ds]


def stream_split(repo_id: str, config: str | None, split: str, seed: int, buffer_size: int = 10_000):
    """An iterable over a seeded shuffle of one split, streamed (for corpora too big to download)."""
    import datasets

    return datasets.load_dataset(repo_id, config, split=split, streaming=True).shuffle(seed=seed, buffer_size=buffer_size)


def snapshot(repo_id: str, allow_patterns: list[str] | None = None, repo_type: str = "model") -> Path:
    """A repository in the local HF cache (downloaded when missing)."""
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id, repo_type=repo_type, allow_patterns=allow_patterns))


def cached_snapshot(repo_id: str, repo_type: str = "model") -> Path | None:
    """The cached snapshot folder of `repo_id`, without touching the network; None if not cached."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "config.json", repo_type=repo_type)
    return Path(found).parent if isinstance(found, str) else None


def cached_dataset(repo_id: str) -> Path | None:
    """The folder from which `datasets` loads `repo_id` offline (the hub cache, or its own), if there."""
    from huggingface_hub import constants

    org, _, name = repo_id.partition("/")
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE") or Path(constants.HF_HOME) / "datasets")
    for folder in (Path(constants.HF_HUB_CACHE) / f"datasets--{org}--{name}", datasets_cache / f"{org}___{name}"):
        if folder.is_dir():
            return folder
    return None


OFFLINE_ENV = ("SDRRL_OFFLINE", "HF_HUB_OFFLINE")


def downloads_allowed() -> bool:
    """False when SDRRL_OFFLINE or HF_HUB_OFFLINE is set to 1/true/yes."""
    return not any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes") for v in OFFLINE_ENV)


def download_url(url: str, dest: Path, progress: Callable[[int, int | None], None] | None = None) -> Path:
    """A plain URL into `dest` (atomically: a killed download leaves nothing behind)."""
    if not downloads_allowed():
        raise OSError(f"downloads are off (SDRRL_OFFLINE/HF_HUB_OFFLINE), not fetching {url}")
    with atomic_path(dest) as tmp, urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:  # noqa: S310
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        done = 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)
    return dest


def reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """Whether `host` answers on port 443 (False at once when downloads are off)."""
    if not downloads_allowed():
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False
