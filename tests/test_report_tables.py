"""Issue 28 items 4-10: tables that agree with each other and say what they compare (budget within a
seed, answer tokens, epochs, the cost of a reused evaluation, the family's label, the degenerate
sentence, section order in all three formats, backticks, signs of near-zero bounds)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.core.runstore import RunPaths, read_json, write_json
from reports import sections
from reports.build import build_report
from reports.fmt import num
from run_fixtures import make_run, reseal


def _member(root: Path, trainer: str, seed: int, tokens_per_step: int, answer_tokens: int, **extra) -> Path:
    return make_run(root, f"{trainer}-s{seed}", trainer=trainer, seed=seed, translation=False,
                    train_stats={"tokens_per_step": tokens_per_step, "train_tokens": answer_tokens * 80, **extra})


def test_budgets_are_compared_within_a_seed_and_answer_tokens_are_shown(tmp_path):
    """Seed 0's members took about 11,000 tokens per step, seed 1's about 13,000 (each seed's budget member
    sets its own): pooled, the median flags members that are within 6% of their own seed's (item 6). The
    answer tokens the loss counts differ by 38% within seed 0 (item 7)."""
    root = tmp_path / "runs"
    runs = [_member(root, "sdrrl", 0, 11000, 1041), _member(root, "translate_sft", 0, 11500, 1087),
            _member(root, "english_sft", 0, 10800, 768),
            _member(root, "sdrrl", 1, 13000, 750), _member(root, "translate_sft", 1, 13400, 760),
            _member(root, "english_sft", 1, 12700, 760)]
    report = build_report(runs, tmp_path / "out", n_resamples=20)
    flagged = {r["run"]: r["unequal"] for r in report["budget"]}
    assert flagged == {"sdrrl-s0": [], "translate_sft-s0": [], "english_sft-s0": ["answer_tokens_per_step"],
                       "sdrrl-s1": [], "translate_sft-s1": [], "english_sft-s1": []}
    assert [r["answer_tokens_per_step"] for r in report["budget"]] == [1041, 1087, 768, 750, 760, 760]
    note = next(n for n in report["notes"] if "english_sft-s0" in n)
    assert "answer tokens per step" in note and "seed 0's reference" in note
    md = (tmp_path / "out" / "report.md").read_text()
    budget = md[md.index("## Training budget"):md.index("## Cost per run")]
    assert "| answer tokens/step |" in budget and "768 ⚠" in budget and "answer tokens" in budget.split("\n")[2]


def test_epochs_count_the_records_taken_and_the_systems_table_leaves_the_budget_to_the_budget_table(tmp_path):
    root = tmp_path / "runs"
    config = {"lr": 2e-4, "epochs": 1, "batch_size": 4, "max_steps": 80}
    runs = [make_run(root, "sdrrl-s0", trainer="sdrrl", translation=False, trainer_config=config,
                     train_stats={"examples": 27, "examples_seen": 24, "epochs": 1.0}),
            make_run(root, "english_sft-s0", trainer="english_sft", translation=False, trainer_config=config,
                     train_stats={"examples": 53, "examples_seen": 320, "epochs": 6.0})]
    report = build_report(runs, tmp_path / "out", n_resamples=20)
    epochs = {r["run"]: r["epochs"] for r in report["budget"]}
    assert epochs == {"sdrrl-s0": pytest.approx(24 / 27, abs=1e-3), "english_sft-s0": pytest.approx(320 / 53, abs=1e-3)}
    header, rows = sections.systems_table(report)
    assert not any("epochs=" in cell or "batch_size=" in cell for row in rows for cell in row)
    assert "see Training budget" in header[-1]


def test_cost_counts_a_reused_evaluation_once(tmp_path):
    """english_sft-s1 took its base evaluation (1151.5 s of another run's work) from the shared cache: its
    evaluate wall is its own 74 s, the reuse stated beside (item 9)."""
    run = make_run(tmp_path / "runs", "english_sft-s1", trainer="english_sft", translation=False)
    paths = RunPaths(run)
    for task_dir in paths.eval_dir("base").iterdir():
        scores = read_json(task_dir / "scores.json")
        write_json(task_dir / "scores.json", {**scores, "reused_from_cache": True, "wall_s": 1151.5 / 3})
        reseal(task_dir)  # as the evaluation would have written it
    for task_dir in paths.eval_dir("adapter").iterdir():
        scores = read_json(task_dir / "scores.json")
        write_json(task_dir / "scores.json", {**scores, "wall_s": 74.0 / 3})
        reseal(task_dir)
    manifest = read_json(paths.manifest)
    manifest["stages"]["evaluate"]["wall_s"] = 1151.5 + 74.0  # what the pipeline recorded before the fix
    write_json(paths.manifest, manifest)
    report = build_report([run], tmp_path / "out", n_resamples=20)
    (cost,) = report["cost"]
    assert cost["wall_s"]["evaluate"] == pytest.approx(74.0)
    assert cost["reused"] == {"base": {"tasks": 3, "wall_s": pytest.approx(1151.5)}}
    assert report["budget"][0]["wall_s"] == pytest.approx(cost["total_wall_s"])  # the two tables agree
    md = (tmp_path / "out" / "report.md").read_text()
    assert "1m 14s" in md and "base: 3 tasks (evaluated once in 19m 12s)" in md and "20m" not in md
    # a manifest that records the reused time apart (harness/app/pipeline.py now) is taken as it is
    manifest["stages"]["evaluate"].update(wall_s=80.0, reused_wall_s=1151.5)
    write_json(paths.manifest, manifest)
    assert build_report([run], tmp_path / "out2", n_resamples=20)["cost"][0]["wall_s"]["evaluate"] == 80.0


def _three_trainers_two_seeds(tmp_path: Path) -> list[Path]:
    root = tmp_path / "runs"
    skill = {"sdrrl": 0.75, "translate_sft": 0.65, "english_sft": 0.55}
    return [make_run(root, f"{trainer}-s{seed}", trainer=trainer, seed=seed, n=30, hygiene=True, instruct=True,
                     adapter_acc=acc + 0.05 * seed, adapter_quality=acc + 0.05 * seed)
            for seed in (0, 1) for trainer, acc in skill.items()]


def test_family_labels_name_the_reference_not_one_seed_and_degenerate_is_a_comparison(tmp_path):
    report = build_report(_three_trainers_two_seeds(tmp_path), tmp_path / "out", n_resamples=50)
    families = report["settings"]["multiple_comparisons"]["family_sizes"]
    assert "translate_sft · primary" in families and not any("-s0" in k for k in families)  # item 5
    instruct = next(e for e in report["headline"] if e["family"] == "instruct" and e["system_label"] == "sdrrl")
    degenerate = next(t for t in report["tables"] if t["family"] == "instruct" and t["metric"] == "degenerate")
    base = degenerate["macro"]["cells"]["base"]["score"]
    assert instruct["degenerate"]["base"] == base and instruct["degenerate"]["languages"] == ["cs", "ja"]
    assert f"in cs, ja, {num(instruct['degenerate']['share'], 100.0)}% of its outputs echo" in instruct["sentence"]
    assert f"(the base model's: {num(base, 100.0)}%)" in instruct["sentence"]  # item 4


def _section_titles_md(md: str) -> list[str]:
    return [line[3:] for line in md.splitlines() if line.startswith("## ")]


def test_json_markdown_and_html_hold_the_same_sections_in_the_same_order(tmp_path):
    runs = _three_trainers_two_seeds(tmp_path)
    for run in runs:  # the held-out loss the pipeline writes for a trained run
        write_json(RunPaths(run).heldout_scores, {"langs": {"cs": {"n_records": 5, "tokens": 120, "base_loss": 2.5,
                                                                   "adapter_loss": 2.1}}})
    build_report(runs, tmp_path / "out", n_resamples=50)
    out = tmp_path / "out"
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    data = json.loads((out / "report.json").read_text())
    md_titles = _section_titles_md(md)
    html_titles = re.findall(r'<h2 id="[^"]+">([^<]+)</h2>', page)
    assert "Held-out training loss" in md_titles and md_titles == html_titles
    assert data["sections"] == md_titles  # report.json names its sections in the renderings' order
    shown_keys = [sections.JSON_KEYS[t] for t in md_titles if t in sections.JSON_KEYS]
    assert [k for k in data if k in shown_keys] == shown_keys  # a section left out when empty keeps its key
    assert data["heldout"][0]["run"] == "sdrrl-s0" and data["heldout"][0]["base_loss"] == 2.5
    assert "`" not in re.sub(r"<code>.*?</code>", "", page)  # markup, not literal backticks (item 10)
    assert "<code>--min-effect</code>" in page


def test_near_zero_bounds_keep_their_sign():
    assert num(-0.00015, 100.0, signed=True) == "−0.01" and num(-0.00009, 100.0, signed=True) == "−0.01"
    assert num(-0.0004, 100.0, signed=True) == "−0.04" and num(0.0, 100.0, signed=True) == "0.0"
    assert num(0.123, 100.0) == "12.3" and num(1e-12, 100.0, signed=True) == "0.0"


def test_readme_documents_the_evaluation_cache_and_the_runs_folder(monkeypatch, tmp_path):
    """Item 12: a user who wants a clean comparison finds both switches in the README, as the code reads them."""
    from harness.app.cli import build_parser
    from harness.evaluation.evalcache import shared_cache_dir

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    monkeypatch.setenv("SDRRL_EVAL_CACHE", str(tmp_path / "cache"))
    assert shared_cache_dir() == tmp_path / "cache"  # the variable the README names is the one the code reads
    monkeypatch.delenv("SDRRL_EVAL_CACHE")
    monkeypatch.setenv("SDRRL_HOME", str(tmp_path / "home"))
    assert shared_cache_dir() == tmp_path / "home" / "evals"  # the default the README states
    run_help = next(a for a in build_parser()._subparsers._group_actions[0].choices["run"]._actions
                    if "--runs-dir" in a.option_strings)
    assert run_help.default == "runs"
    clean = readme[readme.index("**A clean comparison**"):]
    clean = clean[:clean.index("\n- ") if "\n- " in clean else len(clean)]
    assert "`--runs-dir` (default `./runs`)" in clean and "`SDRRL_EVAL_CACHE`" in clean
    assert "`$SDRRL_HOME/evals`" in clean and "SDRRL_EVAL_CACHE=$(mktemp -d) harness run" in clean
