"""A real single-node Slurm cluster for the tests: munged, slurmctld and slurmd from Debian's
`slurm-wlm` and `munge` packages, run as root with their state under a temporary folder.

What makes slurmd 22.05 start without systemd or cgroups: ProctrackType=proctrack/linuxproc,
TaskPlugin=task/none and no cgroup.conf; munged runs as the munge user with a generated key, in a
folder of its own (munged refuses a key or socket folder others can write to or reach through).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_programs() -> list[str]:
    """The programs a cluster needs that are not installed (empty: it can start)."""
    needed = [*DAEMONS, "sbatch", "squeue", "scontrol", "scancel"]
    missing = [p for p in needed if shutil.which(p) is None and not Path("/usr/sbin", p).exists()]
    try:
        pwd.getpwnam("munge")
    except KeyError:
        missing.append("user munge")
    return missing


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@dataclass
class SlurmCluster:
    root: Path
    cpus: int = 2
    conf: Path = field(init=False)
    munge_dir: Path = field(init=False)
    procs: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "slurm.conf"
        # munged checks every folder above its socket and key: not under pytest's root-only tmp tree
        self.munge_dir = Path(tempfile.mkdtemp(prefix="sdrrl-munge-"))

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def start(self, timeout_s: float = 60.0) -> "SlurmCluster":
        munge = pwd.getpwnam("munge")
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        for path in (self.munge_dir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        key.chmod(0o400)
        self.munge_dir.chmod(0o755)
        sock = self.munge_dir / "munge.socket"
        self._spawn(["runuser", "-u", "munge", "--", _program("munged"), "--foreground", f"--key-file={key}",
                     f"--socket={sock}", f"--pid-file={self.munge_dir / 'munged.pid'}",
                     f"--log-file={self.munge_dir / 'munged.log'}", f"--seed-file={self.munge_dir / 'munged.seed'}"],
                    "munged")
        self._wait(lambda: sock.exists(), timeout_s, "munged's socket")
        host = socket.gethostname().split(".")[0]
        for sub in ("state", "spool"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text("\n".join([
            "ClusterName=sdrrltest",
            f"SlurmctldHost={host}(127.0.0.1)",
            "SlurmUser=root", "SlurmdUser=root",
            # cred_expire: also how long a requeued job waits before it may start again (default 120 s)
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={sock},cred_expire=10",
            f"SlurmctldPort={_free_port()}", f"SlurmdPort={_free_port()}",
            f"StateSaveLocation={self.root / 'state'}", f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.root / 'slurmctld.pid'}", f"SlurmdPidFile={self.root / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.root / 'slurmctld.log'}", f"SlurmdLogFile={self.root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
            "SchedulerType=sched/backfill", "ReturnToService=2", "MpiDefault=none",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "SchedulerParameters=sched_interval=1", "MinJobAge=600",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={self.cpus} State=UNKNOWN",
            f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")
        os.environ["SLURM_CONF"] = str(self.conf)
        self._spawn([_program("slurmctld"), "-D", "-c", "-f", str(self.conf)], "slurmctld")
        self._spawn([_program("slurmd"), "-D", "-f", str(self.conf)], "slurmd")
        self._wait(self._node_idle, timeout_s, "the node to come up idle")
        return self

    def _node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env={**os.environ, **self.env})
        return out.returncode == 0 and out.stdout.strip().startswith("idle")

    def _spawn(self, cmd: list[str], name: str) -> None:
        log = open(self.root / f"{name}.stdout", "wb")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [p.args for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"waiting for {what}: {dead[0]} exited; logs in {self.root}, {self.munge_dir}")
            time.sleep(0.3)
        raise RuntimeError(f"waiting for {what}: timed out after {timeout_s} s; logs in {self.root}, {self.munge_dir}")

    def stop(self) -> None:
        subprocess.run(["scancel", "--user=root"], capture_output=True, env={**os.environ, **self.env})
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(3)  # the cluster's state is thrown away with it: no need to wait for a clean shutdown
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._kill_leftover_jobs()
        shutil.rmtree(self.munge_dir, ignore_errors=True)

    def _kill_leftover_jobs(self) -> None:
        """Kill what the cluster's jobs left: an `srun` of a requeued job was seen sleeping on after its job
        ended and the daemons stopped. A job's processes carry SLURM_JOB_ID and this cluster's SLURM_CONF."""
        import signal

        mark = f"SLURM_CONF={self.conf}".encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
                if mark in environ and any(v.startswith(b"SLURM_JOB_ID=") for v in environ):
                    os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                continue  # gone meanwhile, or not ours to read
