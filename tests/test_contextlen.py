"""--max-model-len shorter than a task's items is said per task (issue 25 item 4): a 78-token
Belebele context under --max-model-len 64 was cut from the left without a word."""

from __future__ import annotations

import pytest

from harness.evaluation.contextlen import overlong_items
from reports.build import build_report
from run_fixtures import make_run, reseal


def _words(text: str) -> int:
    return len(text.split())


def _choice(doc_id: int, context_words: int) -> dict:
    context = " ".join(["w"] * context_words)
    return {"doc_id": doc_id, "arguments": [[context, " a b"], [context, " c"]]}


def _generation(doc_id: int, prompt_words: int, max_gen_toks: int | None) -> dict:
    kwargs = {"until": ["\n"], **({"max_gen_toks": max_gen_toks} if max_gen_toks else {})}
    return {"doc_id": doc_id, "arguments": [[" ".join(["w"] * prompt_words), kwargs]]}


def test_items_longer_than_the_window_are_counted():
    samples = [_choice(0, 60), _choice(1, 64), _choice(2, 78)]  # + 2 continuation words each (+ 1 for the other choice)
    assert overlong_items(samples, _words, 64) == 2  # 66 and 80 tokens: past 64 fed + 1 predicted
    assert overlong_items(samples, _words, 65) == 1  # 64 + 2 fits: the last token is predicted, not fed
    assert overlong_items(samples, _words, 60) == 3  # 60 + 2 > 61: one choice over is enough
    assert overlong_items(samples, _words, 128) == 0
    assert overlong_items(samples, _words, None) == 0  # the model's own window: nothing cut by us


def test_a_prompt_needs_room_for_what_it_may_generate():
    samples = [_generation(0, 40, 16), _generation(1, 40, None)]
    assert overlong_items(samples, _words, 64, max_gen_toks=8) == 0  # 40 + 16 and 40 + 8 fit
    assert overlong_items(samples, _words, 64, max_gen_toks=32) == 1  # 40 + 32 > 64; the other asks 16 itself
    assert overlong_items(samples, _words, 64) == 1  # lm-eval's default of 256 for the one without a limit


def test_the_report_says_which_tasks_were_cut(tmp_path):
    run = make_run(tmp_path / "runs", "short-window", langs=("en", "cs"), n=4)
    task = run / "eval" / "adapter" / "belebele_cs"
    import json
    scores = json.loads((task / "scores.json").read_text())
    (task / "scores.json").write_text(json.dumps({**scores, "overlong_items": 3}))
    reseal(task)
    notes = build_report([run], tmp_path / "out", n_resamples=20)["notes"]
    assert any("run short-window, adapter: belebele_cs: 3 of 4 items are longer than the context window" in n for n in notes)


@pytest.mark.slow
def test_a_short_window_is_said_by_a_real_evaluation(tiny_llama, tmp_path, eval_cache, capsys):
    """HF on the tiny model, two Belebele items (passages of 60+ tokens) under a 32-token window."""
    from harness.engines import EngineSettings
    from harness.evaluation.evaluate import EvalRequest, evaluate
    from harness.evaluation.registry import get_suite

    suite = get_suite("smoke", "cs")
    (task,) = [t for t in suite.tasks if t.family == "belebele"]
    req = EvalRequest(model_dir=tiny_llama, tasks=[task], out_dir=tmp_path / "short", engine="hf", data_dir=suite.data_dir,
                      limit=2, settings=EngineSettings(max_model_len=32))
    assert evaluate(req)[task.name]["overlong_items"] == 2
    said = capsys.readouterr()
    assert f"{task.name}: 2 of 2 items are longer than the context window of 32 tokens" in said.out + said.err
    wide = EvalRequest(model_dir=tiny_llama, tasks=[task], out_dir=tmp_path / "wide", engine="hf", data_dir=suite.data_dir,
                       limit=2, settings=EngineSettings(max_model_len=2048))
    assert evaluate(wide)[task.name]["overlong_items"] == 0
