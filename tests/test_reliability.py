"""One writer per run folder, caches shared by concurrent writers, children that die with the parent,
and the last-resort handler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.core.errors import HarnessError
from harness.core.lifeline import ChildDied, run_in_child
from harness.core.runstore import JsonlCache, RunLock

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


# --- the run folder lock ----------------------------------------------------------------------


def test_second_writer_is_refused_naming_the_holder(tmp_path):
    with RunLock(tmp_path / "run"):
        owner = json.loads((tmp_path / "run" / ".lock").read_text())
        assert owner["pid"] == os.getpid() and owner["host"]
        with pytest.raises(HarnessError, match=rf"in use by pid {os.getpid()} on host"):
            with RunLock(tmp_path / "run"):
                pass
    assert not (tmp_path / "run" / ".lock").exists()
    with RunLock(tmp_path / "run") as again:  # free once released
        assert again.stale_owner is None


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    script = textwrap.dedent(f"""
        import time
        from harness.core.runstore import RunLock
        with RunLock({str(tmp_path / 'run')!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(HarnessError, match=rf"pid {holder.pid}"):
            RunLock(tmp_path / "run").__enter__()
    finally:
        holder.kill()
        holder.wait()
    with RunLock(tmp_path / "run") as lock:  # the dead holder's file is still there, its flock is not
        assert lock.stale_owner["pid"] == holder.pid


def test_run_command_refuses_a_second_writer(tmp_path, capsys, tiny_llama, monkeypatch):
    from harness.app.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["run", "--trainer", "base", "--model", str(tiny_llama), "--suite", "smoke", "--engine", "hf",
            "--runs-dir", "runs", "--name", "busy", "--limit", "1"]
    with RunLock(tmp_path / "runs" / "busy"):
        capsys.readouterr()
        assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"pid {os.getpid()}" in err and "busy" in err
    assert not (tmp_path / "runs" / "busy" / "spec.yaml").exists()


# --- the content-keyed cache -------------------------------------------------------------------


def test_cache_skips_partial_lines_and_writes_each_key_once(tmp_path):
    path = tmp_path / "cache.jsonl"
    a, b = JsonlCache(path), JsonlCache(path)  # two writers that loaded the file before either wrote
    assert a.add([{"key": "k1", "v": 1}, {"key": "k2", "v": 2}]) == 2
    assert b.add([{"key": "k2", "v": 20}, {"key": "k3", "v": 3}]) == 1  # k2 is already there
    assert b["k2"]["v"] == 2  # the first writer's value wins everywhere
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"key": "k4", "v"')  # a writer killed mid-line
    reader = JsonlCache(path)
    assert set(reader.rows) == {"k1", "k2", "k3"}
    assert a.add([{"key": "k5", "v": 5}]) == 1  # starts on a fresh line: the fragment stays one bad line
    assert set(JsonlCache(path).rows) == {"k1", "k2", "k3", "k5"}
    keys = []
    for line in path.read_text().splitlines():
        try:
            keys.append(json.loads(line)["key"])
        except ValueError:
            pass
    assert sorted(keys) == ["k1", "k2", "k3", "k5"]


def test_concurrent_writers_store_each_key_once(tmp_path):
    path = tmp_path / "cache.jsonl"
    script = textwrap.dedent(f"""
        import sys
        from harness.core.runstore import JsonlCache
        cache = JsonlCache({str(path)!r})
        for i in range(200):
            cache.add([{{"key": f"k{{i}}", "by": sys.argv[1]}}, {{"key": f"k{{i + 1}}", "by": sys.argv[1]}}])
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], env=_env()) for n in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    keys = [json.loads(line)["key"] for line in path.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 201


# --- children die with the parent -------------------------------------------------------------


def _unpicklable():
    return lambda: None


def _fail_in_child() -> None:
    raise HarnessError("no such thing")


def test_run_in_child_returns_results_and_errors():
    assert run_in_child(sum, [1, 2, 3]) == 6
    with pytest.raises(HarnessError, match="no such thing"):
        run_in_child(_fail_in_child)
    with pytest.raises(ChildDied, match="exit code 3"):
        run_in_child(os._exit, 3)
    with pytest.raises(RuntimeError, match="pickle"):  # a result that cannot travel back is an error, not a death
        run_in_child(_unpicklable)


def _alive(pid: int) -> bool:
    """Running, not a zombie (a container's PID 1 may never reap the killed child)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _all_gone(pids: list[int], within: float = 5.0) -> bool:
    """Whether every one of `pids` has ended (or is a zombie) within `within` seconds."""
    deadline = time.time() + within
    while any(_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


PARENT = textwrap.dedent("""
    import sys, time
    from harness.core.lifeline import run_in_child
    if __name__ == "__main__":
        print("start", flush=True)
        run_in_child(time.sleep, 120)
""")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_child_dies_with_its_parent(sig, tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    try:
        assert parent.stdout.readline().strip() == "start"
        deadline = time.time() + 60
        while not (children := [c for c in _children(parent.pid) if _alive(c)]) and time.time() < deadline:
            time.sleep(0.1)
        assert children, "the child did not start"
        time.sleep(1.0)  # let the child reach its sleep (prctl and watchdog set)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        assert _all_gone(children), f"orphans left after {sig.name}: {children}"
    finally:
        parent.kill()
        parent.wait()


START_INTERRUPTED = textwrap.dedent("""
    import time
    import multiprocessing.context as context
    from harness.core.lifeline import run_in_child
    real_start = context.SpawnProcess.start
    def start(self):
        real_start(self)
        print(self.pid, flush=True)
        raise KeyboardInterrupt  # as if Ctrl-C came the moment the child was started
    context.SpawnProcess.start = start
    if __name__ == "__main__":
        run_in_child(time.sleep, 120)
""")


def test_an_interrupt_right_after_the_start_still_ends_the_child(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(START_INTERRUPTED)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env())
    try:
        child = int(parent.stdout.readline())
        # A child left running kept the parent from exiting: multiprocessing joins it at exit.
        parent.wait(timeout=30)
        assert _all_gone([child])
    finally:
        parent.kill()
        parent.wait()


def test_watchdog_alone_ends_an_orphan(tmp_path):
    """The fallback without prctl: a grandchild watching its parent's PID exits when it dies."""
    worker = "import time, os, sys; from harness.core.lifeline import start_watchdog; start_watchdog(os.getppid()); print(os.getpid(), flush=True); time.sleep(120)"
    middle = f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', {worker!r}], stdout=sys.stdout); time.sleep(120)"
    parent = subprocess.Popen([sys.executable, "-c", middle], stdout=subprocess.PIPE, text=True, env=_env())
    try:
        grandchild = int(parent.stdout.readline())
        assert _alive(grandchild)
        parent.kill()
        parent.wait()
        assert _all_gone([grandchild])
    finally:
        parent.kill()


# --- the last resort ----------------------------------------------------------------------------


def test_unexpected_exception_is_one_line_and_a_log(monkeypatch, capsys, tmp_path):
    import harness.app.cli as cli

    monkeypatch.setenv("SDRRL_HOME", str(tmp_path))

    def broken(_args):
        raise ZeroDivisionError("something deep")

    monkeypatch.setattr(cli, "cmd_list", broken)  # build_parser binds it when main runs
    assert cli.main(["list", "langs"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "ZeroDivisionError: something deep" in err
    log = Path(err.split("the traceback is in ")[1].split(";")[0])
    assert log.parent == tmp_path / "logs" and "Traceback" in log.read_text() and "something deep" in log.read_text()


def test_eval_command_refuses_a_second_writer(tmp_path, capsys, tiny_llama):
    from harness.app.cli import main

    out = tmp_path / "eval-out"
    with RunLock(out):
        capsys.readouterr()
        assert main(["eval", "--model", str(tiny_llama), "--suite", "smoke", "--engine", "hf", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"pid {os.getpid()}" in err
