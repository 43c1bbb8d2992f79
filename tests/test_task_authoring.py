"""Task authoring without surprises (issue 27 item 4): each surprise a new contributor met has a test here
that fails on the behaviour it replaced.

- a pair-looking name (`wordtr_en-cs`) was read as language en, family `wordtr_en-cs`: now refused with
  one line naming the metadata to add; with metadata.direction it gets its language, family and direction;
- a code the naming rule cannot read (`_de`, `_deu_Latn`) was read as English: now refused;
- a relative `data_files` path failed with an internal FileNotFoundError after evaluation began: now read
  from the YAML's folder, and a missing file is one line before any model loads;
- `--max-gen-toks` replaced a task's own limit: now it caps it (the smaller wins);
- a plain task's BLEU had no signature in the report: its lm-eval sacreBLEU metrics now carry theirs.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.app.cli import main
from harness.core.errors import HarnessError
from harness.evaluation import evaluate, genmetrics, taskdata
from harness.evaluation.registry import all_tasks, plain_task_info

GEN = "output_type: generate_until\ndoc_to_text: \"{{q}}\"\ndoc_to_target: \"{{a}}\"\n"


def _task_yaml(folder: Path, name: str, body: str = "", data: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    files = f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\ntest_split: test\n" if data else ""
    path = folder / f"{name}.yaml"
    path.write_text(f"task: {name}\n{files}{GEN}{body}", encoding="utf-8")
    return path


def test_a_pair_name_is_refused_until_metadata_names_its_direction(tmp_path):
    with pytest.raises(HarnessError) as refused:
        plain_task_info({"task": "wordtr_en-cs"}, tmp_path / "w.yaml")
    line = str(refused.value)
    assert "\n" not in line and "'en-cs'" in line and "direction: en-cs" in line and "family: wordtr" in line
    info = plain_task_info({"task": "wordtr_en-cs", "metadata": {"direction": "en-cs"}}, tmp_path / "w.yaml")
    assert (info.lang, info.family, info.metadata["direction"]) == ("cs", "wordtr", "en-cs")
    back = plain_task_info({"task": "wordtr_cs-en", "metadata": {"direction": "ces_Latn-eng_Latn"}}, tmp_path / "w.yaml")
    assert (back.lang, back.family, back.metadata["direction"]) == ("cs", "wordtr", "cs-en")
    with pytest.raises(HarnessError, match=r"metadata.direction .*'en-xx'.*<source>-<target>"):
        plain_task_info({"task": "wordtr_en-xx", "metadata": {"direction": "en-xx"}}, tmp_path / "w.yaml")
    with pytest.raises(HarnessError, match="looks like a language pair"):  # lang alone leaves the direction unread
        plain_task_info({"task": "wordtr_en-cs", "metadata": {"lang": "cs"}}, tmp_path / "w.yaml")


def test_a_code_the_rule_cannot_read_is_refused_and_the_rule_still_reads_the_rest(tmp_path):
    for name, suffix in (("paws_de", "'de'"), ("belebele_deu_Latn", "'deu_Latn'")):
        with pytest.raises(HarnessError) as refused:
            plain_task_info({"task": name}, tmp_path / "t.yaml")
        assert suffix in str(refused.value) and "metadata: {lang:" in str(refused.value)
    assert plain_task_info({"task": "paws_de", "metadata": {"lang": "en", "family": "paws"}}, tmp_path / "t.yaml").lang == "en"
    read = {n: plain_task_info({"task": n}, tmp_path / "t.yaml") for n in ("copa_cs", "x_ces_Latn", "arc_easy", "truthfulqa_mc1")}
    assert {n: (t.lang, t.family) for n, t in read.items()} == {
        "copa_cs": ("cs", "copa"), "x_ces_Latn": ("cs", "x"), "arc_easy": ("en", "arc_easy"), "truthfulqa_mc1": ("en", "truthfulqa_mc1")}


def test_a_pair_named_task_in_an_include_path_stops_the_cli_in_one_line(tmp_path, capsys):
    inc = tmp_path / "inc"
    _task_yaml(inc, "wordtr_en-cs")
    assert main(["eval", "--include-path", str(inc), "--tasks", "wordtr_en-cs", "--model", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wordtr_en-cs" in err and "metadata: {direction: en-cs" in err


def test_relative_data_files_resolve_against_the_yaml_folder(tmp_path, monkeypatch):
    inc = tmp_path / "inc"
    (inc / "data").mkdir(parents=True)
    (inc / "data" / "gen.jsonl").write_text('{"q": "1+1=", "a": "2"}\n', encoding="utf-8")
    _task_yaml(inc, "reldata_arith", data="data/gen.jsonl")
    monkeypatch.chdir(tmp_path)  # a working directory where data/gen.jsonl is not
    task = all_tasks(include_paths=[inc])["reldata_arith"]
    assert taskdata.data_files(task) == [inc / "data" / "gen.jsonl"]
    taskdata.check_data_files(task)
    spec = evaluate._task_spec(task)  # what lm-eval is handed: the YAML with the resolved path
    assert spec["dataset_kwargs"]["data_files"] == {"test": str(inc / "data" / "gen.jsonl")} and spec["task"] == "reldata_arith"


def test_a_missing_relative_data_file_is_one_line_before_any_model_loads(tmp_path, capsys):
    inc = tmp_path / "inc"
    _task_yaml(inc, "reldata_missing", data="nowhere.jsonl")
    assert main(["eval", "--include-path", str(inc), "--tasks", "reldata_missing", "--model", "no-such-model-folder"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reldata_missing" in err and str(inc / "nowhere.jsonl") in err and "does not exist" in err


def test_max_gen_toks_caps_a_tasks_own_limit(tmp_path):
    inc = tmp_path / "inc"
    _task_yaml(inc, "cap_eight", "generation_kwargs:\n  until: [\"\\n\"]\n  max_gen_toks: 8\n")
    _task_yaml(inc, "cap_forty", "generation_kwargs:\n  max_gen_toks: 40\n")
    _task_yaml(inc, "cap_none")
    tasks = all_tasks(include_paths=[inc])
    eight, forty, none = tasks["cap_eight"], tasks["cap_forty"], tasks["cap_none"]
    assert [genmetrics.task_max_gen_toks(t, 16) for t in (eight, forty, none)] == [8, 16, 16]
    assert [genmetrics.task_max_gen_toks(t, None) for t in (eight, forty, none)] == [8, 40, None]
    # lm-eval's gen_kwargs apply to a whole call: tasks are grouped by their capped budget
    calls = evaluate._calls(SimpleNamespace(tokenizer=None), [(eight, "k1"), (forty, "k2"), (none, "k3")], 16)
    assert sorted((c.max_gen_toks, [t.name for t, _ in c.tasks]) for c in calls) == [(8, ["cap_eight"]), (16, ["cap_forty", "cap_none"])]
    uncapped = evaluate._calls(SimpleNamespace(tokenizer=None), [(eight, "k1"), (forty, "k2")], None)
    assert [c.max_gen_toks for c in uncapped] == [None]  # no flag: each task's own generation_kwargs


def test_a_plain_tasks_sacrebleu_metrics_carry_their_signatures(tmp_path):
    inc = tmp_path / "inc"
    _task_yaml(inc, "plainmt_arith", "metric_list:\n  - metric: bleu\n  - metric: chrf\n  - metric: exact_match\n")
    signatures = evaluate._signatures(all_tasks(include_paths=[inc])["plainmt_arith"])
    assert set(signatures) == {"bleu", "chrf"}
    assert "tok:13a" in signatures["bleu"] and "nw:0" in signatures["chrf"]  # lm-eval scores at sacreBLEU's defaults


@pytest.mark.slow
def test_a_task_with_max_gen_toks_8_generates_at_most_8_tokens_under_a_cap_of_16(tiny_llama, tmp_path, eval_cache, monkeypatch):
    from lm_eval.models.huggingface import HFLM

    generated: list[int] = []  # tokens each generate call produced, counted on the model's own output
    original = HFLM._model_generate

    def counting(self, context, max_length, stop, **kwargs):
        out = original(self, context, max_length, stop, **kwargs)
        generated.append(out.shape[1] - context.shape[1])
        return out

    monkeypatch.setattr(HFLM, "_model_generate", counting)
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "gen.jsonl").write_text('{"q": "1+1=", "a": "2"}\n{"q": "2+2=", "a": "4"}\n', encoding="utf-8")
    _task_yaml(inc, "capped_arith", "generation_kwargs:\n  until: [\"<never>\"]\n  do_sample: false\n  max_gen_toks: 8\n"
               "metric_list:\n  - metric: exact_match\n", data="gen.jsonl")
    assert main(["eval", "--include-path", str(inc), "--tasks", "capped_arith", "--engine", "hf", "--model", str(tiny_llama),
                 "--max-gen-toks", "16", "--out", str(tmp_path / "out")]) == 0
    # the random model does not stop early: it generated 16 when the flag replaced the task's own 8
    assert generated and max(generated) == 8, generated
