"""Wall time of one tiny comparison per launcher, and Slurm's overhead per job.

Run by hand, as root on a machine with Debian's slurm-wlm and munge (not by pytest):

    python benchmarks/bench_launchers.py --rounds 2

Each round runs the tiny comparison of tests/test_launchers.py (tiny random Llama, 2 trainers x 2
seeds, 2 tasks of 2 items) sequentially in one process, with `--parallel 2`, and with
`--launcher slurm` on a single-node cluster started here (tests/slurm_cluster.py), in an order that
rotates per round; each arm computes its own evaluations (a fresh cache). Slurm's overhead per job:
submitit jobs that do nothing, from submit to a result on disk, against `python -c` of the same
interpreter (the process start a job pays anyway).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from emit import emit  # noqa: E402  (benchmarks/ is on the path: scripts run as python benchmarks/<name>.py)


def _noop() -> int:
    return 0


def slurm_overhead(folder: Path, jobs: int) -> dict[str, float]:
    import submitit

    executor = submitit.SlurmExecutor(folder=folder)
    executor.update_parameters(time=5, cpus_per_task=1)
    per_job = []
    for _ in range(jobs):
        started = time.perf_counter()
        executor.submit(_noop).result()
        per_job.append(time.perf_counter() - started)
    python = []
    for _ in range(jobs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import submitit"], check=True)
        python.append(time.perf_counter() - started)
    return {"slurm_job_s_median": statistics.median(per_job), "python_start_s_median": statistics.median(python),
            "overhead_s_median": statistics.median(per_job) - statistics.median(python), "jobs": jobs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--overhead-jobs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args()

    from slurm_cluster import SlurmCluster
    from test_launchers import _tiny_args
    from tiny_model import build_tiny_llama

    from harness.app.cli import main as harness

    work = Path(tempfile.mkdtemp(prefix="bench-launchers-"))
    model = build_tiny_llama(work / "model")
    cluster = SlurmCluster(work / "slurm").start()
    os.environ.update({"SDRRL_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    arms = {"sequential": [], "parallel 2": ["--parallel", "2"],
            "slurm": ["--launcher", "slurm", "--cpus-per-member", "1", "--gpus-per-member", "0", "--time-min", "30"]}
    walls: dict[str, list[float]] = {arm: [] for arm in arms}
    try:
        for r in range(args.rounds):
            order = list(arms)[r % len(arms):] + list(arms)[: r % len(arms)]
            for arm in order:
                name = f"{arm.replace(' ', '')}-{r}"
                os.environ["SDRRL_EVAL_CACHE"] = str(work / f"cache-{name}")
                started = time.perf_counter()
                code = harness(_tiny_args(model, work / "runs", name) + arms[arm])
                walls[arm].append(time.perf_counter() - started)
                if code != 0:
                    raise SystemExit(f"{arm} exited {code}")
        overhead = slurm_overhead(work / "overhead", args.overhead_jobs)
    finally:
        cluster.stop()
    result = {"wall_s": walls, "wall_s_median": {a: statistics.median(w) for a, w in walls.items()},
              "slurm_overhead": overhead, "cpus": os.cpu_count(), "load_avg_1m_at_end": os.getloadavg()[0]}
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
