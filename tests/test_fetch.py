"""The hub loaders, `harness fetch` and `harness doctor` against a fake hub serving the public schemas
(tests/fake_hub.py): SIB-200 through the Parquet conversion, the FLORES+ gate, a missing config,
lexicons for pairs MUSE lacks, and a run from the mirror with the network off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_hub import FakeHub
from harness.core import hub, mirror
from harness.app.cli import main
from harness.core.errors import HarnessError
from harness.core.runstore import read_json, read_jsonl
from tasks import dataio
from trainers.translators import Translator


@pytest.fixture()
def fake_hub(monkeypatch, tmp_path) -> FakeHub:
    # set (empty = none) rather than deleted, so that teardown also removes what a run's activate() set
    monkeypatch.setenv(mirror.ENV_MIRROR, "")
    monkeypatch.setenv("SDRRL_DATA_DIR", "")
    monkeypatch.setenv("HF_TOKEN", "hf_fake")
    hub.SCRIPT_REPOS.clear()
    return FakeHub().install(monkeypatch, tmp_path / "sacrebleu")


def test_sib200_is_read_from_the_parquet_conversion(fake_hub):
    rows = dataio.read_hub_split("Davlan/sib200", "ces_Latn", "validation")
    assert [set(r) for r in rows] == [{"index_id", "category", "text"}] * 3
    first, second = fake_hub.calls
    assert first[:3] == ("Davlan/sib200", "ces_Latn", "validation")  # refused: a script repository
    assert second[0] == "parquet"
    assert second[4] == {"validation": "hf://datasets/Davlan/sib200@refs/convert/parquet/ces_Latn/validation/*.parquet"}


def test_gated_flores_and_missing_config_are_one_line(fake_hub):
    fake_hub.access.clear()
    with pytest.raises(HarnessError) as err:
        dataio.read_hub_split("openlanguagedata/flores_plus", "khm_Khmr", "devtest")
    message = str(err.value)
    assert "https://huggingface.co/datasets/openlanguagedata/flores_plus" in message and "HF_TOKEN" in message
    assert "\n" not in message
    with pytest.raises(HarnessError, match=r"facebook/belebele has no config 'xxx_Latn'; it has: \['ces_Latn'"):
        dataio.read_hub_split("facebook/belebele", "xxx_Latn", "test")
    fake_hub.online = False
    with pytest.raises(HarnessError, match="ConnectionError.*harness fetch"):
        dataio.read_hub_split("facebook/belebele", "ces_Latn", "test")


class WordTranslator(Translator):
    """Translates a word w to <tgt>:w; counts what it is asked."""

    def __init__(self, name: str = "fake"):
        self.name, self.asked = name, 0

    @property
    def id(self) -> str:
        return f"word:{self.name}"

    def _translate(self, texts, src, tgt):
        self.asked += len(texts)
        return [f"{tgt.code}:{t}" if t != "the" else t for t in texts]


def test_repo_info_reads_commit_licence_and_gate(monkeypatch):
    import huggingface_hub

    class Info:
        sha, card_data, gated = "0123abcd", {"license": "cc-by-sa-4.0"}, "manual"

    class Api:
        def dataset_info(self, repo_id):
            return Info()

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    info = hub.repo_info("openlanguagedata/flores_plus")
    assert (info.sha, info.license, info.gated) == ("0123abcd", "cc-by-sa-4.0", True)


def test_khmer_lexicon_is_induced_once_and_a_user_file_wins(tmp_path, monkeypatch):
    from trainers.lexicons import resolve_lexicon

    monkeypatch.setenv(mirror.ENV_MIRROR, "")
    translator = WordTranslator()
    path = resolve_lexicon("en", "km", None, translator, tmp_path, n_words=50)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 49 and "and km:and" in lines  # "the" came back untranslated: dropped
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["origin"] == "induced" and sidecar["translator"] == "word:fake"
    assert resolve_lexicon("en", "km", None, translator, tmp_path, n_words=50) == path and translator.asked == 50  # cached
    assert resolve_lexicon("en", "km", None, WordTranslator("other"), tmp_path, n_words=50) != path  # keyed by translator
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "en-km.txt").write_text("cat ឆ្មា\n", encoding="utf-8")
    assert resolve_lexicon("en", "km", tmp_path / "mine", translator, tmp_path) == tmp_path / "mine" / "en-km.txt"
    with pytest.raises(HarnessError, match=r"MUSE lexicon https://dl.fbaipublicfiles.com/arrival/dictionaries/en-da.txt .*harness fetch"):
        resolve_lexicon("en", "da", None, translator, tmp_path)  # MUSE has en-da; downloads are off in tests


def _fetch_args(out: Path, *extra: str, parallel_per_lang: int = 2) -> list[str]:
    return ["fetch", "--suite", "paper15", "--langs", "cs", "--out", str(out), "--set", "translator=lexicon",
            "--set", "num_instructions=2", "--set", f"parallel_per_lang={parallel_per_lang}", *extra]


def test_fetch_a_gated_repository_stops_only_its_resources(fake_hub, tmp_path, capsys):
    fake_hub.access.clear()
    assert main(_fetch_args(tmp_path / "mirror")) == 2
    err = capsys.readouterr().err
    assert err.count("accept its terms at https://huggingface.co/datasets/openlanguagedata/flores_plus") == 1
    assert err.strip().splitlines()[-1].startswith("harness: error: 2 resource(s) not fetched")
    manifest = read_json(tmp_path / "mirror" / "fetch_manifest.json")["resources"]
    assert "data:sib200/ces_Latn/test" in manifest and not any(k.startswith("data:flores200") for k in manifest)
    fake_hub.online = False  # no network at all: one line at once, not a retry per resource
    assert main(_fetch_args(tmp_path / "other")) == 2
    assert capsys.readouterr().err.strip() == (
        "harness: error: huggingface.co is unreachable from here (no network, or HF_HUB_OFFLINE / SDRRL_OFFLINE set); "
        "run `harness fetch` on a machine with internet access and copy the --out folder (and the HF cache for the models) over")


def test_fetch_a_model_records_its_commit_and_a_gated_model_is_one_line(fake_hub, tiny_llama, tmp_path, capsys):
    comet = tmp_path / "comet"
    (comet / "checkpoints").mkdir(parents=True)
    (comet / "hparams.yaml").write_text("nr_frozen_epochs: 0.3\npretrained_model: xlm-roberta-large\n", encoding="utf-8")
    fake_hub.models.update({"org/tiny": tiny_llama, "Unbabel/wmt22-comet-da": comet, "xlm-roberta-large": tmp_path})
    base = ["fetch", "--suite", "paper15", "--langs", "cs", "--trainer", "base", "--out", str(tmp_path / "m")]
    assert main([*base, "--model", "org/tiny", "--comet", "Unbabel/wmt22-comet-da"]) == 0
    resources = read_json(tmp_path / "m" / "fetch_manifest.json")["resources"]
    entry = resources["model:org/tiny"]
    assert entry["path"] == str(tiny_llama) and entry["revision"] and entry["repo_type"] == "model"
    assert resources["model:Unbabel/wmt22-comet-da"]["encoder"] == "xlm-roberta-large"
    assert ("xlm-roberta-large", ["*.json", "*.model", "tokenizer*", "sentencepiece*"]) in fake_hub.snapshots
    capsys.readouterr()
    assert main([*base, "--model", "gated/llama"]) == 2
    err = capsys.readouterr().err
    assert "failed model:gated/llama: gated/llama is gated (your token has no access yet): accept its terms at " \
           "https://huggingface.co/gated/llama while logged in, then set HF_TOKEN=" in err


@pytest.mark.slow
def test_fetch_then_run_from_the_mirror_with_the_network_off(fake_hub, tiny_llama, tmp_path, eval_cache, monkeypatch, capsys):
    out = tmp_path / "mirror"
    assert main(_fetch_args(out)) == 0
    manifest = read_json(out / "fetch_manifest.json")["resources"]
    sib = manifest["data:sib200/ces_Latn/train"]
    assert (sib["source"], sib["license"], sib["revision"]) == ("Davlan/sib200", "cc-by-sa-4.0", "refs/convert/parquet")
    assert manifest["data:belebele/ces_Latn/test"]["revision"] and manifest["instructions:tatsu-lab/alpaca"]["license"] == "cc-by-nc-4.0"
    assert manifest["lexicon:en-cs"]["induced"] is False and manifest["parallel:Helsinki-NLP/opus-100/en-cs"]["pairs"] == 2
    assert {"data:flores200/eng_Latn/devtest", "data:flores200/ces_Latn/devtest", "sacrebleu:flores200"} <= set(manifest)
    assert len(read_jsonl(out / "sib200" / "ces_Latn" / "validation.jsonl")) == 3

    calls = len(fake_hub.calls)
    assert main(_fetch_args(out)) == 0  # resumable: everything is there, nothing is asked again
    assert len(fake_hub.calls) == calls and "failed 0" in capsys.readouterr().err
    assert main(_fetch_args(out, parallel_per_lang=3)) == 0  # another draw: only the pairs are fetched again
    assert [c[0] for c in fake_hub.calls[calls:]] == ["Helsinki-NLP/opus-100"]
    assert len(read_jsonl(out / "parallel" / "Helsinki-NLP__opus-100" / "en-cs.jsonl")) == 3

    fake_hub.online = False  # the network is off from here on
    args = ["run", "--trainer", "sdrrl", "--model", str(tiny_llama), "--suite", "paper15", "--langs", "cs", "--data-dir", str(out),
            "--engine", "hf", "--limit", "1", "--max-gen-toks", "4", "--runs-dir", str(tmp_path / "runs"), "--name", "offline",
            "--set", "translator=lexicon", "--set", "num_instructions=2", "--set", "parallel_per_lang=2",
            "--set", "answer_max_new_tokens=8", "--set", "keep_truncated_answers=true", "--set", "keep_wrong_language_answers=true", "--set", "max_steps=1",
            "--set", "parallel_formats=translation:1"]  # whole target sentences as answers
    assert main(args) == 0
    records = read_jsonl(tmp_path / "runs" / "offline" / "data" / "train.jsonl")
    parallel = [r for r in records if r["kind"].startswith("parallel")]
    assert len(parallel) == 2 and all("[cs] pair" in r["messages"][1]["content"] for r in parallel)
    switched = [r for r in records if r["kind"] == "code_switch"]
    assert switched and all("-muse" in r["messages"][0]["content"] for r in switched)  # the mirror's (fake MUSE) en-cs lexicon
    assert {r["messages"][0]["content"] for r in records if r["kind"] == "en_self"} <= {f"Name one thing about topic {i}." for i in range(6)}
    scores = read_json(tmp_path / "runs" / "offline" / "eval" / "adapter" / "sib200_cs" / "scores.json")
    assert scores["n_samples"] == 1


def test_run_stops_in_the_plan_stage_when_data_is_missing(fake_hub, tiny_llama, tmp_path, monkeypatch, capsys):
    import harness.app.pipeline as pipeline

    fake_hub.online = False

    def no_model(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(pipeline, "resolve_model", no_model)
    args = ["run", "--trainer", "sdrrl", "--model", str(tiny_llama), "--suite", "paper15", "--langs", "cs",
            "--runs-dir", str(tmp_path / "runs"), "--set", "translator=lexicon"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the run's banner: the one error line
    assert err.startswith("harness: error: not ready to run")
    assert "data: flores200" in err and "openlanguagedata/flores_plus is gated" in err and "harness fetch" in err
    assert "translator=lexicon" not in err  # the shipped en-cs lexicon serves word-by-word MT into Czech
    assert main([*args[:8], "da", *args[9:], "--name", "da"]) == 2  # Danish: no shipped lexicon for translator=lexicon
    assert "no lexicon for en->da" in capsys.readouterr().err  # the trainer's own plan check comes first


def test_doctor_table_names_what_is_missing_and_the_fix(fake_hub, tiny_llama, monkeypatch, capsys):
    import importlib.metadata

    monkeypatch.setenv("COLUMNS", "250")
    fake_hub.online = False
    assert main(["doctor", "--suite", "smoke", "--model", str(tiny_llama), "--trainer", "sdrrl", "--engine", "hf"]) == 0
    assert capsys.readouterr().out.strip().endswith("ready")
    assert main(["doctor", "--suite", "sea", "--model", str(tiny_llama), "--trainer", "sdrrl"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "data: belebele" in out and "harness fetch --suite sea" in out
    assert "lexicons" in out and "en-th" in out  # MUSE has en-th (not downloadable offline); en-km is induced
    assert "induced with nllb: en-km" in out

    fake_hub.online, fake_hub.access = True, set()  # online, but this token has not accepted the FLORES+ terms
    assert main(["doctor", "--suite", "sea", "--model", str(tiny_llama), "--trainer", "sdrrl"]) == 1
    out = capsys.readouterr().out
    assert "data: belebele" in out and "from the hub (facebook/belebele" in out
    assert "openlanguagedata/flores_plus is gated (your token has no access yet)" in out

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "3.6.0" if name == "datasets" else real(name))
    assert main(["doctor"]) == 1
    assert "3.6.0 is outside the tested range >=4.0,<6" in capsys.readouterr().out
