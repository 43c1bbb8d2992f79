"""Launchers: what starts the jobs of a comparison's plan (harness.app.plan), never what they compute.

    local             the jobs one after another in this process (the default)
    local, parallel N up to N jobs at once, each `python -m harness member <comparison> <job>`, pinned to
                      its own GPU(s) through CUDA_VISIBLE_DEVICES (--gpus-per-member)
    slurm             one Slurm job per plan job through submitit, with Slurm dependencies; a job that hits
                      its time limit or is preempted is requeued by submitit and resumes from its run folder

Every launcher starts a job through `member_started` and sees it end through `member_finished`: the
one place a display (a progress line, a table) hooks into a comparison's members.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness.core.errors import HarnessError, shown, unknown
from harness.core.progress import shown_path
from harness.core.runstore import read_json, write_json
from harness.app.plan import Job, Plan, job_log, jobs_dir, member_states, read_record, run_job

LAUNCHERS = ("local", "slurm")
FINAL = ("done", "failed", "cancelled", "blocked")
LOG_TAIL_LINES = 15


@dataclass(frozen=True)
class LaunchOptions:
    """How a comparison's jobs are started: from flags, else a `launcher:` block in --config, else our defaults."""

    launcher: str = "local"
    parallel: int = 1  # local: jobs at once
    gpus_per_member: int = 1  # local --parallel: GPUs pinned per job when the machine has GPUs; slurm: --gpus-per-node (0: none)
    partition: str | None = None
    account: str | None = None
    cpus_per_member: int | None = None
    mem_gb: int | None = None
    time_min: int = 24 * 60  # a job's time limit; our default
    max_requeues: int = 3  # slurm: how often a timed-out job is requeued (preemptions do not count)
    detach: bool = False  # slurm: submit and return
    poll_s: float = 5.0  # slurm: how often the driver looks at the queue


INT_FIELDS = {"parallel": 1, "gpus_per_member": 0, "cpus_per_member": 1, "mem_gb": 1, "time_min": 1, "max_requeues": 0}
CONFIG_KEYS = ("launcher", "parallel", "gpus_per_member", "partition", "account", "cpus_per_member", "mem_gb", "time_min", "max_requeues")


def launch_options(block: Any, flags: dict[str, Any]) -> LaunchOptions:
    """The options from a config's `launcher:` block, then the flags given (None: not given); checked."""
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise HarnessError(f"the config's launcher: block must be a mapping of {', '.join(CONFIG_KEYS)}; got {shown(block)}")
    for key in block:
        if key not in CONFIG_KEYS:
            raise unknown("key in the config's launcher: block", key, CONFIG_KEYS)
    values = {**block, **{k: v for k, v in flags.items() if v is not None and v is not False}}
    for key, minimum in INT_FIELDS.items():
        if key in values:
            value = values[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise HarnessError(f"bad value for {key.replace('_', '-')}: {shown(value)}; expected an integer >= {minimum}")
    for key in ("partition", "account"):
        if key in values and not (isinstance(values[key], str) and values[key].strip()):
            raise HarnessError(f"bad value for {key}: {shown(values[key])}; expected a name")
    options = replace(LaunchOptions(), **{k: v for k, v in values.items() if k in {f.name for f in fields(LaunchOptions)}})
    if options.launcher not in LAUNCHERS:
        raise unknown("--launcher", options.launcher, LAUNCHERS)
    if options.launcher == "slurm" and options.parallel != 1:
        raise HarnessError("--parallel is for --launcher local; with --launcher slurm every member is its own job")
    if options.detach and options.launcher != "slurm":
        raise HarnessError("--detach needs --launcher slurm (local jobs end with this process)")
    if options.launcher == "local" and any(values.get(k) for k in ("partition", "account", "cpus_per_member", "mem_gb")):
        given = [k for k in ("partition", "account", "cpus_per_member", "mem_gb") if values.get(k)]
        raise HarnessError(f"{', '.join(given)} are Slurm settings: add --launcher slurm, or drop them")
    return options


def check_launcher(options: LaunchOptions) -> None:
    """What the launcher needs on this machine, before anything is written or loaded."""
    if options.launcher == "slurm":
        import shutil

        try:
            import submitit  # noqa: F401
        except ImportError:
            raise HarnessError("--launcher slurm needs submitit: pip install submitit (scripts/install.sh installs it)") from None
        if shutil.which("sbatch") is None:
            raise HarnessError("--launcher slurm needs Slurm's sbatch on PATH (run this on a cluster's login node)")
    elif options.parallel > 1:
        gpus = visible_gpus()
        if gpus and options.parallel * options.gpus_per_member > len(gpus):
            raise HarnessError(f"--parallel {options.parallel} x --gpus-per-member {options.gpus_per_member} needs "
                               f"{options.parallel * options.gpus_per_member} GPUs; this machine shows {len(gpus)} ({','.join(gpus)})")


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (empty: none)."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [g.strip() for g in given.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no torch CUDA: no GPU
        return []


# ---------------------------------------------------------------- the one place members start and finish

def member_started(plan: Plan, job: Job, where: str = "") -> None:
    from harness.core.comparison_progress import active
    from harness.core.progress import console

    budget = job.spec.get("trainer_config", {})
    detail = ", ".join(part for part in (f"{budget['max_steps']} steps" if budget.get("max_steps") else "",
                                          f"budget from {job.budget_from}" if job.budget_from else "", where) if part)
    if (screen := active()) is not None:
        screen.member_started(job.member or "base evaluation", job.seed, detail)
        return
    console.print(f"[bold]comparison[/] {plan.name}: {job.member or 'base evaluation'}"
                  + (f", seed {job.seed}" if job.seed is not None else "") + (f" ({detail})" if detail else ""))


def member_finished(plan: Plan, job: Job, state: str, root: Path) -> None:
    from harness.core.comparison_progress import active
    from harness.core.progress import console

    screen = active()
    if state == "done" and screen is not None:
        screen.member_finished(job.member or "base evaluation", job.seed, Path(root) / job.id, counted=job.kind == "member")
    elif state == "done":
        console.print(f"[bold]comparison[/] {plan.name}: {job.id} done")
    else:
        (screen.console if screen is not None else console).print(
            f"[bold red]comparison[/] {plan.name}: {job.id} {state}" + escape(failure_text(root, job.id)), highlight=False)


def failure_text(root: Path, job_id: str) -> str:
    """Why a job did not finish: its recorded error and the last lines of its log."""
    record = read_record(root, job_id)
    lines = [f" ({record['error']})"] if record.get("error") else []
    log = latest_log(root, job_id)
    if log is not None:
        tail = deque(log.read_text(encoding="utf-8", errors="replace").splitlines(), maxlen=LOG_TAIL_LINES)
        lines.append(f"\n  last lines of {shown_path(log)}:\n" + "\n".join(f"    {line}" for line in tail))
    return "".join(lines)


def latest_log(root: Path, job_id: str) -> Path | None:
    """The job's log: a local process's, or the newest Slurm attempt's (stdout and stderr)."""
    local = job_log(root, job_id)
    slurm = sorted(slurm_dir(root, job_id).glob("*_log.*"), key=lambda p: p.stat().st_mtime)
    candidates = [p for p in [local, *slurm] if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


# ---------------------------------------------------------------- local

def run_local(plan: Plan, root: Path, options: LaunchOptions) -> dict[str, str]:
    """Every job of the plan on this machine; returns each job's final state."""
    if options.parallel == 1:
        return _run_sequential(plan, root)
    return _run_parallel(plan, root, options)


def _run_sequential(plan: Plan, root: Path) -> dict[str, str]:
    """In this process, one after another, as a comparison always ran: an error ends the comparison."""
    for wave in plan.waves():
        for job in wave:
            member_started(plan, job)
            run_job(root, job.id)
            member_finished(plan, job, "done", root)
    return member_states(root, plan)


def member_command(root: Path, job_id: str) -> list[str]:
    return [sys.executable, "-m", "harness", "member", str(root), job_id]


def _run_parallel(plan: Plan, root: Path, options: LaunchOptions) -> dict[str, str]:
    """Up to `parallel` job processes at once, each on its own GPU slot; a failed job's dependents are
    blocked, the others go on."""
    gpus = visible_gpus()
    slots = [",".join(gpus[i * options.gpus_per_member:(i + 1) * options.gpus_per_member]) if gpus else None
             for i in range(options.parallel)]
    states = {j.id: ("done" if s == "done" else "pending") for j, s in zip(plan.jobs, member_states(root, plan).values())}
    running: dict[str, tuple[subprocess.Popen, str | None]] = {}
    free = list(slots)
    jobs_dir(root).mkdir(parents=True, exist_ok=True)
    try:
        while any(s in ("pending", "running") for s in states.values()):
            for job in plan.jobs:
                if states[job.id] == "pending" and any(states[d] in ("failed", "blocked") for d in job.after):
                    states[job.id] = "blocked"
                    member_finished(plan, job, "blocked", root)
            ready = [j for j in plan.jobs if states[j.id] == "pending" and all(states[d] == "done" for d in j.after)]
            while ready and free:
                job, slot = ready.pop(0), free.pop(0)
                env = dict(os.environ)
                if slot is not None:
                    env["CUDA_VISIBLE_DEVICES"] = slot
                with open(job_log(root, job.id), "ab") as log:
                    proc = subprocess.Popen(member_command(root, job.id), stdout=log, stderr=subprocess.STDOUT, env=env)
                running[job.id] = (proc, slot)
                states[job.id] = "running"
                member_started(plan, job, f"pid {proc.pid}" + (f", GPU {slot}" if slot is not None else ""))
            time.sleep(0.2)
            for job_id, (proc, slot) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[job_id]
                free.append(slot)
                states[job_id] = "done" if proc.returncode == 0 and read_record(root, job_id).get("state") == "done" else "failed"
                member_finished(plan, plan.job(job_id), states[job_id], root)
    finally:
        for proc, _ in running.values():  # interrupted: the members go too, their finished stages stay
            proc.terminate()
        for proc, _ in running.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return states


# ---------------------------------------------------------------- slurm

def slurm_dir(root: Path, job_id: str) -> Path:
    """submitit's folder for one job: the pickled call, its result and its logs (<slurm id>_0_log.{out,err})."""
    return jobs_dir(root) / "slurm" / job_id


def slurm_ids_path(root: Path) -> Path:
    return jobs_dir(root) / "slurm_ids.json"


class SlurmMemberJob:
    """What a Slurm job runs: one plan job. Checkpointable for submitit: on a time limit or a
    preemption it is requeued as is, and the rerun resumes from the run folder (finished stages
    skipped, training from its last checkpoint)."""

    def __init__(self, root: str, job_id: str):
        self.root = root
        self.job_id = job_id

    def __call__(self) -> str:
        from harness.core.progress import quiet_libraries

        quiet_libraries(verbose=False)
        return str(run_job(Path(self.root), self.job_id))

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(SlurmMemberJob(self.root, self.job_id))


def submit_slurm(plan: Plan, root: Path, options: LaunchOptions) -> dict[str, str]:
    """One Slurm job per unfinished plan job, each after the jobs it depends on (afterok); returns
    the Slurm id of each job submitted now."""
    import submitit

    states = member_states(root, plan)
    active = {job_id: sid for job_id, sid in _slurm_ids(root).items() if squeue_states([sid]).get(sid, ("", ""))[0] in ACTIVE}
    if active:
        raise HarnessError(f"comparison {plan.name!r} still has Slurm jobs queued or running ({', '.join(f'{j}: {s}' for j, s in active.items())}); "
                           f"`harness status {root}` shows them, scancel them to start over")
    ids: dict[str, str] = {}
    for wave in plan.waves():
        for job in wave:
            if states[job.id] == "done":
                continue
            executor = submitit.SlurmExecutor(folder=slurm_dir(root, job.id), max_num_timeout=options.max_requeues)
            params: dict[str, Any] = {"job_name": f"{plan.name}:{job.id}", "time": options.time_min, "signal_delay_s": 60}
            if options.partition:
                params["partition"] = options.partition
            if options.account:
                params["account"] = options.account
            if options.cpus_per_member:
                params["cpus_per_task"] = options.cpus_per_member
            if options.mem_gb:
                params["mem"] = f"{options.mem_gb}GB"
            if options.gpus_per_member:  # 0 on a CPU partition
                params["gpus_per_node"] = options.gpus_per_member
            deps = [ids[d] for d in job.after if d in ids]
            params["additional_parameters"] = {"kill-on-invalid-dep": "yes",
                                               **({"dependency": "afterok:" + ":".join(deps)} if deps else {})}
            executor.update_parameters(**params)
            submitted = executor.submit(SlurmMemberJob(str(root), job.id))
            ids[job.id] = str(submitted.job_id)
            member_started(plan, job, f"Slurm job {submitted.job_id}")
    write_json(slurm_ids_path(root), {"launch": plan.launch, "ids": {**_slurm_ids(root), **ids}})
    return ids


def _slurm_ids(root: Path) -> dict[str, str]:
    path = slurm_ids_path(root)
    return read_json(path).get("ids", {}) if path.is_file() else {}


ACTIVE = ("PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED", "STOPPED")


def squeue_states(slurm_ids: list[str]) -> dict[str, tuple[str, str]]:
    """Slurm's state and reason of each job it still lists (finished ones for MinJobAge seconds)."""
    if not slurm_ids:
        return {}
    out = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%T|%r"], capture_output=True, text=True)
    if out.returncode != 0:
        raise HarnessError(f"squeue failed: {out.stderr.strip() or out.stdout.strip()}")
    found = {}
    for line in out.stdout.splitlines():
        sid, _, rest = line.partition("|")
        state, _, reason = rest.partition("|")
        found[sid.strip()] = (state.strip(), reason.strip())
    return {sid: found[sid] for sid in slurm_ids if sid in found}


def job_states(plan: Plan, root: Path) -> list[dict[str, Any]]:
    """Every job's state, from its own record and (for Slurm jobs) the queue: one row each."""
    records = member_states(root, plan)
    sids = _slurm_ids(root)
    queue = squeue_states(list(sids.values())) if sids else {}
    rows = []
    for job in plan.jobs:
        state = records[job.id]
        record = read_record(root, job.id)
        sid = sids.get(job.id)
        slurm_state, reason = queue.get(sid, ("", "")) if sid else ("", "")
        if state != "done" and sid:
            state = _slurm_state(slurm_state, record, plan, [r for r in rows if r["job"] in job.after])
        rows.append({"job": job.id, "state": state, "attempt": record.get("attempt", 0) if record.get("launch") == plan.launch else 0,
                     "slurm_id": sid, "slurm_state": slurm_state, "reason": reason if reason not in ("None", "") else "",
                     "wall_s": record.get("wall_s"), "host": record.get("host")})
    return rows


def _slurm_state(slurm_state: str, record: dict[str, Any], plan: Plan, deps: list[dict[str, Any]]) -> str:
    """A submitted, unfinished job's state: from the queue while Slurm lists it, else from its record."""
    if slurm_state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "CONFIGURING"):
        return "queued"
    if slurm_state in ACTIVE:
        return "running"
    started = record.get("launch") == plan.launch
    if slurm_state == "CANCELLED" or not slurm_state:
        if not started and any(d["state"] in ("failed", "cancelled", "blocked") for d in deps):
            return "blocked"  # Slurm dropped it (kill-on-invalid-dep): a job it needed did not finish
        return "cancelled" if slurm_state else ("failed" if started else "cancelled")
    return "failed"  # FAILED, TIMEOUT (requeues used up), NODE_FAIL, OUT_OF_MEMORY, or COMPLETED without finishing


def states_table(plan: Plan, rows: list[dict[str, Any]]) -> Any:
    from rich.table import Table

    table = Table("job", "state", "attempt", "slurm job", "slurm state", "wall s", title=f"comparison {plan.name}")
    for row in rows:
        style = {"done": "green", "failed": "red", "cancelled": "red", "blocked": "red"}.get(row["state"], "")
        table.add_row(row["job"], f"[{style}]{row['state']}[/]" if style else row["state"], str(row["attempt"] or ""),
                      row["slurm_id"] or "", (row["slurm_state"] + (f" ({row['reason']})" if row["reason"] else "")),
                      f"{row['wall_s']:.0f}" if row["wall_s"] else "")
    return table


def wait_slurm(plan: Plan, root: Path, options: LaunchOptions) -> dict[str, str]:
    """Wait for every job with a live table of their states; returns each job's final state."""
    from rich.live import Live

    from harness.core.progress import console

    seen: dict[str, str] = {}
    with Live(console=console, refresh_per_second=1, transient=False) as live:
        while True:
            rows = job_states(plan, root)
            live.update(states_table(plan, rows))
            for row in rows:
                if row["state"] != seen.get(row["job"]) and row["state"] in FINAL and seen:
                    member_finished(plan, plan.job(row["job"]), row["state"], root)
                seen[row["job"]] = row["state"]
            if all(row["state"] in FINAL for row in rows):
                return {row["job"]: row["state"] for row in rows}
            time.sleep(options.poll_s)


def launch(plan: Plan, root: Path, options: LaunchOptions) -> dict[str, str] | None:
    """Start the plan's jobs; returns their final states, or None when detached (they go on)."""
    if options.launcher == "local":
        return run_local(plan, root, options)
    submit_slurm(plan, root, options)
    if options.detach:
        return None
    return wait_slurm(plan, root, options)

