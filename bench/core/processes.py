"""Process housekeeping shared by the harness's workers and the methods' own process pools: how many cores
this process may use, and child processes that end with their parent."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time


def available_cores() -> int:
    """Cores this process may use: ``RAW_BENCH_CORES`` when a parent set it, else the CPU affinity."""
    if os.environ.get("RAW_BENCH_CORES", "").isdigit():
        return max(1, int(os.environ["RAW_BENCH_CORES"]))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this (child) process end when ``parent_pid`` does, also after ``kill -9`` of the parent: on
    Linux the kernel sends SIGKILL (prctl PR_SET_PDEATHSIG); everywhere a daemon thread checks once a second
    that the parent is still there. Call it first thing in a child process."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()
