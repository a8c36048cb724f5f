"""Process housekeeping shared by the harness's workers and the methods' own process pools: how many cores
this process may use (and limiting the libraries' threads to a share of them), and child processes that end
with their parent."""

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


#: The variables that carry a process's share of the cores: OpenMP and BLAS pools read them when they start
#: (torch when it is imported), ``available_cores`` reads ``RAW_BENCH_CORES``.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAW_BENCH_CORES")


def limit_threads(threads: int) -> None:
    """Give this process ``threads`` threads (>= 1) of the libraries the methods use, from now on: the
    ``THREAD_VARIABLES`` (pools started later, torch when it is first imported, ``available_cores``),
    OpenCV's thread count, and torch's when it is already imported (importing it only for this would cost
    seconds in a process that never runs a network)."""
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


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
