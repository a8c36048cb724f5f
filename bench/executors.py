"""Where a run's (method, image) tasks execute: this process, a pool of local processes, or a Dask cluster.

Every executor has the same two methods: ``run(function, tasks)`` yields ``(task, result)`` pairs in the
order the tasks finish, and ``close()`` stops whatever is still running (also after Ctrl-C). ``function``
must be a module-level function and ``tasks`` picklable, so that the same task list runs anywhere. When a
task could not run at all (its worker process died, a cluster lost it), its result is the exception
instead, so the caller can record the failure and go on.

Local worker processes are started with ``spawn`` (never inheriting the parent's threads or locks), and each
gets an equal share of the cores: ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` and
``RAW_BENCH_CORES`` are set for it before it starts, and its initialiser sets torch's and OpenCV's thread
counts, so N workers never run N times all cores' worth of threads.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Callable, Iterator

from bench.errors import BenchError

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAW_BENCH_CORES")
EXECUTORS = ("local", "dask")


def available_cores() -> int:
    """Cores this process may use: ``RAW_BENCH_CORES`` when a parent set it, else the CPU affinity."""
    if os.environ.get("RAW_BENCH_CORES", "").isdigit():
        return max(1, int(os.environ["RAW_BENCH_CORES"]))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class InProcessExecutor:
    """Runs the tasks one after another in this process (``--workers 1``)."""

    workers = 1

    def run(self, function: Callable, tasks: list) -> Iterator[tuple[object, object]]:
        for task in tasks:
            yield task, function(task)

    def close(self) -> None:
        pass


def _limit_threads(threads: int) -> None:
    """Worker initialiser: thread counts of the libraries that read no environment variable."""
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


class LocalProcessExecutor:
    """A pool of ``workers`` spawned processes, each limited to ``cores // workers`` threads."""

    def __init__(self, workers: int):
        self.workers = workers
        self.threads = max(1, available_cores() // workers)
        saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
        os.environ.update({name: str(self.threads) for name in _THREAD_VARIABLES})
        try:  # children copy the environment when they start, which the pool does lazily: start them now
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_limit_threads, initargs=(self.threads,))
            for future in [self._pool.submit(os.getpid) for _ in range(workers)]:
                future.result()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def run(self, function: Callable, tasks: list) -> Iterator[tuple[object, object]]:
        pending: dict[Future, object] = {self._pool.submit(function, task): task for task in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                yield pending.pop(future), (future.result() if error is None else error)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Sends the tasks to the Dask scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``). The workers
    must be able to import this package and read the dataset's files at the same paths."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise BenchError("--executor dask needs the distributed package (pip install distributed)") from None
        try:
            self._client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise BenchError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc})") from None
        self.workers = len(self._client.scheduler_info().get("workers", {}))

    def run(self, function: Callable, tasks: list) -> Iterator[tuple[object, object]]:
        from distributed import as_completed

        # pure=False: a task's result is never shared with an equal-looking one (each is keyed by the run)
        futures = {self._client.submit(function, task, pure=False): task for task in tasks}
        self._futures = list(futures)
        for future in as_completed(futures):
            error = future.exception()
            yield futures[future], (future.result() if error is None else error)

    def close(self) -> None:
        for future in getattr(self, "_futures", []):
            future.cancel()
        self._client.close()


def make_executor(kind: str, workers: int, scheduler: str | None):
    """The executor of ``--executor kind`` with ``--workers`` / ``--scheduler``."""
    if kind == "dask":
        if not scheduler:
            raise BenchError("--executor dask needs --scheduler ADDRESS (e.g. tcp://127.0.0.1:8786)")
        return DaskExecutor(scheduler)
    if kind != "local":
        raise BenchError(f"--executor must be one of {EXECUTORS}, got {kind!r}")
    if workers < 1:
        raise BenchError(f"--workers must be at least 1, got {workers}")
    return InProcessExecutor() if workers == 1 else LocalProcessExecutor(workers)
