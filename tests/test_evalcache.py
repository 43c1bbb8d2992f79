"""The shared evaluation cache: keyed by the content of the data a task reads, and never trusted
blindly: an entry that was edited or cut short is a miss, and the recomputation rewrites it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.evaluation import evalcache
from harness.engines import route
from harness.evaluation.evaluate import EvalRequest, evaluate
from harness.core.runstore import read_json, read_jsonl, task_samples, task_scores, write_json
from harness.evaluation.registry import all_tasks, get_task, tasks_dir
from tasks import dataio

FIXTURES = tasks_dir() / "fixtures"


def _request(tmp_path: Path, data: Path | None, name: str = "run", tasks: tuple[str, ...] = ("belebele_cs",),
             model: Path = Path("unused")) -> EvalRequest:
    return EvalRequest(model_dir=model, tasks=[get_task(t) for t in tasks], out_dir=tmp_path / name / "eval" / "base",
                       engine="hf", data_dir=data, limit=2)


def _one_task_per_family() -> list:
    first: dict[str, object] = {}
    for task in all_tasks().values():
        if task.lang == "cs":
            first.setdefault(task.family, task)
    return list(first.values())


@pytest.mark.parametrize("task", _one_task_per_family(), ids=lambda t: t.name)
def test_data_files_are_the_files_each_loader_reads(task, monkeypatch):
    """The key hashes what `load` reads: every file it opens, and nothing else."""
    read: list[Path] = []
    real = dataio.read_local_split

    def recording(root, family, config, split, *a, **k):
        read.append(dataio.split_path(root, family, config, split))
        return real(root, family, config, split, *a, **k)

    monkeypatch.setattr(dataio, "read_local_split", recording)
    utils = evalcache._task_utils(task.yaml_path.parent / "utils.py")
    utils.load(**task.metadata, data_dir=str(FIXTURES))
    assert read and sorted(set(read)) == sorted(utils.data_files(FIXTURES.resolve(), task.metadata))


def test_key_follows_the_data_content_not_its_path(tmp_path, monkeypatch):
    monkeypatch.delenv(dataio.ENV_DATA_DIR, raising=False)
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(FIXTURES, a)
    shutil.copytree(FIXTURES, b)
    task = get_task("belebele_cs")

    def key(data: Path | None) -> str:
        req = _request(tmp_path, data)
        return evalcache.eval_key(req, task, route(req.engine, task.kind, False), "model", None)

    assert key(a) == key(b)  # the same records in another folder: the same evaluation
    (b / "sib200" / "ces_Latn" / "test.jsonl").write_text("{}\n")  # a file belebele_cs does not read
    assert key(a) == key(b)
    path = b / "belebele" / "ces_Latn" / "test.jsonl"
    path.write_text(path.read_text(encoding="utf-8").replace('"correct_answer_num": "1"', '"correct_answer_num": "2"', 1),
                    encoding="utf-8")
    assert key(a) != key(b)
    assert key(None) != key(a)  # the hub dataset
    monkeypatch.setenv(dataio.ENV_DATA_DIR, str(b))  # the loader's fallback: the key follows it too
    assert key(None) == key(b)


def _set_answers(data: Path, answers: dict[int, int]) -> None:
    """Rewrite the Czech Belebele answer key: item index -> choice index (0..3)."""
    path = data / "belebele" / "ces_Latn" / "test.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for i, choice in answers.items():
        rows[i]["correct_answer_num"] = str(choice + 1)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_edited_data_is_not_scored_with_old_results(tiny_llama, tmp_path, eval_cache):
    data = tmp_path / "data"
    shutil.copytree(FIXTURES, data)
    req = _request(tmp_path, data, model=tiny_llama)
    first = evaluate(req)["belebele_cs"]
    rows = read_jsonl(task_samples(req.out_dir / "belebele_cs"))
    # The edit flips every item: right where the model was wrong, wrong where it was right.
    new = {r["doc_id"]: r["prediction"] if r["metrics"]["acc"] == 0.0 else (r["prediction"] + 1) % 4 for r in rows}
    _set_answers(data, new)

    again = evaluate(req)["belebele_cs"]  # the same run folder and command
    assert not again.get("reused_from_cache") and again["eval_key"] != first["eval_key"]
    assert again["metrics"]["acc"] == 1.0 - first["metrics"]["acc"]
    assert [r["target"] for r in read_jsonl(task_samples(req.out_dir / "belebele_cs"))] == [new[0], new[1]]

    other = evaluate(_request(tmp_path, data, name="other", model=tiny_llama))["belebele_cs"]  # another run: the new result
    assert other["reused_from_cache"] and other["metrics"] == again["metrics"]


def test_a_restored_task_says_it_comes_from_the_cache(tiny_llama, tmp_path, eval_cache, capsys):
    from harness.core.progress import make_progress

    evaluate(_request(tmp_path, FIXTURES, model=tiny_llama))
    capsys.readouterr()
    with make_progress() as progress:
        evaluate(_request(tmp_path, FIXTURES, name="second", model=tiny_llama), progress)
    assert "eval base: 1 task result (2 items) from the shared evaluation cache" in capsys.readouterr().err


def _entry(eval_cache: Path) -> Path:
    (entry,) = [p.parent for p in eval_cache.glob("*/scores.json")]
    return entry


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _tamper_accuracy(path: Path) -> None:
    scores = read_json(path)
    scores["metrics"]["acc"] = 0.5 if scores["metrics"]["acc"] != 0.5 else 0.25
    write_json(path, scores)  # still valid JSON


@pytest.mark.parametrize("damage", ["tampered accuracy", "truncated scores", "truncated samples"])
def test_a_damaged_cache_entry_is_a_miss_and_is_rewritten(damage, tiny_llama, tmp_path, eval_cache, capsys):
    truth = evaluate(_request(tmp_path, FIXTURES, name="first", model=tiny_llama))["belebele_cs"]
    entry = _entry(eval_cache)
    samples = task_samples(entry).read_bytes()
    if damage == "tampered accuracy":
        _tamper_accuracy(task_scores(entry))
    elif damage == "truncated scores":
        _truncate(task_scores(entry))
    else:
        _truncate(task_samples(entry))
    capsys.readouterr()
    second = evaluate(_request(tmp_path, FIXTURES, name="second", model=tiny_llama))["belebele_cs"]
    err = capsys.readouterr().err
    assert not second.get("reused_from_cache") and second["metrics"] == truth["metrics"]
    damaged = [line for line in err.splitlines() if "is damaged" in line]
    assert len(damaged) == 1 and damaged[0].startswith(f"evaluate: shared evaluation cache: {entry}"), err
    # Rewritten by the recomputation: the next run takes it as it should be.
    assert read_json(task_scores(entry))["metrics"] == truth["metrics"] and task_samples(entry).read_bytes() == samples
    third = evaluate(_request(tmp_path, FIXTURES, name="third", model=tiny_llama))["belebele_cs"]
    assert third["reused_from_cache"] and third["metrics"] == truth["metrics"]


def _publish_many(entry: str, writer: int, times: int) -> None:
    for i in range(times):
        scores = {"eval_key": "k", "task": "t", "wall_s": writer * 1000 + i}  # each writer's entry differs
        evalcache.publish_entry(Path(entry), scores, [{"doc_id": d, "writer": writer, "i": i} for d in range(200)], replace=True)


def test_concurrent_writers_of_one_cache_entry_never_show_a_reader_a_damaged_one(tmp_path):
    """Members running at once write the same base-model entries: a reader sees a whole entry or none."""
    import multiprocessing

    entry = tmp_path / "cache" / "k"
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_publish_many, args=(str(entry), w, 60)) for w in (1, 2)]
    for w in writers:
        w.start()
    seen, damaged = 0, []
    while any(w.is_alive() for w in writers):
        scores, damage = evalcache.read_entry(entry, "k")
        if damage:
            damaged.append(damage)
        elif scores is not None:
            seen += 1  # (read_entry checked samples and scores against one integrity record)
    for w in writers:
        w.join()
        assert w.exitcode == 0
    assert not damaged, damaged[:3]
    assert seen > 0 and evalcache.read_entry(entry, "k")[0] is not None
    assert not [p for p in entry.parent.iterdir() if p.name.endswith((".tmp", ".stale"))]  # no scratch left behind


def test_the_first_intact_entry_of_a_key_stays_unless_replaced(tmp_path):
    entry = tmp_path / "k"
    assert evalcache.publish_entry(entry, {"eval_key": "k", "wall_s": 1}, [{"doc_id": 0}])
    assert not evalcache.publish_entry(entry, {"eval_key": "k", "wall_s": 2}, [{"doc_id": 0}])
    assert evalcache.read_entry(entry, "k")[0]["wall_s"] == 1
    (entry / "samples.jsonl").write_text("cut short")  # damaged: the next writer replaces it
    assert evalcache.publish_entry(entry, {"eval_key": "k", "wall_s": 3}, [{"doc_id": 0}])
    assert evalcache.read_entry(entry, "k")[0]["wall_s"] == 3
    assert evalcache.publish_entry(entry, {"eval_key": "k", "wall_s": 4}, [{"doc_id": 0}], replace=True)  # --force
    assert evalcache.read_entry(entry, "k")[0]["wall_s"] == 4
