"""A comparison as a plan of jobs, written to runs/<comparison>/plan.json before anything runs.

    base            the base model's evaluation (shared by every member through the evaluation cache)
    <member>-s<seed> data, train and evaluate one member at one seed (an ordinary run folder)

Every job is a separate unit any launcher can start (in this process, as a local process pinned to
GPUs, or as a Slurm job): `python -m harness member runs/<comparison> <job>` runs one from the plan
alone. The plan fixes each member's spec, seed and data; the budget is fixed by it too: a member
whose steps or tokens per step are measured by the budget member (the first training member, per
seed) depends on that member's job and reads its manifest, so the order the jobs happen to run in
never changes a result. Each job records its attempts and outcome in runs/<comparison>/jobs/<job>.json.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.runstore import Manifest, RunPaths, read_json, write_json
from harness.app.spec import RunSpec

PLAN_FORMAT = 1
BASE_JOB = "base"


@dataclass(frozen=True)
class Job:
    id: str  # "base" or the member's run folder name, "<member>-s<seed>"
    kind: str  # "base" | "member"
    spec: dict[str, Any]  # RunSpec.to_dict(); the base job's is the budget member's (the evaluation inputs are the same)
    after: tuple[str, ...] = ()  # jobs that must finish first
    member: str | None = None  # member label ("sdrrl+no_cs")
    seed: int | None = None
    budget_from: str | None = None  # the job whose measured steps / tokens per step this one takes
    take_steps: bool = False  # its max_steps is the budget member's measured steps
    take_tokens: bool = False  # its tokens_per_step is the budget member's measured tokens per step

    def run_spec(self) -> RunSpec:
        d = dict(self.spec)
        for key in ("languages", "tasks", "include_paths"):
            d[key] = tuple(d.get(key) or ())
        return RunSpec(**d)


@dataclass(frozen=True)
class Plan:
    name: str
    jobs: tuple[Job, ...]
    options: dict[str, Any] = field(default_factory=dict)  # force, keep_cache, min_effect: the same for every job
    launch: str = ""  # when the driver wrote this plan: a --force applies once per launch, not again on a requeue

    def job(self, job_id: str) -> Job:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise HarnessError(f"unknown job {job_id!r} in plan {self.name!r}; valid: {', '.join(j.id for j in self.jobs)}")

    @property
    def members(self) -> list[Job]:
        return [j for j in self.jobs if j.kind == "member"]

    def waves(self) -> list[list[Job]]:
        """The jobs in dependency order, grouped: every job of a wave depends only on earlier waves."""
        done: set[str] = set()
        waves: list[list[Job]] = []
        left = list(self.jobs)
        while left:
            ready = [j for j in left if set(j.after) <= done]
            if not ready:
                raise HarnessError(f"plan {self.name!r} has a dependency cycle among {', '.join(j.id for j in left)}")
            waves.append(ready)
            done |= {j.id for j in ready}
            left = [j for j in left if j.id not in done]
        return waves


def plan_path(root: Path) -> Path:
    return Path(root) / "plan.json"


def jobs_dir(root: Path) -> Path:
    return Path(root) / "jobs"


def build_plan(comparison: Any, force: str | None, keep_cache: bool, min_effect: dict[str, float] | None,
               report_to: tuple[str, ...] = ()) -> Plan:
    """The jobs of a harness.app.compare.Comparison: the base evaluation, then per seed the budget
    member, then the others (after it only where they take a measured budget from it)."""
    from harness.app.compare import with_budget
    from harness.trainer_api import get_trainer_class, setting_names

    budget_member = comparison.budget_member()
    first = comparison.specs[(budget_member or comparison.members[0]).label, comparison.seeds[0]]
    jobs = [Job(BASE_JOB, "base", first.to_dict())]
    for seed in comparison.seeds:
        budget_id = None
        for member in sorted(comparison.members, key=lambda m: m != budget_member):
            spec = with_budget(comparison, member, comparison.specs[(member.label, seed)], comparison.steps,
                               comparison.tokens_per_step)
            trainer_cls = get_trainer_class(member.trainer)
            is_budget = member == budget_member
            take_steps = (not is_budget and trainer_cls.trains and comparison.steps is None
                          and member.label not in comparison.own_steps)
            take_tokens = (not is_budget and trainer_cls.trains and comparison.tokens_per_step is None
                           and member.label not in comparison.own_tokens
                           and "tokens_per_step" in setting_names(trainer_cls.Config))
            measured_from = budget_id if (take_steps or take_tokens) else None
            after = (BASE_JOB,) + ((measured_from,) if measured_from else ())
            jobs.append(Job(spec.name, "member", spec.to_dict(), after, member.label, seed, measured_from, take_steps, take_tokens))
            if is_budget:
                budget_id = spec.name
    options = {"force": force, "keep_cache": keep_cache, "min_effect": min_effect, "report_to": list(report_to),
               "members": [dataclasses.asdict(m) for m in comparison.members], "seeds": list(comparison.seeds),
               "steps": comparison.steps, "tokens_per_step": comparison.tokens_per_step,
               "budget_member": budget_member.label if budget_member else None}
    return Plan(comparison.name, tuple(jobs), options, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def write_plan(plan: Plan, root: Path) -> None:
    write_json(plan_path(root), {"format": PLAN_FORMAT, "name": plan.name, "launch": plan.launch, "options": plan.options,
                                 "jobs": [dataclasses.asdict(j) for j in plan.jobs]})


def read_plan(root: Path) -> Plan:
    path = plan_path(root)
    if not path.is_file():
        raise HarnessError(f"{str(root)!r} holds no comparison plan ({path.name}); a comparison folder is what "
                           "`harness run --trainer a,b ...` made")
    data = read_json(path)
    if data.get("format") != PLAN_FORMAT:
        raise HarnessError(f"{path} is plan format {data.get('format')!r}; this harness reads format {PLAN_FORMAT}: rerun the comparison's command")
    jobs = tuple(Job(**{**j, "after": tuple(j["after"])}) for j in data["jobs"])
    return Plan(data["name"], jobs, data["options"], data["launch"])


# ---------------------------------------------------------------- one job's record

def job_record_path(root: Path, job_id: str) -> Path:
    return jobs_dir(root) / f"{job_id}.json"


def job_log(root: Path, job_id: str) -> Path:
    """What a job printed, for launchers that run it in another process."""
    return jobs_dir(root) / f"{job_id}.log"


def read_record(root: Path, job_id: str) -> dict[str, Any]:
    path = job_record_path(root, job_id)
    try:
        return read_json(path) if path.is_file() else {}
    except ValueError:
        return {}


def _update_record(root: Path, job_id: str, **changes: Any) -> dict[str, Any]:
    record = {**read_record(root, job_id), **changes}
    write_json(job_record_path(root, job_id), record)
    return record


# ---------------------------------------------------------------- running one job

def run_job(root: Path, job_id: str) -> Path:
    """Run one job of the plan in runs/<comparison> (`root`); returns its output folder. Safe to run again:
    a finished stage is skipped, an unfinished training resumes from its last checkpoint."""
    from harness.app import pipeline

    root = Path(root)
    plan = read_plan(root)
    job = plan.job(job_id)
    for dep in job.after:
        if read_record(root, dep).get("state") != "done":
            raise HarnessError(f"job {job_id} needs job {dep} finished first; it is {read_record(root, dep).get('state', 'not started')}")
    previous = read_record(root, job_id)
    attempt = previous.get("attempt", 0) + 1 if previous.get("launch") == plan.launch else 1
    # A --force redoes the stage once per launch: a requeued attempt resumes instead of starting over.
    force = plan.options.get("force") if attempt == 1 else None
    _update_record(root, job_id, state="running", launch=plan.launch, attempt=attempt, host=platform.node(), pid=os.getpid(),
                   started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), error=None,
                   cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    started = time.perf_counter()
    try:
        if job.kind == "base":
            out = pipeline.evaluate_base(job.run_spec(), root, force=force, keep_cache=plan.options.get("keep_cache", False))
        else:
            spec = budgeted_spec(root, job)
            out = pipeline.run(spec, root, force=force, keep_cache=plan.options.get("keep_cache", False),
                               min_effect=plan.options.get("min_effect"), report_to=tuple(plan.options.get("report_to") or ()))
    except BaseException as exc:
        # an interrupt (a preempted Slurm job) is not a failure: the job is requeued or rerun
        failed = not isinstance(exc, (KeyboardInterrupt, SystemExit))
        _update_record(root, job_id, state="failed" if failed else "interrupted", error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    _update_record(root, job_id, state="done", wall_s=round(time.perf_counter() - started, 3),
                   finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return out


def budgeted_spec(root: Path, job: Job) -> RunSpec:
    """The job's spec with what the budget member measured (its steps, its tokens per step)."""
    spec = job.run_spec()
    if not job.budget_from:
        return spec
    train = Manifest(Path(root) / job.budget_from).stages.get("train", {})
    if not train:
        raise HarnessError(f"job {job.id} takes its budget from {job.budget_from}, which has not finished training")
    config = dict(spec.trainer_config)
    if job.take_steps and train.get("steps"):
        config["max_steps"] = train["steps"]
    if job.take_tokens and train.get("tokens_per_step"):
        config["tokens_per_step"] = round(train["tokens_per_step"])
    return dataclasses.replace(spec, trainer_config=config)


# ---------------------------------------------------------------- the comparison's outcome

def member_states(root: Path, plan: Plan) -> dict[str, str]:
    """Each job's state as its own record says: done, running, failed, interrupted or pending."""
    states = {}
    for job in plan.jobs:
        record = read_record(root, job.id)
        if record.get("launch") == plan.launch:
            states[job.id] = record.get("state", "pending")
        else:  # an earlier launch's: its finished jobs stay finished, unless this launch forces a stage again
            states[job.id] = "done" if record.get("state") == "done" and not plan.options.get("force") else "pending"
    return states


def finish(root: Path, plan: Plan) -> tuple[Path, list[str]]:
    """comparison.json and one report over the members that finished; returns the report and the
    jobs that did not finish (named in the report, never compared silently without them)."""
    from reports.build import build_report

    root = Path(root)
    states = member_states(root, plan)
    done = [j for j in plan.members if states[j.id] == "done"]
    missing = [j.id for j in plan.jobs if states[j.id] != "done"]
    if not done:
        raise HarnessError(f"no member of comparison {plan.name!r} has finished ({', '.join(f'{k}: {v}' for k, v in states.items())}); "
                           f"`harness status {root}` shows why")
    steps: dict[int, int | None] = {}
    tokens: dict[int, int | None] = {}
    budget = plan.options.get("budget_member")
    for job in plan.members:
        if job.member == budget or budget is None:
            train = Manifest(root / job.id).stages.get("train", {})
            steps[job.seed] = plan.options.get("steps") or train.get("steps")
            user_tokens = plan.options.get("tokens_per_step")
            tokens[job.seed] = user_tokens if user_tokens is not None else (
                round(train["tokens_per_step"]) if train.get("tokens_per_step") else None)
    write_json(RunPaths(root).comparison, {
        "members": plan.options["members"],
        "seeds": plan.options["seeds"],
        "steps_per_seed": steps,
        "budget_set_by": "user" if plan.options.get("steps") else budget,
        "tokens_per_step_per_seed": tokens,  # None or 0: batches sized in records
        "tokens_per_step_set_by": "user" if plan.options.get("tokens_per_step") is not None else budget,
        "runs": [j.id for j in done],
        "missing": [j for j in missing if j != BASE_JOB],
    })
    build_report([root / j.id for j in done], root, min_effect=plan.options.get("min_effect"),
                 missing=[j for j in missing if j != BASE_JOB])
    return RunPaths(root).report_md, missing
