"""Broken model folders, data folders, config and baseline files for the bad-input battery."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tasks" / "fixtures"


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_lines(path: Path, rows: list) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def broken_models(good: Path, root: Path) -> dict[str, Path]:
    def variant(name: str, breaker) -> Path:
        target = root / name
        shutil.copytree(good, target)
        breaker(target)
        return target

    def truncate(path: Path, keep: float = 0.5) -> None:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])

    def no_template(d: Path) -> None:
        (d / "chat_template.jinja").unlink(missing_ok=True)
        _edit_json(d / "tokenizer_config.json", lambda c: c.pop("chat_template", None))

    def sharded_missing(d: Path) -> None:
        (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
        index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
        (d / "model.safetensors.index.json").write_text(json.dumps(index))

    root.mkdir(parents=True, exist_ok=True)
    (root / "a-file").write_text("not a folder")
    return {
        "truncated_config": variant("truncated_config", lambda d: truncate(d / "config.json")),
        "no_config": variant("no_config", lambda d: (d / "config.json").unlink()),
        "config_list": variant("config_list", lambda d: (d / "config.json").write_text("[1, 2]")),
        "no_model_type": variant("no_model_type", lambda d: _edit_json(d / "config.json", lambda c: c.pop("model_type"))),
        "no_weights": variant("no_weights", lambda d: (d / "model.safetensors").unlink()),
        "bin_weights": variant("bin_weights", lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin")),
        "truncated_weights": variant("truncated_weights", lambda d: truncate(d / "model.safetensors", 0.7)),
        "garbage_weights": variant("garbage_weights", lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 64)),
        "missing_shard": variant("missing_shard", sharded_missing),
        "no_tokenizer": variant("no_tokenizer", lambda d: (d / "tokenizer.json").unlink()),
        "bad_tokenizer_config": variant("bad_tokenizer_config", lambda d: truncate(d / "tokenizer_config.json")),
        "no_chat_template": variant("no_chat_template", no_template),
        "a_file": root / "a-file",
    }


def broken_data(root: Path) -> dict[str, Path]:
    def variant(name: str, breaker) -> Path:
        target = root / name
        shutil.copytree(FIXTURES, target)
        breaker(target)
        return target

    def belebele_rows(d: Path, change) -> None:
        path = d / "belebele" / "ces_Latn" / "test.jsonl"
        rows = _lines(path)
        change(rows)
        _write_lines(path, rows)

    def truncated_row(d: Path) -> None:
        path = d / "belebele" / "ces_Latn" / "test.jsonl"
        text = path.read_text(encoding="utf-8").rstrip("\n")
        path.write_text(text[: len(text) - 20], encoding="utf-8")

    def flores_missing_id(d: Path) -> None:
        path = d / "flores200" / "jpn_Jpan" / "devtest.jsonl"
        _write_lines(path, _lines(path)[1:])

    def sib_category(d: Path) -> None:
        path = d / "sib200" / "ces_Latn" / "validation.jsonl"
        rows = _lines(path)
        rows[0]["category"] = "cooking"
        _write_lines(path, rows)

    root.mkdir(parents=True, exist_ok=True)
    (root / "a-file").write_text("not a folder")
    return {
        "missing_lang": variant("missing_lang", lambda d: shutil.rmtree(d / "belebele" / "jpn_Jpan")),
        "missing_split": variant("missing_split", lambda d: (d / "sib200" / "ces_Latn" / "train.jsonl").unlink()),
        "truncated_row": variant("truncated_row", truncated_row),
        "missing_field": variant("missing_field", lambda d: belebele_rows(d, lambda rows: rows[2].pop("question"))),
        "answer_7": variant("answer_7", lambda d: belebele_rows(d, lambda rows: rows[1].update(correct_answer_num="7"))),
        "row_not_object": variant("row_not_object", lambda d: belebele_rows(d, lambda rows: rows.__setitem__(0, [1, 2]))),
        "empty_file": variant("empty_file", lambda d: (d / "flores200" / "ces_Latn" / "devtest.jsonl").write_text("")),
        "flores_missing_id": variant("flores_missing_id", flores_missing_id),
        "flores_no_text": variant("flores_no_text", lambda d: _write_lines(
            d / "flores200" / "eng_Latn" / "devtest.jsonl",
            [{k: v for k, v in r.items() if k != "text"} for r in _lines(d / "flores200" / "eng_Latn" / "devtest.jsonl")])),
        "sib_category": variant("sib_category", sib_category),
        "a_file": root / "a-file",
    }


def misc_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "bad_yaml": "learning_rate: [1e-4\n",
        "list_yaml": "- epochs: 1\n",
        "typed_yaml": "epochs: abc\n",
        "rank_yaml": "lora_rank: 1000\n",
        "bool_yaml": "same_batch: 3\n",
        "unknown_yaml": "epoch: 2\n",
        "baseline_bad_json": '{"cells": {',
        "baseline_no_cells": '{"format": "x"}',
        "baseline_bad_cell": '{"format": "sdrrl-harness baseline v2", "cells": {"acc": {"kind": "score", "value": 1}}}',
        "baseline_list": "[1]",
        "translations_bad_row": '{"src_lang": "en", "tgt_lang": "cs", "source": "a", "translation": "b"}\n{"src_lang": "en"}\n',
    }
    out = {}
    for name, text in files.items():
        out[name] = root / f"{name}.txt"
        out[name].write_text(text)
    (root / "adapter-empty").mkdir()
    adapter = root / "adapter-r128"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 128, "peft_type": "LORA"}))
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (adapter / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    out["adapter_empty"], out["adapter_r128"] = root / "adapter-empty", adapter
    out["run_folder_no_spec"] = root / "adapter-empty"
    lexicons = root / "lexicons-cs-only"
    lexicons.mkdir()
    (lexicons / "en-cs.txt").write_text("cat kočka\n", encoding="utf-8")
    out["lexicons_cs_only"] = lexicons
    return out
