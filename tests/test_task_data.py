"""A task is data: a plain lm-eval YAML from an --include-path folder runs through `harness eval`,
its cache key is its own files, and the generator leaves hand-written YAML alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.core.errors import HarnessError
from harness.evaluation import evalcache
from harness.evaluation.registry import all_tasks, plain_task_info, resolve_tasks, tasks_dir
from tasks import generate

MC_ROWS = [{"premise": "The man fell.", "c1": "He slipped.", "c2": "He sang.", "label": 0},
           {"premise": "The sky darkened.", "c1": "It was noon.", "c2": "A storm came.", "label": 1},
           {"premise": "She was hungry.", "c1": "She ate.", "c2": "She slept.", "label": 0}]
GEN_ROWS = [{"q": "1+1=", "a": "2"}, {"q": "2+2=", "a": "4"}, {"q": "3+3=", "a": "6"}]


def _include_dir(root: Path) -> Path:
    """One multiple-choice and one generate_until task, each one YAML over a local JSON file."""
    root.mkdir(parents=True)
    for name, rows in (("mc.jsonl", MC_ROWS), ("gen.jsonl", GEN_ROWS)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "userdir_copa_cs.yaml").write_text(
        f"task: userdir_copa_cs\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {root / 'mc.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: \"{{premise}} Because\"\n"
        "doc_to_choice: \"{{[c1, c2]}}\"\ndoc_to_target: label\nmetric_list:\n  - metric: acc\n", encoding="utf-8")
    (root / "userdir_arith.yaml").write_text(
        "task: userdir_arith\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: gen.jsonl\n"  # relative: from the YAML's folder
        "test_split: test\noutput_type: generate_until\ndoc_to_text: \"{{q}}\"\ndoc_to_target: \"{{a}}\"\n"
        "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 4\nmetric_list:\n  - metric: exact_match\n", encoding="utf-8")
    return root


def test_plain_yaml_is_read_as_lm_eval_reads_it(tmp_path):
    tasks = all_tasks(include_paths=[_include_dir(tmp_path / "inc")])
    mc, gen = tasks["userdir_copa_cs"], tasks["userdir_arith"]
    assert (mc.family, mc.lang, mc.kind, mc.primary_metric, mc.source) == ("userdir_copa", "cs", "comprehension", "acc", "include")
    assert (gen.family, gen.lang, gen.kind, gen.primary_metric) == ("userdir_arith", "en", "generation", "exact_match")
    flores_named = plain_task_info({"task": "x_ces_Latn", "output_type": "multiple_choice"}, tmp_path / "x.yaml")
    assert (flores_named.lang, flores_named.family, flores_named.primary_metric) == ("cs", "x", "acc")
    with pytest.raises(HarnessError, match=r"output_type .*'loglikelihood_rolling'.*valid: .*generate_until"):
        plain_task_info({"task": "p", "output_type": "loglikelihood_rolling"}, tmp_path / "p.yaml")
    with pytest.raises(HarnessError, match=r"unknown task 'nosuch_task'.*valid: .*userdir_arith"):
        resolve_tasks(["nosuch_task"], [tmp_path / "inc"])


def test_a_one_yaml_task_runs_from_an_include_path_and_is_cached_by_content(tiny_llama, tmp_path, eval_cache):
    inc = _include_dir(tmp_path / "inc")
    out = tmp_path / "out"

    def run() -> dict[str, dict]:
        assert main(["eval", "--include-path", str(inc), "--tasks", "userdir_copa_cs,userdir_arith", "--engine", "hf",
                     "--model", str(tiny_llama), "--out", str(out)]) == 0
        return {n: json.loads((out / "eval" / "base" / n / "scores.json").read_text()) for n in ("userdir_copa_cs", "userdir_arith")}

    first = run()
    assert first["userdir_copa_cs"]["n_samples"] == 3 and 0.0 <= first["userdir_copa_cs"]["metrics"]["acc"] <= 1.0
    assert first["userdir_arith"]["kind"] == "generation" and "exact_match" in first["userdir_arith"]["metrics"]
    assert not any(s.get("reused_from_cache") for s in first.values())
    shutil.rmtree(out)
    again = run()
    assert all(s.get("reused_from_cache") for s in again.values())
    assert {n: s["metrics"] for n, s in again.items()} == {n: s["metrics"] for n, s in first.items()}
    yaml_path = inc / "userdir_copa_cs.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("Because", "So"), encoding="utf-8")
    shutil.rmtree(out)
    edited = run()
    assert not edited["userdir_copa_cs"].get("reused_from_cache") and edited["userdir_arith"].get("reused_from_cache")
    assert edited["userdir_copa_cs"]["eval_key"] != first["userdir_copa_cs"]["eval_key"]


def test_include_path_must_be_a_folder(tmp_path, capsys):
    assert main(["eval", "--include-path", str(tmp_path / "missing"), "--tasks", "x", "--model", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err and "not a folder" in err


def _copied_repo(tmp_path: Path, monkeypatch) -> Path:
    """tasks/ copied under a fake repository root the cache key resolves shared modules from."""
    repo = tmp_path / "repo"
    shutil.copytree(tasks_dir(), repo / "tasks", ignore=shutil.ignore_patterns("fixtures", "__pycache__"))
    monkeypatch.setattr(evalcache, "REPO_ROOT", repo)
    return repo / "tasks"


def test_cache_key_hashes_the_family_files_not_the_generator(tmp_path, monkeypatch):
    root = _copied_repo(tmp_path, monkeypatch)
    for family in generate.FAMILIES:
        task = next(t for t in all_tasks(root).values() if t.family == family.name)
        key = evalcache._task_code_hash(task)
        assert root / "generate.py" not in evalcache.task_files(task)
        (root / "generate.py").write_text((root / "generate.py").read_text() + "\n# an edit\n", encoding="utf-8")
        assert evalcache._task_code_hash(task) == key
        utils = root / family.folder / "utils.py"
        utils.write_text(utils.read_text() + "\n# an edit\n", encoding="utf-8")
        assert evalcache._task_code_hash(task) != key
        key = evalcache._task_code_hash(task)
        (root / "dataio.py").write_text((root / "dataio.py").read_text() + "\n# an edit\n", encoding="utf-8")
        assert evalcache._task_code_hash(task) != key


def test_generator_leaves_hand_written_yaml_alone(tmp_path, capsys):
    root = tmp_path / "tasks"
    shutil.copytree(tasks_dir(), root, ignore=shutil.ignore_patterns("fixtures", "__pycache__"))
    family = generate.FAMILIES[0]
    first = next(p for p in sorted((root / family.folder).glob("*.yaml")))
    hand = root / family.folder / "hand_written.yaml"
    text = first.read_text(encoding="utf-8").replace(generate.HEADER, "")
    name = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("task:"))
    hand.write_text(text.replace(f"task: {name}", f"task: {name}_hand"), encoding="utf-8")
    plain = root / "plain.yaml"
    plain.write_text("task: plain_task\noutput_type: multiple_choice\n", encoding="utf-8")
    generate.write(root)  # the suites holding the family's language now list the hand-written task
    assert generate.main(["--check", "--root", str(root)]) == 0
    assert hand.is_file() and plain.is_file()
    groups = "".join(p.read_text(encoding="utf-8") for p in root.glob("suite_*.yaml"))
    assert f"{name}_hand" in groups
    plain.write_text("task: plain_task\nmetadata: {kind: comprehension}\n", encoding="utf-8")  # malformed
    assert generate.main(["--check", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plain.yaml" in err and "metadata lacks" in err
