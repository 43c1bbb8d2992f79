"""A full disk mid-evaluation ended in `OSError [Errno 28]` without a path (issue 25): it is one line
naming the folder, what was written and what is free; what was finished stays."""

from __future__ import annotations

import errno

import pytest

from harness.core.errors import HarnessError
from harness.core.runstore import atomic_dir, read_json, write_json
from harness.evaluation.evalcache import write_entry


def _fill_after(limit: int):
    """A file object whose writes fail with ENOSPC once `limit` bytes went through."""
    import builtins

    real_open = builtins.open

    def fake_open(path, mode="r", *args, **kwargs):
        fh = real_open(path, mode, *args, **kwargs)
        if "w" not in mode:
            return fh
        real_write, written = fh.write, [0]

        def write(data):
            written[0] += len(data)
            if written[0] > limit:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(data)

        fh.write = write
        return fh

    return fake_open


def test_a_full_disk_names_the_folder_and_keeps_what_was_finished(tmp_path, monkeypatch):
    task = tmp_path / "runs" / "r" / "eval" / "base" / "belebele_cs"
    write_json(tmp_path / "runs" / "r" / "eval" / "base" / "sib200_cs" / "scores.json", {"done": True})
    monkeypatch.setattr("builtins.open", _fill_after(100))
    with pytest.raises(HarnessError) as raised:
        write_entry(task, {"metrics": {"acc": 0.5}}, [{"doc_id": i, "text": "x" * 40} for i in range(10)])
    message = str(raised.value)
    assert "no space left on the device of" in message and str(task) in message and "samples.jsonl" in message
    assert "MB free there" in message and "rerun" in message and "\n" not in message
    monkeypatch.undo()
    assert not list(task.glob("*")), "no half-written file is left"
    assert read_json(tmp_path / "runs" / "r" / "eval" / "base" / "sib200_cs" / "scores.json") == {"done": True}


def test_a_full_disk_while_writing_a_folder_names_it(tmp_path):
    target = tmp_path / "merged" / "abc"
    with pytest.raises(HarnessError, match=r"no space left on the device of .*merged' while writing abc \(0.1 MB written"):
        with atomic_dir(target) as tmp:
            (tmp / "model.safetensors").write_bytes(b"\0" * 50_000)
            raise OSError(errno.ENOSPC, "No space left on device")
    assert not target.exists() and list((tmp_path / "merged").iterdir()) == []
