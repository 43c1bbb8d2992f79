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

    def flores_rows(d: Path, lang: str, change) -> None:
        path = d / "flores200" / lang / "devtest.jsonl"
        rows = _lines(path)
        change(rows)
        _write_lines(path, rows)

    def latin1(d: Path) -> None:  # saved by an editor set to Latin-1 (Czech letters it lacks become "?")
        path = d / "belebele" / "ces_Latn" / "test.jsonl"
        path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1", "replace"))

    def mixed_types(rows: list) -> None:
        rows[0]["question_number"], rows[1]["question_number"] = 1, "two"

    def raw_belebele(d: Path, change) -> None:
        path = d / "belebele" / "ces_Latn" / "test.jsonl"
        path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")

    def replace_file(d: Path, make) -> None:
        path = d / "belebele" / "ces_Latn" / "test.jsonl"
        path.unlink()
        make(path)

    root.mkdir(parents=True, exist_ok=True)
    (root / "a-file").write_text("not a folder")
    return {
        "numeric_text": variant("numeric_text", lambda d: belebele_rows(d, lambda rows: rows[1].update(question=5))),
        "list_question": variant("list_question", lambda d: belebele_rows(d, lambda rows: rows[1].update(question=["a", "b"]))),
        "key_twice": variant("key_twice", lambda d: raw_belebele(d, lambda text: '{"question": "first?", ' + text[1:])),
        "pretty_array": variant("pretty_array", lambda d: raw_belebele(d, lambda text: json.dumps(
            [json.loads(line) for line in text.splitlines() if line.strip()], indent=2, ensure_ascii=False))),
        "folder_as_file": variant("folder_as_file", lambda d: replace_file(d, lambda p: p.mkdir())),
        "symlink_loop": variant("symlink_loop", lambda d: replace_file(d, lambda p: p.symlink_to(p.name))),
        "flores_string_ids": variant("flores_string_ids", lambda d: flores_rows(
            d, "jpn_Jpan", lambda rows: [r.update(id=str(r["id"])) for r in rows])),
        "null_question": variant("null_question", lambda d: belebele_rows(d, lambda rows: rows[2].update(question=None))),
        "null_passage": variant("null_passage", lambda d: belebele_rows(d, lambda rows: rows[0].update(flores_passage=None))),
        "null_instruct": variant("null_instruct", lambda d: _write_lines(
            d / "instruct" / "ces_Latn" / "test.jsonl",
            [{**r, "instruction": None if i == 1 else r["instruction"]} for i, r in enumerate(_lines(d / "instruct" / "ces_Latn" / "test.jsonl"))])),
        "flores_empty_text": variant("flores_empty_text", lambda d: flores_rows(d, "eng_Latn", lambda rows: rows[3].update(text="  "))),
        "flores_dup_id_source": variant("flores_dup_id_source", lambda d: flores_rows(d, "ces_Latn", lambda rows: rows.append(dict(rows[0])))),
        "flores_dup_id_target": variant("flores_dup_id_target", lambda d: flores_rows(
            d, "jpn_Jpan", lambda rows: rows.append({**rows[1], "text": "別の文。"}))),
        "latin1": variant("latin1", latin1),
        "mixed_types": variant("mixed_types", lambda d: belebele_rows(d, mixed_types)),
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


def _alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" inside one setting's value: 9 lines, 9**9 strings once the aliases expand."""
    lines = ["target_modules:", '  - &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


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
        "translations_empty": "\n\n",
        "dup_key_yaml": "epochs: 1\nlora_rank: 8\nepochs: 2\n",
        "underscore_yaml": "epochs: 1_000\n",
        "bomb_yaml": _alias_bomb(),
        "small_alias_yaml": "lora_rank: &r 8\nsdrrl.lora_rank: *r\n",
        "octal_yaml": "epochs: 010\n",
        "int_key_yaml": "1: 2\n",
        "max_steps_list_yaml": "max_steps: [1]\n",
        "max_steps_null_yaml": "max_steps: null\n",
    }
    out = {}
    for name, text in files.items():
        out[name] = root / f"{name}.txt"
        out[name].write_text(text)
    out["translations_latin1"] = root / "translations_latin1.jsonl"
    out["translations_latin1"].write_bytes(
        '{"src_lang": "en", "tgt_lang": "cs", "source": "summer", "translation": "été"}\n'.encode("latin-1"))
    instructions = [{"instruction": "Name a colour.", "input": "", "output": "Blue."}, {"instruction": None, "input": "", "output": "x"}]
    out["instructions_null"] = root / "instructions_null.json"
    out["instructions_null"].write_text(json.dumps(instructions))
    out["instructions_latin1"] = root / "instructions_latin1.jsonl"
    out["instructions_latin1"].write_bytes('{"instruction": "Décris l\'été.", "input": "", "output": ""}\n'.encode("latin-1"))
    (root / "adapter-empty").mkdir()
    adapter = root / "adapter-r128"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 128, "peft_type": "LORA"}))
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (adapter / "adapter_model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0\0\0\0")
    out["adapter_empty"], out["adapter_r128"] = root / "adapter-empty", adapter
    latin1_tasks = root / "tasks-latin1"
    latin1_tasks.mkdir()
    (latin1_tasks / "mytask.yaml").write_bytes("task: mytask\n# été\n".encode("latin-1"))
    out["tasks_latin1"] = latin1_tasks
    out["run_folder_no_spec"] = root / "adapter-empty"
    lexicons = root / "lexicons-cs-only"
    lexicons.mkdir()
    (lexicons / "en-cs.txt").write_text("cat kočka\n", encoding="utf-8")
    out["lexicons_cs_only"] = lexicons
    latin1 = root / "lexicons-latin1"
    latin1.mkdir()
    (latin1 / "en-cs.txt").write_bytes("cat kočka\nsummer léto\n".encode("utf-8").replace("é".encode(), b"\xe9"))
    out["lexicons_latin1"] = latin1
    return out


def baseline_runs(root: Path) -> dict[str, Path]:
    """A smoke run of one model, and a baseline recorded from a paper15 run of another."""
    try:
        from run_fixtures import make_run
    except ImportError:
        from tests.run_fixtures import make_run
    from reports.check import record_baseline

    smoke = make_run(root, "smoke-run", langs=("en", "cs"), n=4)
    other = make_run(root, "paper15-run", langs=("en", "cs"), n=4, suite="paper15", model="other-model")
    record_baseline(other, root / "paper15.json")
    record_baseline(smoke, root / "smoke.json")
    tampered = make_run(root, "tampered-run", langs=("en", "cs"), n=4)
    _edit_json(tampered / "eval" / "adapter" / "belebele_cs" / "scores.json", lambda s: s["metrics"].update(acc=1.0))
    baselines = {"smoke": smoke, "paper15_baseline": root / "paper15.json", "smoke_baseline": root / "smoke.json", "tampered": tampered}
    good = json.loads((root / "smoke.json").read_text())
    acc_cell = "adapter/belebele_cs/acc"
    edits = {  # a baseline a tool or a hand wrote: each would make `check` pass (or fail) everything
        "nan_tolerance": lambda b: b["tolerance"].update(acc=float("nan")),
        "inf_tolerance": lambda b: b["tolerance"].update(acc=float("inf")),
        "negative_tolerance": lambda b: b["tolerance"].update(acc=-0.1),
        "text_tolerance": lambda b: b["tolerance"].update(acc="0.1"),
        "nan_value": lambda b: b["cells"][acc_cell].update(value=float("nan")),
        "inf_value": lambda b: b["cells"][acc_cell].update(value=float("-inf")),
        "text_n_samples": lambda b: b["cells"][acc_cell].update(n_samples="four"),
        "text_min": lambda b: b["cells"][acc_cell].update(min="half"),
        "text_multiple": lambda b: b["tolerance_rule"].update(multiple="three"),
        "no_noise": lambda b: b.pop("noise"),
    }
    for name, edit in edits.items():
        changed = json.loads(json.dumps(good))
        edit(changed)
        baselines[f"baseline_{name}"] = root / f"{name}.json"
        baselines[f"baseline_{name}"].write_text(json.dumps(changed))
    return baselines


def _write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    """A safetensors file of zero-filled F32 tensors: only its header matters to the checks."""
    header, offset = {}, 0
    for name, shape in shapes.items():
        size = 4
        for d in shape:
            size *= d
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + b"\0" * offset)


def _lora_shapes(model_dir: Path, modules: tuple[str, ...] = ("q_proj", "v_proj"), rank: int = 4) -> dict[str, list[int]]:
    """LoRA A/B shapes for `modules` of every layer of the model, read from its weights' header."""
    from harness.core.safetensors_header import read_header

    shapes = {}
    for name, tensor in read_header(model_dir / "model.safetensors").items():
        stem = name.removesuffix(".weight")
        if stem.rsplit(".", 1)[-1] in modules:
            out_f, in_f = tensor["shape"]
            shapes[f"base_model.model.{stem}.lora_A.weight"] = [rank, in_f]
            shapes[f"base_model.model.{stem}.lora_B.weight"] = [out_f, rank]
    return shapes


def broken_adapters(model_dir: Path, root: Path) -> dict[str, Path]:
    """A LoRA adapter that fits `model_dir`, and ones made for another base model, architecture or size."""
    def adapter(name: str, shapes: dict[str, list[int]], **config) -> Path:
        target = root / name
        target.mkdir(parents=True)
        _write_safetensors(target / "adapter_model.safetensors", shapes)
        base = {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"],
                "base_model_name_or_path": str(model_dir)}
        (target / "adapter_config.json").write_text(json.dumps({**base, **config}))
        return target

    fits = _lora_shapes(model_dir)
    wider = {k: ([v[0], v[1] * 2] if ".lora_A." in k else v) for k, v in fits.items()}
    gpt2 = {"base_model.model.transformer.h.0.attn.c_attn.lora_A.weight": [4, 32],
            "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight": [96, 4]}
    return {
        "fits": adapter("fits", fits),
        "other_base": adapter("other-base", fits, base_model_name_or_path="Qwen/Qwen2.5-0.5B-Instruct"),
        "other_arch": adapter("other-arch", gpt2, target_modules=["c_attn"], base_model_name_or_path=""),
        "other_size": adapter("other-size", wider, base_model_name_or_path="/gone/since/model"),
        "gone_base": adapter("gone-base", fits, base_model_name_or_path="/gone/since/model"),
    }
