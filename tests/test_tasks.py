"""Tasks, suites, data loading and sacreBLEU scoring: offline, no model runs (lm-eval's dummy LM at most)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu

from harness.core.errors import HarnessError
from harness.core.langs import LANGUAGE_SETS, LANGUAGES
from harness.evaluation.registry import (
    TaskInfo,
    all_suites,
    all_tasks,
    get_suite,
    get_task,
    load_suites,
    task_from_config,
    tasks_dir,
)
from harness.evaluation import evalcache, metrics
from tasks import dataio, generate

SIB_CATEGORIES = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]
NON_ENGLISH = [c for c in LANGUAGES if c != "en"]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No downloads, no leaking data dir, an empty sacreBLEU folder; tokenizer decisions reset."""
    from sacrebleu.tokenizers import tokenizer_spm

    monkeypatch.setenv("SDRRL_OFFLINE", "1")
    monkeypatch.delenv(dataio.ENV_DATA_DIR, raising=False)
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path / "sacrebleu-home"))
    metrics.reset_tokenizer_cache()
    yield
    metrics.reset_tokenizer_cache()


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def make_data(root: Path, codes=tuple(LANGUAGES)) -> Path:
    """A data_dir in the hub record formats, for every language; texts name their language."""
    for code in codes:
        fl = LANGUAGES[code].flores
        _write_jsonl(
            root / "belebele" / fl / "test.jsonl",
            [
                {
                    "link": f"https://en.wikibooks.org/wiki/Page_{i}",
                    "question_number": 1,
                    "flores_passage": f"Passage {fl} {i}.",
                    "question": f" Question {fl} {i}? ",
                    "mc_answer1": f"a{i}",
                    "mc_answer2": f"b{i}",
                    "mc_answer3": f"c{i}",
                    "mc_answer4": f"d{i}",
                    "correct_answer_num": str(i % 4 + 1),
                    "dialect": fl,
                    "ds": "2023-05-03",
                }
                for i in range(3)
            ],
        )
        for split, n in (("train", 7), ("validation", 7), ("test", 9)):
            _write_jsonl(
                root / "sib200" / fl / f"{split}.jsonl",
                [
                    {"index_id": 100 + i, "category": SIB_CATEGORIES[i % 7], "text": f"{fl} {split} text {i}"}
                    for i in range(n)
                ],
            )
        iso, script = fl.split("_")
        for split, ids in (("devtest", (3, 1, 2)), ("dev", range(10, 17))):
            _write_jsonl(
                root / "flores200" / fl / f"{split}.jsonl",
                [
                    {
                        "id": i,
                        "iso_639_3": iso,
                        "iso_15924": script,
                        "glottocode": "xxxx1234",
                        "text": f"{fl} {'sentence' if split == 'devtest' else 'example'} {i}",
                        "url": f"https://en.wikinews.org/wiki/Article_{i}",
                        "domain": "wikinews",
                        "topic": "science",
                        "has_image": "no",
                        "has_hyperlink": "no",
                        "last_updated": "1.0",
                    }
                    for i in ids
                ],
            )
        _write_jsonl(root / "instruct" / fl / "test.jsonl",
                     [{"id": f"q{i}", "instruction": f"{fl} instruction {i}", "provenance": "fixture"} for i in range(2)])
    return root


def manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=metadata or None)


def load_tasks(names, **metadata) -> dict:
    return manager(**metadata).load(list(names))["tasks"]


# --------------------------------------------------------------------------- generated files


def test_generated_files_are_up_to_date():
    assert generate.outdated() == [], "run `python -m tasks.generate` and commit the result"


def test_generator_detects_and_repairs_drift(tmp_path):
    root = tmp_path / "tasks"
    shutil.copytree(tasks_dir(), root, ignore=shutil.ignore_patterns("fixtures", "__pycache__"))
    assert generate.outdated(root) == []
    edited = root / "belebele" / "belebele_cs.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("ces_Latn", "xxx_Latn"), encoding="utf-8")
    stale = root / "belebele" / "belebele_zz.yaml"
    stale.write_text(generate.HEADER + "task: belebele_zz\n", encoding="utf-8")
    (root / "suite_sea.yaml").unlink()
    assert set(generate.outdated(root)) == {edited, stale, root / "suite_sea.yaml"}
    generate.write(root)
    assert generate.outdated(root) == []
    assert not stale.exists() and "ces_Latn" in edited.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- registry


def test_every_language_has_its_tasks_with_metadata():
    tasks = all_tasks()
    expected = {cfg["task"] for cfg in generate.task_configs().values()} | set(generate.hand_written())
    assert set(tasks) == expected
    for family in generate.FAMILIES:  # every family covers every language (translation: every non-English one)
        langs = {t.lang for t in tasks.values() if t.family == family.name}
        assert langs == {c for c in LANGUAGES if family.english or c != "en"}, family.name
    for name, t in tasks.items():
        meta = t.metadata
        assert isinstance(t, TaskInfo) and t.yaml_path.is_file() and t.name == name
        assert {"version", "family", "lang", "kind", "primary_metric", "config"} <= set(meta)
        assert (t.family, t.lang, t.kind, t.primary_metric) == (
            meta["family"], meta["lang"], meta["kind"], meta["primary_metric"]
        )
        assert meta["config"] == LANGUAGES[t.lang].flores
        if t.family.startswith("flores200"):
            src, tgt = meta["direction"].split("-")
            assert name == f"{t.family}_{meta['direction']}" and "en" in (src, tgt) and t.lang in (src, tgt)
            assert (meta.get("fewshot_split"), meta.get("chat_template", True)) == (
                ("dev", False) if t.family == "flores200_fewshot" else (None, True))
            assert (t.kind, t.primary_metric) == ("generation", "bleu")
            assert meta["source_config"] == LANGUAGES[src].flores and meta["target_config"] == LANGUAGES[tgt].flores
            assert meta["sacrebleu"]["bleu"]["tokenize"] == "flores200"
            assert meta["sacrebleu"]["bleu"]["fallback_tokenize"] == ("char" if tgt in ("ja", "th", "km") else "13a")
            assert meta["sacrebleu"]["chrf"] == {"char_order": 6, "word_order": 2}
        elif t.family == "instruct":
            assert (t.kind, t.primary_metric, name, meta["target_lang"]) == ("generation", "lang_match", f"instruct_{t.lang}", t.lang)
        else:
            assert (t.kind, t.primary_metric) == ("comprehension", "acc")
            assert name == f"{t.family}_{t.lang}"


def test_suites():
    suites = all_suites()
    assert set(suites) == {"paper15", "paper15-fewshot", "sea", "smoke", "smoke_fr"}
    paper15 = suites["paper15"]
    assert paper15.languages == list(LANGUAGE_SETS["paper15"]) and paper15.data_dir is None
    assert len(paper15.tasks) == 15 * 2 + 14 * 2
    assert [t.family for t in paper15.tasks][:15] == ["belebele"] * 15
    assert {t.name for t in suites["sea"].tasks} == {
        "belebele_th", "belebele_km", "sib200_th", "sib200_km",
        "flores200_en-th", "flores200_th-en", "flores200_en-km", "flores200_km-en",
    }
    smoke = suites["smoke"]
    assert smoke.languages == ["en", "cs", "ja"] and len(smoke.tasks) == 13
    assert [t.name for t in smoke.tasks][-3:] == ["instruct_en", "instruct_cs", "instruct_ja"]
    assert {t.family for t in suites["paper15-fewshot"].tasks} == {"flores200_fewshot"}
    assert smoke.data_dir == tasks_dir() / "fixtures" and smoke.data_dir.is_dir()
    french = suites["smoke_fr"]  # French as the source: its retention is measured on French tasks
    assert french.languages == ["fr", "en", "cs"] and french.trainer_settings["source_lang"] == "fr"
    assert {t.name for t in french.tasks} >= {"belebele_fr", "sib200_fr", "flores200_en-fr", "flores200_fr-en"}


def test_suite_language_restriction():
    suite = get_suite("paper15", "ja,cs")
    assert suite.languages == ["cs", "ja"]
    assert {t.name for t in suite.tasks} == {
        "belebele_cs", "belebele_ja", "sib200_cs", "sib200_ja",
        "flores200_en-cs", "flores200_cs-en", "flores200_en-ja", "flores200_ja-en",
    }
    with pytest.raises(HarnessError, match=r"'cs'.*valid: km, th"):
        get_suite("sea", "cs")
    with pytest.raises(HarnessError, match=r"unknown language 'zz'.*valid: .*bg.*vi"):
        get_suite("paper15", "cs,zz")


def test_registry_errors_name_bad_and_valid_values(tmp_path):
    with pytest.raises(HarnessError, match=r"unknown task 'belebele_zz'; valid: .*belebele_cs.*flores200_en-cs"):
        get_task("belebele_zz")
    assert get_task("flores200_en-cs").metadata["direction"] == "en-cs"
    with pytest.raises(HarnessError, match=r"unknown suite 'paper16'; valid: paper15, paper15-fewshot, sea, smoke"):
        get_suite("paper16")
    bad = tmp_path / "suites.yaml"
    bad.write_text("suites:\n  x:\n    languages: [cs]\n    families: [belebele, nosuchfamily]\n", encoding="utf-8")
    families = ", ".join(sorted({t.family for t in all_tasks().values()}))
    with pytest.raises(HarnessError, match=rf"unknown task family .*'nosuchfamily'; valid: {families}$"):
        load_suites(bad, all_tasks())
    with pytest.raises(HarnessError, match=r"metadata lacks kind, primary_metric"):
        task_from_config({"task": "t", "metadata": {"version": 1, "family": "f", "lang": "cs", "config": "c"}}, bad)


def test_registry_names_no_family_or_task():
    source = (Path(__file__).resolve().parent.parent / "harness" / "evaluation" / "registry.py").read_text(encoding="utf-8").lower()
    for word in ("belebele", "sib200", "sib-200", "flores", "paper15", "smoke"):
        assert word not in source


# --------------------------------------------------------------------------- lm-eval loading


MADE_FAMILIES = ("belebele", "sib200", "flores200", "flores200_fewshot", "instruct")  # what make_data writes


def test_every_task_builds_docs_from_a_data_dir(tmp_path):
    data = make_data(tmp_path / "data")
    registry = all_tasks()  # read once: get_task reads every task file again, 0.25 s a call (30 s over the tasks)
    names = [n for n, t in registry.items() if t.family in MADE_FAMILIES]
    loaded = load_tasks(names, data_dir=str(data))
    assert set(loaded) == set(names)
    for name, task in loaded.items():
        info = registry[name]
        docs = list(task.eval_docs)
        assert task.config.metadata["data_dir"] == str(data)  # TaskManager metadata reached the task
        fl = info.metadata["config"]
        if info.family == "belebele":
            assert len(docs) == 3
            assert task.doc_to_text(docs[1]) == (
                f"P: Passage {fl} 1.\nQ: Question {fl} 1?\nA: a1\nB: b1\nC: c1\nD: d1\nAnswer:"
            )
            assert task.doc_to_choice(docs[1]) == ["A", "B", "C", "D"]
            assert [task.doc_to_target(d) for d in docs] == [0, 1, 2]
        elif info.family == "sib200":
            assert len(docs) == 9
            assert task.doc_to_choice(docs[0]) == SIB_CATEGORIES
            assert [task.doc_to_target(d) for d in docs] == [i % 7 for i in range(9)]
            assert f"Text: {fl} test text 0\nTopic:" in task.doc_to_text(docs[0])
            assert len(list(task.fewshot_docs())) == 7
        elif info.family == "instruct":
            assert [task.doc_to_text(d) for d in docs] == [f"{fl} instruction 0", f"{fl} instruction 1"]
            assert task.config.generation_kwargs["until"] == []
        else:
            meta = info.metadata
            src, tgt = LANGUAGES[meta["source_lang"]], LANGUAGES[meta["target_lang"]]
            assert [d["id"] for d in docs] == [3, 1, 2]
            assert task.doc_to_target(docs[1]) == f"{tgt.flores} sentence 1"
            assert task.config.generation_kwargs["until"] == [f"\n{src.name}:", "\nTranslate the following", "\n\n\n"]
            if info.family == "flores200":
                assert task.doc_to_text(docs[1]) == (
                    f"Translate the following sentence from {src.name} to {tgt.name}.\n"
                    f"{src.name}: {src.flores} sentence 1\n{tgt.name}:"
                )
                continue
            # few-shot: the first 5 pairs of the dev split, never a devtest sentence
            shots = list(task.fewshot_docs())
            assert [d["id"] for d in shots] == list(range(10, 17))
            context = task.fewshot_context(docs[1], num_fewshot=5)
            assert context.startswith(f"Translate the following sentences from {src.name} to {tgt.name}.\n\n"
                                      f"{src.name}: {src.flores} example 10\n{tgt.name}: {tgt.flores} example 10\n\n")
            assert context.count(" example ") == 10 and "sentence 3" not in context
            assert context.endswith(f"{src.name}: {src.flores} sentence 1\n{tgt.name}:")


def test_every_generated_family_builds_docs_from_its_fixture():
    """A family of the table, new ones included, reads its shipped fixture in every language it has one."""
    fixtures = tasks_dir() / "fixtures"
    registry = all_tasks()  # read once (each call reads every task file)
    for family in generate.FAMILIES:
        tasks = [t for t in registry.values() if t.family == family.name]
        utils = evalcache._task_utils(tasks[0].yaml_path.parent / "utils.py")
        covered = [t for t in tasks if all(f.is_file() for f in utils.data_files(fixtures.resolve(), t.metadata))]
        assert covered, f"{family.name}: no fixture under {fixtures}"
        loaded = load_tasks([t.name for t in covered], data_dir=str(fixtures))
        for task in covered:
            docs = list(loaded[task.name].eval_docs)
            assert docs and all(isinstance(loaded[task.name].doc_to_text(d), str) for d in docs), task.name


def test_metadata_data_dir_beats_env_and_env_is_a_fallback(tmp_path, monkeypatch):
    make_data(tmp_path / "a", codes=("cs",))
    make_data(tmp_path / "b", codes=("cs",))
    (tmp_path / "b" / "sib200" / "ces_Latn" / "test.jsonl").write_text(
        json.dumps({"index_id": 1, "category": "travel", "text": "from env"}) + "\n", encoding="utf-8"
    )
    monkeypatch.setenv(dataio.ENV_DATA_DIR, str(tmp_path / "b"))
    docs = list(load_tasks(["sib200_cs"])["sib200_cs"].eval_docs)
    assert [d["text"] for d in docs] == ["from env"]
    docs = list(load_tasks(["sib200_cs"], data_dir=str(tmp_path / "a"))["sib200_cs"].eval_docs)
    assert len(docs) == 9


def test_relative_user_data_dir_resolves_from_cwd(tmp_path, monkeypatch):
    make_data(tmp_path / "mydata", codes=("ja",))
    monkeypatch.chdir(tmp_path)
    docs = list(load_tasks(["belebele_ja"], data_dir="mydata")["belebele_ja"].eval_docs)
    assert docs[0]["flores_passage"] == "Passage jpn_Jpan 0."


def test_fixture_paths_resolve_from_the_task_files_not_the_cwd(tmp_path, monkeypatch):
    (tmp_path / "fixtures").mkdir()  # a decoy: a CWD-relative lookup would find nothing here
    monkeypatch.chdir(tmp_path)
    loaded = manager().load(["smoke"])["tasks"]
    assert len(loaded) == 13
    sizes = {name: len(list(t.eval_docs)) for name, t in loaded.items()}
    assert sizes["belebele_ja"] == 8 and sizes["sib200_cs"] == 14 and sizes["flores200_en-ja"] == 10
    assert sizes["instruct_cs"] == 4
    doc = next(iter(loaded["flores200_en-ja"].eval_docs))
    assert doc["source"].startswith("On Monday") and doc["target"].startswith("月曜日")


def test_a_copied_tasks_folder_reads_its_own_fixtures(tmp_path, monkeypatch):
    from lm_eval.tasks import TaskManager

    copy = tmp_path / "elsewhere" / "tasks"
    shutil.copytree(tasks_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / "fixtures" / "belebele" / "ces_Latn" / "test.jsonl"
    path.write_text("".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:2]), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    loaded = TaskManager(include_path=str(copy), include_defaults=False).load(["smoke"])["tasks"]
    assert len(list(loaded["belebele_cs"].eval_docs)) == 2
    assert len(list(loaded["belebele_en"].eval_docs)) == 8


def test_default_is_the_hub_dataset(monkeypatch):
    import datasets

    calls = []

    def fake_load_dataset(path, name=None, split=None, revision=None, data_files=None):
        if path == "parquet":  # the Parquet conversion of a script repository: one config, one split
            (url,) = data_files.values()
            path, name = "Davlan/sib200", url.split("/")[-3]
            revision = url.split("@", 1)[1].split(f"/{name}/")[0]
        calls.append((path, name, split, revision))
        if path == "Davlan/sib200" and revision is None:
            raise RuntimeError("Dataset scripts are no longer supported, but found sib200.py")
        if path == "openlanguagedata/flores_plus":
            rows = [{"id": i, "text": f"{name} {i}"} for i in (1, 2)]
        elif path == "Davlan/sib200":
            rows = [{"index_id": 1, "category": "health", "text": f"{name} {split}"}]
        else:
            rows = [{"flores_passage": "p", "question": "q", "mc_answer1": "a", "mc_answer2": "b",
                     "mc_answer3": "c", "mc_answer4": "d", "correct_answer_num": "2"}]
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    loaded = load_tasks(["belebele_cs", "sib200_ja", "flores200_ko-en"])
    assert ("facebook/belebele", "ces_Latn", "test", None) in calls
    assert ("Davlan/sib200", "jpn_Jpan", "test", "refs/convert/parquet") in calls
    assert {c[2] for c in calls if c[0] == "Davlan/sib200"} == {"train", "validation", "test"}
    assert {c[1:3] for c in calls if c[0] == "openlanguagedata/flores_plus"} == {
        ("kor_Hang", "devtest"), ("eng_Latn", "devtest")
    }
    doc = next(iter(loaded["flores200_ko-en"].eval_docs))
    assert (doc["source"], doc["target"]) == ("kor_Hang 1", "eng_Latn 1")
    assert loaded["belebele_cs"].doc_to_target(next(iter(loaded["belebele_cs"].eval_docs))) == 1

    def null_question(*args, **kwargs):
        return datasets.Dataset.from_list([{**fake_load_dataset(*args, **kwargs)[0], "question": None}])

    monkeypatch.setattr(datasets, "load_dataset", null_question)
    with pytest.raises(HarnessError, match=r"facebook/belebele:ces_Latn:test record 1: field 'question' is null"):
        load_tasks(["belebele_cs"])

    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach the Hub\nsecond line")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(HarnessError) as err:
        load_tasks(["belebele_cs"])
    assert "facebook/belebele" in str(err.value) and "data_dir" in str(err.value) and "\n" not in str(err.value)


def test_fixtures_are_in_the_hub_formats():
    root = tasks_dir() / "fixtures"
    fields = {
        "belebele": {"link", "question_number", "flores_passage", "question", "mc_answer1", "mc_answer2",
                     "mc_answer3", "mc_answer4", "correct_answer_num", "dialect", "ds"},
        "sib200": {"index_id", "category", "text"},
        "flores200": {"id", "iso_639_3", "iso_15924", "glottocode", "text", "url", "domain", "topic",
                      "has_image", "has_hyperlink", "last_updated"},
    }
    for code in LANGUAGE_SETS["smoke"]:
        fl = LANGUAGES[code].flores
        for family, splits in (("belebele", ["test"]), ("sib200", ["train", "validation", "test"]), ("flores200", ["devtest", "dev"])):
            for split in splits:
                rows = dataio.read_local_split(root, family, fl, split)
                assert all(set(r) == fields[family] for r in rows), (family, fl, split)
                if family == "belebele":
                    assert all(r["correct_answer_num"] in ("1", "2", "3", "4") and r["dialect"] == fl for r in rows)
                if family == "sib200" and split == "test":
                    assert sorted(r["category"] for r in rows) == sorted(SIB_CATEGORIES * 2)
    ids = [[r["id"] for r in dataio.read_local_split(root, "flores200", LANGUAGES[c].flores, "devtest")] for c in ("en", "cs", "ja")]
    assert ids[0] == ids[1] == ids[2] == list(range(1, 11))


def test_missing_local_file_is_one_clear_line(tmp_path):
    make_data(tmp_path, codes=("en",))
    with pytest.raises(HarnessError) as err:
        load_tasks(["flores200_en-cs"], data_dir=str(tmp_path))
    message = str(err.value)
    assert str(tmp_path / "flores200" / "ces_Latn" / "devtest.jsonl") in message and "\n" not in message
    with pytest.raises(HarnessError, match=r"sib200/ces_Latn/train\.jsonl"):
        load_tasks(["sib200_cs"], data_dir=str(tmp_path))


def test_bad_local_records_are_reported(tmp_path):
    make_data(tmp_path, codes=("en", "cs"))
    path = tmp_path / "belebele" / "ces_Latn" / "test.jsonl"
    path.write_text('{"question": "q"}\n', encoding="utf-8")
    with pytest.raises(HarnessError, match=r"test\.jsonl:1: record lacks field\(s\) flores_passage"):
        load_tasks(["belebele_cs"], data_dir=str(tmp_path))
    _write_jsonl(tmp_path / "flores200" / "ces_Latn" / "devtest.jsonl", [{"id": 1, "text": "jen jedna"}])
    with pytest.raises(HarnessError, match=r"2 sentence id\(s\) .*eng_Latn/devtest\.jsonl are missing from"):
        load_tasks(["flores200_en-cs"], data_dir=str(tmp_path))


# --------------------------------------------------------------------------- sacreBLEU

REFS = ["The cat sat on the mat.", "It rained all day in the small town.", "We will meet again tomorrow morning."]
HYPS = ["The cat is sitting on the mat.", "It rained the whole day in a small town.", "We meet again tomorrow."]


def test_metric_helpers_match_sacrebleu():
    bleu = metrics.corpus_bleu(REFS, HYPS, tokenize="13a")
    assert 0 < bleu < 100
    assert bleu == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="13a").score)
    chrf = metrics.corpus_chrf(REFS, HYPS)
    assert chrf == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS], word_order=2).score)
    assert chrf != pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS], word_order=0).score)  # it is chrF++
    with pytest.raises(HarnessError, match="2 hypotheses for 3 references"):
        metrics.corpus_bleu(REFS, HYPS[:2], tokenize="13a")


def _fixture_task(name: str):
    return load_tasks([name], data_dir=str(tasks_dir() / "fixtures"))[name]


def _score(task, hyps: list[str]) -> dict[str, float]:
    """Per-doc process_results, then the task's corpus-level aggregation: what lm-eval does."""
    per_doc = [task.process_results(doc, [hyp]) for doc, hyp in zip(task.eval_docs, hyps)]
    agg = task.aggregation()
    return {m: agg[m]([r[m] for r in per_doc]) for m in ("bleu", "chrf")}


def test_flores_task_scores_equal_direct_sacrebleu_with_visible_fallback():
    # Offline and no model file: flores200 is unavailable, en->cs falls back to 13a.
    task = _fixture_task("flores200_en-cs")
    refs = [d["target"] for d in task.eval_docs]
    hyps = [" ".join(r.split()[:-2]) + "\nsecond line is dropped" for r in refs]
    scores = _score(task, hyps)
    first = [h.split("\n")[0] for h in hyps]
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(first, [refs], tokenize="13a").score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(first, [refs], word_order=2).score)
    assert 0 < scores["bleu"] < 100
    sigs = metrics.sacrebleu_signatures(get_task("flores200_en-cs").metadata)
    assert "tok:13a" in sigs["bleu"] and "flores200" not in sigs["bleu"]
    assert sigs["bleu_fallback"].startswith("requested tok:flores200, used tok:13a")
    assert "nw:2" in sigs["chrf"] and "nc:6" in sigs["chrf"]


def test_japanese_target_falls_back_to_char_tokenization():
    task = _fixture_task("flores200_en-ja")
    refs = [d["target"] for d in task.eval_docs]
    hyps = [r[: len(r) // 2] for r in refs]
    scores = _score(task, hyps)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="char").score)
    assert scores["bleu"] > 0  # 13a would see each sentence as one token and give 0
    assert "tok:char" in metrics.sacrebleu_signatures(get_task("flores200_en-ja").metadata)["bleu"]
    assert "tok:13a" in metrics.sacrebleu_signatures(get_task("flores200_ja-en").metadata)["bleu"]
    assert metrics.sacrebleu_signatures(get_task("belebele_ja").metadata) == {}


def test_flores200_tokenizer_is_used_when_its_model_is_present(tmp_path):
    import sentencepiece as spm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(REFS + HYPS) * 20, encoding="utf-8")
    model_path = metrics.spm_model_path("flores200")
    model_path.parent.mkdir(parents=True)
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "m"), vocab_size=60, model_type="unigram",
        hard_vocab_limit=False, minloglevel=2,
    )
    shutil.copy(tmp_path / "m.model", model_path)
    metrics.reset_tokenizer_cache()
    sigs = metrics.sacrebleu_signatures(get_task("flores200_en-cs").metadata)
    assert "tok:flores200" in sigs["bleu"] and "bleu_fallback" not in sigs
    expected = sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="flores200").score
    assert metrics.corpus_bleu(REFS, HYPS, tokenize="flores200", fallback="13a") == pytest.approx(expected)
    assert expected != pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="13a").score)


def test_unavailable_tokenizer_without_fallback_is_an_error():
    with pytest.raises(HarnessError, match=r"tokenizer 'flores200' is unavailable: no SentencePiece model at"):
        metrics.corpus_bleu(REFS, HYPS, tokenize="flores200")


# --------------------------------------------------------------------------- lm-eval CLI


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", SDRRL_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.pop(dataio.ENV_DATA_DIR, None)
    lm_eval = Path(sys.executable).with_name("lm-eval")
    return subprocess.run([str(lm_eval), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_lm_eval_cli_knows_the_tasks_and_suites(tmp_path):
    out = _cli(["validate", "--tasks", "flores200_en-cs,belebele_km,sib200_en,paper15,sea,smoke",
                "--include_path", str(tasks_dir())], tmp_path)
    assert out.returncode == 0 and "All tasks found and valid" in out.stdout, out.stdout + out.stderr


def test_lm_eval_cli_runs_the_smoke_suite_offline(tmp_path):
    out = _cli(["run", "--model", "dummy", "--tasks", "smoke", "--include_path", str(tasks_dir()),
                "--limit", "3", "--output_path", str(tmp_path / "out")], tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    [results_file] = list((tmp_path / "out").rglob("results_*.json"))
    results = json.loads(results_file.read_text())["results"]
    assert set(results) >= {"smoke", "flores200_en-ja", "belebele_cs", "sib200_ja"}
    assert "bleu,none" in results["flores200_en-ja"] and "chrf,none" in results["flores200_cs-en"]
    assert "acc,none" in results["belebele_cs"]
