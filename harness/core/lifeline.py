"""Child processes that die with their parent: no orphaned vLLM worker after a kill -9.

`run_in_child(fn, *args)` runs `fn` in a spawned process and returns its result. The child is tied
to the parent twice: prctl(PR_SET_PDEATHSIG, SIGKILL) on Linux (the kernel kills it when the parent
dies, however it dies), and a watchdog thread that exits when the parent's PID changes (other
systems, and the moment before prctl took effect). When the parent itself raises or is interrupted,
it kills the child before passing the exception on.

PR_SET_PDEATHSIG fires when the *thread* that started the child ends: call `run_in_child` from a
thread that lives as long as the work (the CLI's main thread does).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any, Callable

from harness.core.errors import HarnessError

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCHDOG_INTERVAL_S = 0.5


class ChildDied(HarnessError):
    """The child process ended without an answer (killed, out of memory, crashed in native code)."""


def die_with_parent(parent_pid: int) -> None:
    """Called first thing in a child: end this process when `parent_pid` is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    start_watchdog(parent_pid)


def start_watchdog(parent_pid: int) -> threading.Thread:
    """A daemon thread that kills this process once its parent is no longer `parent_pid`."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_INTERVAL_S)
        os.kill(os.getpid(), signal.SIGKILL)

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread


def _child_main(conn: Any, parent_pid: int, fn: Callable, args: tuple) -> None:
    die_with_parent(parent_pid)
    try:
        conn.send(("ok", fn(*args)))
    except BaseException as exc:  # noqa: BLE001 - everything (an unpicklable result too) goes back as text
        conn.send(("error", f"{type(exc).__name__}: {exc}", isinstance(exc, HarnessError)))
    conn.close()


def run_in_child(fn: Callable, *args: Any, what: str = "child process") -> Any:
    """fn(*args) in a spawned child tied to this process; its exceptions come back as HarnessError
    (the child's own HarnessError text as it is) or RuntimeError."""
    ctx = multiprocessing.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child_conn, os.getpid(), fn, args))
    try:
        # Started inside the try: an interrupt right after the start must still end the child, or
        # multiprocessing's exit handler waits for it (it joins every child that is not a daemon).
        proc.start()
        child_conn.close()  # so recv() sees EOF when the child dies
        try:
            reply = parent_conn.recv()
        except EOFError:
            proc.join(5)
            raise ChildDied(f"the {what} (pid {proc.pid}) died with exit code {proc.exitcode} (out of memory?)") from None
        proc.join(30)
    finally:
        if proc.is_alive():  # the parent is raising or interrupted: the child goes too
            proc.kill()
            proc.join(5)
        parent_conn.close()
    if reply[0] == "ok":
        return reply[1]
    if reply[2]:
        raise HarnessError(reply[1].split(": ", 1)[1])
    raise RuntimeError(reply[1])
