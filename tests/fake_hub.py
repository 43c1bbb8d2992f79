"""A fake Hugging Face Hub for tests: `datasets.load_dataset`, repo infos, snapshots and plain URL
downloads replaced by functions that serve records in the public schemas and raise the hub's own
errors (a gated repository, a script repository, a missing config, no network).

Record shapes, each from its dataset card (huggingface.co/datasets/<id>):
- facebook/belebele: one config per FLORES-200 code, split `test`; link, question_number (int),
  flores_passage, question, mc_answer1..mc_answer4, correct_answer_num (a string "1".."4"),
  dialect, ds. Licence cc-by-sa-4.0.
- Davlan/sib200: one config per FLORES-200 code, splits train/validation/test; index_id,
  category (7 topics), text. Licence cc-by-sa-4.0. A loading-script repository (sib200.py):
  `datasets` >= 4 refuses it, its Parquet conversion is `refs/convert/parquet/<config>/<split>/`.
- openlanguagedata/flores_plus: gated; one config per FLORES-200 code, splits dev/devtest; id,
  iso_639_3, iso_15924, glottocode, text, url, domain, topic, has_image, has_hyperlink,
  last_updated. Licence cc-by-sa-4.0.
- Helsinki-NLP/opus-100: configs "<a>-<b>" with the codes sorted (cs-en, en-ja), split train;
  {"translation": {"<a>": ..., "<b>": ...}}. Licence: the card says unknown.
- tatsu-lab/alpaca: one default config, split train; instruction, input, output, text.
  Licence cc-by-nc-4.0.
- MUSE (github.com/facebookresearch/MUSE README): dl.fbaipublicfiles.com/arrival/dictionaries/en-<xx>.txt,
  one "source target" pair per line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from datasets.exceptions import DatasetNotFoundError
from huggingface_hub.errors import GatedRepoError

from harness.core import hub

LICENCES = {"facebook/belebele": "cc-by-sa-4.0", "Davlan/sib200": "cc-by-sa-4.0", "openlanguagedata/flores_plus": "cc-by-sa-4.0",
            "Helsinki-NLP/opus-100": "unknown", "tatsu-lab/alpaca": "cc-by-nc-4.0"}
SCRIPT_REPOS = {"Davlan/sib200"}
GATED = {"openlanguagedata/flores_plus"}
PARQUET_URL = re.compile(r"hf://datasets/(?P<repo>[^@]+)@refs/convert/parquet/(?P<config>[^/]+)/(?P<split>[^/]+)/\*\.parquet")
SENTENCES = ["The cat sleeps on the warm mat.", "Scientists found a new frog in the forest.", "The museum opens every day at nine."]
# Translations marked "-muse", so a test can tell these from the lexicons shipped in trainers/data.
MUSE = {"en-cs": "topic téma-muse\nname jméno-muse\nthing věc-muse\n", "en-ja": "topic 話題-muse\nname 名前-muse\n"}


def belebele(config: str) -> list[dict]:
    return [{"link": f"https://en.wikinews.org/wiki/{i}", "question_number": i, "flores_passage": f"{config} passage {i}. {SENTENCES[i % 3]}",
             "question": f"What is passage {i} about?", "mc_answer1": "a cat", "mc_answer2": "a frog", "mc_answer3": "a museum",
             "mc_answer4": "a mat", "correct_answer_num": str(1 + i % 4), "dialect": config, "ds": "2023-05-03"} for i in range(3)]


def sib200(config: str, split: str) -> list[dict]:
    topics = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]
    return [{"index_id": i, "category": topics[i % 7], "text": f"{config} {split} {i}: {SENTENCES[i % 3]}"} for i in range(3)]


def flores(config: str) -> list[dict]:
    iso, script = config.split("_")
    return [{"id": i + 1, "iso_639_3": iso, "iso_15924": script, "glottocode": "xxxx1234", "text": f"[{config}] {s}",
             "url": "https://en.wikinews.org/wiki/x", "domain": "wikinews", "topic": "science", "has_image": "no",
             "has_hyperlink": "no", "last_updated": "1.0"} for i, s in enumerate(SENTENCES)]


def opus(config: str) -> list[dict]:
    a, b = config.split("-")
    return [{"translation": {a: f"[{a}] pair {i}", b: f"[{b}] pair {i}"}} for i in range(40)]


def alpaca() -> list[dict]:
    return [{"instruction": f"Name one thing about topic {i}.", "input": "", "output": f"Topic {i} is interesting.",
             "text": f"### Instruction:\nName one thing about topic {i}.\n\n### Response:\nTopic {i} is interesting."} for i in range(6)]


def records(repo: str, config: str | None, split: str) -> list[dict]:
    """The records of (repo, config, split); ValueError like `datasets` for an unknown config."""
    known = {"facebook/belebele": ("ces_Latn", "jpn_Jpan", "khm_Khmr", "eng_Latn"), "Davlan/sib200": ("ces_Latn", "jpn_Jpan", "khm_Khmr", "eng_Latn"),
             "openlanguagedata/flores_plus": ("ces_Latn", "jpn_Jpan", "khm_Khmr", "eng_Latn"),
             "Helsinki-NLP/opus-100": ("cs-en", "en-ja", "en-km"), "tatsu-lab/alpaca": (None,)}
    if config not in known[repo]:
        raise ValueError(f"BuilderConfig '{config}' not found. Available: {list(known[repo])}")
    if repo == "facebook/belebele":
        return belebele(config)
    if repo == "Davlan/sib200":
        return sib200(config, split)
    if repo == "openlanguagedata/flores_plus":
        return flores(config)
    return opus(config) if repo == "Helsinki-NLP/opus-100" else alpaca()


class FakeStream(list):
    """What load_dataset(..., streaming=True) gives: an iterable with a seeded shuffle."""

    def shuffle(self, seed: int, buffer_size: int):
        import random

        rows = list(self)
        random.Random(seed).shuffle(rows)
        return FakeStream(rows)


def gated_error(repo: str) -> DatasetNotFoundError:
    """What `datasets` raises for a gated repository without access (datasets/load.py)."""
    url = f"https://huggingface.co/api/datasets/{repo}"
    cause = GatedRepoError(f"401 Client Error. Cannot access gated repo for url {url}.",
                           response=httpx.Response(401, request=httpx.Request("GET", url)))
    try:
        raise cause
    except GatedRepoError as exc:
        try:
            raise DatasetNotFoundError(f"Dataset '{repo}' is a gated dataset on the Hub. You must be authenticated to access it.") from exc
        except DatasetNotFoundError as wrapped:
            return wrapped


@dataclass
class FakeHub:
    online: bool = True
    access: set[str] = field(default_factory=lambda: set(GATED))  # gated repositories this token may read
    calls: list[tuple] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    models: dict[str, Path] = field(default_factory=dict)  # model repo id -> a local folder to serve
    snapshots: list[tuple] = field(default_factory=list)

    def load_dataset(self, path, name=None, split=None, revision=None, data_files=None, streaming=False, **_):
        self.calls.append((path, name, split, revision, data_files))
        if not self.online:
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (ConnectError)")
        if path == "parquet":
            match = PARQUET_URL.fullmatch(next(iter(data_files.values())))
            return records(match["repo"], match["config"], match["split"])
        if path in GATED and path not in self.access:
            raise gated_error(path)
        if path in SCRIPT_REPOS:
            raise RuntimeError(f"Dataset scripts are no longer supported, but found {path.split('/')[-1]}.py")
        rows = records(path, name, split)
        return FakeStream(rows) if streaming else rows

    def repo_info(self, repo_id: str, repo_type: str = "dataset") -> hub.RepoInfo:
        if not self.online:
            raise ConnectionError("offline")
        return hub.RepoInfo(repo_id, repo_type, f"{abs(hash(repo_id)) % 16**12:012x}", LICENCES.get(repo_id), repo_id in GATED)

    def download_url(self, url: str, dest: Path, progress=None) -> Path:
        if not self.online:
            raise OSError(f"offline: {url}")
        self.downloads.append(url)
        name = url.rsplit("/", 1)[-1].removesuffix(".txt")
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_text(MUSE.get(name, "not a real SentencePiece model\n"), encoding="utf-8")
        return Path(dest)

    def snapshot_download(self, repo_id: str, repo_type: str | None = None, allow_patterns=None, **_) -> str:
        """Models: `gated/...` ids are gated, others resolve to the folder in `models`."""
        if not self.online:
            raise ConnectionError("offline")
        if repo_id.startswith("gated/") and repo_id not in self.access:
            url = f"https://huggingface.co/api/models/{repo_id}"
            raise GatedRepoError(f"401 Client Error. Cannot access gated repo for url {url}.",
                                 response=httpx.Response(401, request=httpx.Request("GET", url)))
        self.snapshots.append((repo_id, allow_patterns))
        return str(self.models[repo_id])

    def install(self, monkeypatch, spm_dir: Path) -> "FakeHub":
        import datasets
        import huggingface_hub

        import harness.evaluation.metrics as metrics

        monkeypatch.setattr(datasets, "load_dataset", self.load_dataset)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", self.snapshot_download)
        monkeypatch.setattr(hub, "repo_info", self.repo_info)
        monkeypatch.setattr(hub, "download_url", self.download_url)
        monkeypatch.setattr(hub, "reachable", lambda *a, **k: self.online)
        monkeypatch.setattr(hub, "check_access", self.check_access)
        # sacreBLEU's folder is the user's: the fake model goes to a temporary one
        monkeypatch.setattr(metrics, "spm_model_path", lambda tokenize="flores200": Path(spm_dir) / tokenize)
        return self

    def check_access(self, repo_id: str, repo_type: str = "dataset") -> None:
        if not self.online:
            raise ConnectionError("offline")
        if repo_id in GATED and repo_id not in self.access:
            raise gated_error(repo_id).__cause__
