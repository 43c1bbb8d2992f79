"""A comparison as a plan of jobs, and the launchers that start them: sequential, --parallel, Slurm.

The slow test runs one tiny comparison (2 trainers, 1 seed: the base job, the budget member and the member
that waits for its budget) three ways: in this process, as
`--parallel 2` local processes, and as Slurm jobs on a real single-node cluster (tests/slurm_cluster.py)
with one member preempted mid-training; every member's scores and training losses must agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.app.cli import main
from harness.app.compare import parse_members, plan_comparison
from harness.app.launchers import LaunchOptions, launch_options
from harness.app.plan import BASE_JOB, budgeted_spec, build_plan, read_plan, write_plan
from harness.app.spec import RunSpec
from harness.core.errors import HarnessError
from harness.core.runstore import Manifest, read_json, write_json

from slurm_cluster import SlurmCluster, missing_programs


def _comparison(layers, members="sdrrl,translate_sft,english_sft", seeds=(0, 1), steps=None):
    def make_spec(member, settings, seed):
        return RunSpec(f"{member.label}-s{seed}", member.trainer, "tiny", "smoke", ("cs",), settings, seed=seed)

    return plan_comparison("cmp", parse_members(members), list(seeds), list(layers), make_spec, steps=steps)


def test_the_plan_puts_the_base_evaluation_and_each_seeds_budget_member_first(tmp_path):
    plan = build_plan(_comparison([{"batch_size": 4}]), None, False, None)
    assert [j.id for j in plan.jobs] == [BASE_JOB, "sdrrl-s0", "translate_sft-s0", "english_sft-s0",
                                         "sdrrl-s1", "translate_sft-s1", "english_sft-s1"]
    jobs = {j.id: j for j in plan.jobs}
    assert jobs["sdrrl-s1"].after == (BASE_JOB,) and jobs["sdrrl-s1"].budget_from is None
    assert jobs["english_sft-s1"].after == (BASE_JOB, "sdrrl-s1") and jobs["english_sft-s1"].budget_from == "sdrrl-s1"
    assert jobs["english_sft-s1"].take_steps and jobs["english_sft-s1"].take_tokens
    assert [[j.id for j in w] for w in plan.waves()] == [[BASE_JOB], ["sdrrl-s0", "sdrrl-s1"],
                                                        ["translate_sft-s0", "english_sft-s0", "translate_sft-s1", "english_sft-s1"]]
    write_plan(plan, tmp_path)
    assert read_plan(tmp_path) == plan  # a job process runs from the file alone

    # Nothing measured, nothing to wait for: --steps and a plain tokens_per_step free every member
    free = build_plan(_comparison([{"tokens_per_step": 300}], steps=5), None, False, None)
    assert all(j.after == (BASE_JOB,) and j.budget_from is None for j in free.members)
    assert {j.spec["trainer_config"]["max_steps"] for j in free.members} == {5}
    # set for one trainer alone: it takes only what is not its own
    own = build_plan(_comparison([{"batch_size": 4, "english_sft.max_steps": 3}]), None, False, None)
    english = own.job("english_sft-s0")
    assert english.budget_from == "sdrrl-s0" and not english.take_steps and english.take_tokens


def test_a_member_takes_the_budget_its_budget_member_measured(tmp_path):
    plan = build_plan(_comparison([{"batch_size": 4}]), None, False, None)
    job = plan.job("translate_sft-s1")
    with pytest.raises(HarnessError, match="takes its budget from sdrrl-s1, which has not finished training"):
        budgeted_spec(tmp_path, job)
    Manifest(tmp_path / "sdrrl-s1").record("train", "h", 1.0, steps=7, tokens_per_step=412.6)
    config = budgeted_spec(tmp_path, job).trainer_config
    assert config["max_steps"] == 7 and config["tokens_per_step"] == 413
    with pytest.raises(HarnessError, match="needs job base finished first"):
        write_plan(plan, tmp_path)
        from harness.app.plan import run_job

        run_job(tmp_path, "translate_sft-s1")


def test_launcher_settings_are_checked_before_any_work():
    assert launch_options(None, {}) == LaunchOptions()
    opts = launch_options({"launcher": "slurm", "partition": "gpu", "time_min": 90}, {"time_min": 30, "detach": True})
    assert (opts.launcher, opts.partition, opts.time_min, opts.detach) == ("slurm", "gpu", 30, True)  # a flag wins
    bad = [
        (None, {"parallel": 0}, r"bad value for parallel: 0; expected an integer >= 1"),
        ({"partiton": "gpu"}, {}, r"unknown key in the config's launcher: block 'partiton'; valid: .*partition"),
        ("slurm", {}, r"launcher: block must be a mapping"),
        (None, {"launcher": "pbs"}, r"unknown --launcher 'pbs'; valid: local, slurm"),
        (None, {"detach": True}, r"--detach needs --launcher slurm"),
        (None, {"partition": "gpu"}, r"partition are Slurm settings"),
        ({"launcher": "slurm"}, {"parallel": 2}, r"--parallel is for --launcher local"),
        ({"mem_gb": "lots"}, {}, r"bad value for mem-gb: 'lots'"),
    ]
    for block, flags, message in bad:
        with pytest.raises(HarnessError, match=message):
            launch_options(block, flags)


def test_status_names_each_job_and_a_failed_one_with_its_log(tmp_path, capsys):
    plan = build_plan(_comparison([{"batch_size": 4}], members="sdrrl,english_sft", seeds=(0,)), None, False, None)
    root = tmp_path / "cmp"
    write_plan(plan, root)
    write_json(root / "jobs" / "base.json", {"state": "done", "launch": plan.launch, "attempt": 1, "wall_s": 3.0})
    write_json(root / "jobs" / "sdrrl-s0.json", {"state": "failed", "launch": plan.launch, "attempt": 1, "error": "RuntimeError: boom"})
    (root / "jobs" / "sdrrl-s0.log").write_text("".join(f"line {i}\n" for i in range(40)))
    assert main(["status", str(root)]) == 0
    out = capsys.readouterr().out
    assert "base" in out and "done" in out and "pending" in out
    assert "sdrrl-s0 failed (RuntimeError: boom)" in out and "line 39" in out and "line 20" not in out  # the last lines
    assert "1 of 3 jobs done" in out


# ---------------------------------------------------------------- one tiny comparison, three launchers

@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """A real single-node Slurm cluster (slurmctld, slurmd, munged), for this module's tests."""
    missing = missing_programs()
    if missing:
        pytest.skip(f"Slurm test cluster: not installed here: {', '.join(missing)} (apt-get install slurm-wlm munge; "
                    "scripts/install.sh does it when run as root)")
    if os.geteuid() != 0:
        pytest.skip("Slurm test cluster: slurmd and munged must be started as root")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    yield cluster
    cluster.stop()


def _tiny_args(model, runs, name):
    return ["run", "--trainer", "sdrrl,english_sft", "--seeds", "0", "--model", str(model), "--suite", "smoke",
            "--langs", "cs", "--tasks", "belebele_cs,flores200_en-cs", "--engine", "hf", "--runs-dir", str(runs), "--name", name,
            "--limit", "2", "--max-gen-toks", "8", "--max-model-len", "512",
            "--set", "num_instructions=6", "--set", "answer_max_new_tokens=8", "--set", "keep_truncated_answers=true",
            "--set", "keep_wrong_language_answers=true", "--set", "parallel_per_lang=2", "--set", "epochs=1",
            "--set", "batch_size=2", "--set", "max_seq_len=128", "--set", "checkpoint_every=1"]


def _results(root: Path) -> dict:
    """Every member's scores (per task and variant) and training losses."""
    out = {}
    for member in read_json(root / "comparison.json")["runs"]:
        manifest = Manifest(root / member).stages
        scores = {str(p.relative_to(root / member)): {k: v for k, v in read_json(p)["metrics"].items()}
                  for p in sorted((root / member / "eval").glob("*/*/scores.json"))}
        out[member] = {"losses": manifest["train"]["losses"], "steps": manifest["train"]["steps"],
                       "tokens_per_step": manifest["train"]["tokens_per_step"], "scores": scores}
    return out


@pytest.mark.slow
def test_one_comparison_gives_the_same_results_sequential_parallel_and_on_slurm_with_a_member_preempted(
        tiny_llama, tmp_path, monkeypatch, slurm_cluster, capsys):
    runs = tmp_path / "runs"
    timings = {}

    def run(name, *extra, cache):
        monkeypatch.setenv("SDRRL_EVAL_CACHE", str(tmp_path / f"cache-{cache}"))  # each launcher computes its own
        started = time.perf_counter()
        code = main(_tiny_args(tiny_llama, runs, name) + list(extra))
        timings[name] = time.perf_counter() - started
        return code

    assert run("sequential", cache="seq") == 0
    sequential = _results(runs / "sequential")
    assert set(sequential) == {"sdrrl-s0", "english_sft-s0"}
    assert read_plan(runs / "sequential").job("english_sft-s0").budget_from == "sdrrl-s0"

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # two "GPUs" to pin (CPU torch ignores them)
    assert run("parallel", "--parallel", "2", "--gpus-per-member", "1", cache="par") == 0
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    records = {j: read_json(runs / "parallel" / "jobs" / f"{j}.json") for j in [BASE_JOB, *sequential]}
    assert len({r["pid"] for r in records.values()}) == 3 and all(r["pid"] != os.getpid() for r in records.values())
    assert {r["cuda_visible_devices"] for r in records.values()} == {"0", "1"}  # one GPU each, both used (base and sdrrl-s0 at once)
    assert _results(runs / "parallel") == sequential

    # Slurm: submitted and detached; one member is preempted mid-training (SIGTERM then USR2, as Slurm
    # does before a preemption or a time limit), requeued by submitit, and resumes from its checkpoint.
    preempted = "english_sft-s0"  # it waits for sdrrl-s0's budget: a Slurm dependency, then a preemption
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent / "slow_steps"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("SDRRL_TEST_SLOW_JOB", preempted)
    started = time.perf_counter()
    assert run("slurm", "--launcher", "slurm", "--detach", "--cpus-per-member", "1", "--gpus-per-member", "0", "--time-min", "30", cache="slurm") == 0
    root = runs / "slurm"
    ids = read_json(root / "jobs" / "slurm_ids.json")["ids"]
    assert set(ids) == {BASE_JOB, *sequential}
    assert main(["status", str(root)]) == 0
    assert "3 jobs" in capsys.readouterr().out

    checkpoints = root / preempted / "train.checkpoints"
    deadline = time.monotonic() + 600
    while not any(checkpoints.glob("*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(checkpoints.glob("*")), f"{preempted} never wrote a training checkpoint; logs: {root / 'jobs'}"
    for signal in ("TERM", "USR2"):
        subprocess.run(["scancel", f"--signal={signal}", ids[preempted]], check=True)

    from harness.app.launchers import wait_slurm

    states = wait_slurm(read_plan(root), root, LaunchOptions(launcher="slurm", poll_s=1.0))
    timings["slurm"] = time.perf_counter() - started
    assert set(states.values()) == {"done"}, states
    assert main(["report", str(root)]) == 0
    record = read_json(root / "jobs" / f"{preempted}.json")
    assert record["attempt"] == 2, record  # requeued under the same Slurm job id
    train = Manifest(root / preempted).stages["train"]
    assert train["resumed_from_step"] >= 1, train  # from its checkpoint, not from the start
    assert _results(root) == sequential
    assert read_json(root / "report.json").get("missing_runs") is None
    print("tiny comparison wall s (loaded shared machine):", {k: round(v, 1) for k, v in timings.items()})


def test_the_cost_models_wall_clock_follows_the_plans_dependencies():
    import importlib.util

    path = Path(__file__).parents[1] / "benchmarks" / "cost_model.py"
    spec = importlib.util.spec_from_file_location("cost_model", path)
    cost = importlib.util.module_from_spec(spec)
    sys.modules["cost_model"] = cost  # dataclasses look their module up there
    spec.loader.exec_module(cost)
    hours = cost.estimate(cost.Assumptions())
    jobs = cost.member_jobs(hours, trainers=3, seeds=2, measured_budget=True)
    assert cost.wall_clock(jobs, 1) == pytest.approx(sum(h for _, h, _ in jobs))  # one GPU: all in a row
    base, first, other = jobs[0][1], jobs[1][1], jobs[2][1]
    # enough GPUs: the base evaluation, the budget member, then the others at once
    assert cost.wall_clock(jobs, 8) == pytest.approx(base + first + other)
    given = cost.member_jobs(hours, trainers=3, seeds=2, measured_budget=False)
    assert cost.wall_clock(given, 8) == pytest.approx(base + first)  # nothing to wait for but the base


def test_a_report_over_an_unfinished_comparison_names_the_missing_members(tmp_path, capsys):
    from run_fixtures import make_run

    plan = build_plan(_comparison([{"batch_size": 4}], members="sdrrl,english_sft", seeds=(0,)), None, False, None)
    root = tmp_path / "cmp"
    write_plan(plan, root)
    for job, state in ((BASE_JOB, "done"), ("sdrrl-s0", "done"), ("english_sft-s0", "failed")):
        write_json(root / "jobs" / f"{job}.json", {"state": state, "launch": plan.launch, "attempt": 1})
    make_run(root, "sdrrl-s0", trainer="sdrrl", langs=("cs",), translation=False)
    assert main(["report", str(root)]) == 0
    assert "not finished, so not in the report: english_sft-s0" in capsys.readouterr().err
    report = read_json(root / "report.json")
    assert report["missing_runs"] == ["english_sft-s0"]
    assert report["notes"][0].startswith("Incomplete comparison: 1 planned run(s) did not finish") and "english_sft-s0" in report["notes"][0]
    assert "english_sft-s0" in (root / "report.md").read_text()
    assert read_json(root / "comparison.json")["missing"] == ["english_sft-s0"]
    # nothing finished: no report of nothing, but why
    write_json(root / "jobs" / "sdrrl-s0.json", {"state": "failed", "launch": plan.launch, "attempt": 1})
    assert main(["report", str(root)]) == 2
    assert "no member of comparison 'cmp' has finished" in capsys.readouterr().err
