import json
from pathlib import Path

import pytest

from harness.core.runstore import Manifest, atomic_dir, atomic_path, read_jsonl, write_json, write_jsonl


def test_atomic_write_leaves_old_file_when_writer_fails(tmp_path: Path):
    target = tmp_path / "scores.json"
    write_json(target, {"acc": 0.5})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{half")
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"acc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]  # no temp file left behind


def test_atomic_dir_replaces_whole_folder_or_keeps_the_old_one(tmp_path: Path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "weights").write_text("half")
            raise RuntimeError("killed mid-write")
    assert (target / "weights").read_text() == "old"
    with atomic_dir(target) as tmp:
        (tmp / "weights").write_text("new")
    assert [p.name for p in target.iterdir()] == ["weights"] and (target / "weights").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temp folder left behind


def test_atomic_dir_scratch_clears_what_a_killed_attempt_left(tmp_path: Path):
    target, scratch = tmp_path / "adapter", tmp_path / "adapter.partial"
    scratch.mkdir()
    (scratch / "stale").write_text("from a killed run")
    with atomic_dir(target, scratch=scratch) as tmp:
        assert tmp == scratch and not any(tmp.iterdir())
        (tmp / "weights").write_text("new")
    assert [p.name for p in target.iterdir()] == ["weights"] and not scratch.exists()


def test_jsonl_round_trip_keeps_unicode(tmp_path: Path):
    rows = [{"text": "Příliš žluťoučký kůň"}, {"text": "日本語"}]
    assert write_jsonl(tmp_path / "a.jsonl", rows) == 2
    assert read_jsonl(tmp_path / "a.jsonl") == rows


def test_manifest_done_only_for_same_input_hash(tmp_path: Path):
    m = Manifest(tmp_path)
    m.record("data", "h1", 1.5, seed=3, records=10)
    again = Manifest(tmp_path)  # a new process reads what the last one wrote
    assert again.is_done("data", "h1")
    assert not again.is_done("data", "h2")
    assert again.stages["data"]["records"] == 10
    assert "torch" in again.stages["data"]["versions"]
    again.forget(["data"])
    assert not Manifest(tmp_path).is_done("data", "h1")
