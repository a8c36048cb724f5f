"""Where a run's tasks execute: this process, a pool of local processes, or a Dask cluster.

Every executor has the same two methods: ``run(function, tasks)`` yields ``(task, result)`` pairs as
results come, and ``close()`` stops whatever is still running (also after Ctrl-C). ``function`` must be a
module-level function and ``tasks`` picklable, so that the same task list runs anywhere; local executors
take the tasks from the iterable one at a time, as workers become free. ``function(task)`` returns the
task's result, or is a generator that yields several (a run's image task yields one result per method):
each is yielded as ``(task, part)`` the moment it is made (on Dask, when the whole task is done). When a task
could not run or finish (its worker process died, a cluster lost it), its last result is the exception
instead, so the caller can record the failure of what did not come back and go on.

Local worker processes are started with ``spawn`` (never inheriting the parent's threads or locks), and each
gets an equal share of the cores: ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` and
``RAW_BENCH_CORES`` are set for it before it starts, and it sets OpenCV's thread count (torch takes its
count from those variables when a task imports it), so N workers never run N times all cores' worth of
threads; Dask workers limit themselves the same way (``dask_task``). Each worker runs one task at a time, so when one
dies (the out-of-memory killer, a crash in a C extension) exactly one task is lost and a new worker takes
its place; workers ignore Ctrl-C (the parent stops them) and end with the parent, also after ``kill -9``.
"""

from __future__ import annotations

import inspect
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from functools import cache
from multiprocessing.connection import Connection, wait
from typing import Callable, Iterable, Iterator

from bench.core.errors import BenchError, first_line
from bench.core.processes import THREAD_VARIABLES, available_cores, die_with_parent, limit_threads

EXECUTORS = ("local", "dask")


class InProcessExecutor:
    """Runs the tasks one after another in this process (``--workers 1``)."""

    workers = 1

    def run(self, function: Callable, tasks: Iterable) -> Iterator[tuple[object, object]]:
        for task in tasks:
            for part in _parts(function(task)):
                yield task, part

    def close(self) -> None:
        pass


def _parts(result) -> Iterator:
    """The results of one task: each item of a generator, or the one result."""
    if inspect.isgenerator(result):
        yield from result
    else:
        yield result


def all_parts(function: Callable, task) -> list:
    """Every result of ``function(task)`` as a list (a generator's items, or the one result): what a Dask
    worker sends back, since a generator cannot travel."""
    return list(_parts(function(task)))


class _TaskDone:
    """The message a local worker sends after a task's last result."""


def _worker_main(connection, threads: int, parent_pid: int) -> None:
    """A local worker: run ``(function, task)`` messages until ``None`` or the pipe closes, sending each
    result of a task as it is made, then a ``_TaskDone``. Ctrl-C in the terminal is the parent's to handle (it
    stops the workers), so the worker ignores SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)
    limit_threads(threads)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        function, task = message
        try:
            for part in _parts(function(task)):
                connection.send(part)
        except Exception as exc:  # sent back as the task's last result, like a lost task
            connection.send(RuntimeError(first_line(exc)))
        connection.send(_TaskDone())


class WorkerDied(RuntimeError):
    """The worker process running a task ended before sending its result (killed, crashed)."""


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = ", e.g. by the out-of-memory killer" if -exitcode == signal.SIGKILL else ""
        return f"worker process was killed by {name}{hint}"
    return f"worker process exited with status {exitcode}"


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    task: object = None
    busy: bool = False


class LocalProcessExecutor:
    """``workers`` spawned processes, each limited to ``cores // workers`` threads and given one task at a
    time. A worker that dies costs only the task it was running: that task's result is a ``WorkerDied``,
    a new worker takes its place, and every other task goes on. Workers end with the parent process, also
    when it is killed (``die_with_parent``)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.threads = max(1, available_cores() // workers)
        self._context = multiprocessing.get_context("spawn")
        self._pool: list[_Worker] = []
        try:
            for _ in range(workers):
                self._pool.append(self._start_worker())
        except BaseException:
            self.close()
            raise

    def _start_worker(self) -> _Worker:
        """A new worker process; it copies the thread variables set here while it starts."""
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update({name: str(self.threads) for name in THREAD_VARIABLES})
        try:
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=_worker_main, args=(theirs, self.threads, os.getpid()),
                                            name="raw-bench-worker", daemon=True)
            process.start()
            theirs.close()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        return _Worker(process, ours)

    def run(self, function: Callable, tasks: Iterable) -> Iterator[tuple[object, object]]:
        """Yield ``(task, result)`` as results come; ``tasks`` is consumed one task at a time, as workers
        become free."""
        remaining = iter(tasks)
        exhausted = False
        while True:
            for index, worker in enumerate(self._pool):
                if worker.busy or exhausted:
                    continue
                task = next(remaining, _END)
                if task is _END:
                    exhausted = True
                    break
                try:
                    worker.connection.send((function, task))
                except (BrokenPipeError, OSError):  # it died while idle: start another, give it the task
                    self._stop(worker)
                    worker = self._pool[index] = self._start_worker()
                    worker.connection.send((function, task))
                worker.task, worker.busy = task, True
            busy = [worker for worker in self._pool if worker.busy]
            if not busy:
                return
            ready = set(wait([w.connection for w in busy] + [w.process.sentinel for w in busy]))
            for index, worker in enumerate(self._pool):
                if not worker.busy or (worker.connection not in ready and worker.process.sentinel not in ready):
                    continue
                yield from self._receive(index, worker)

    def _receive(self, index: int, worker: _Worker) -> Iterator[tuple[object, object]]:
        """The results a ready worker has sent, as ``(task, result)``: every message waiting in its pipe. When
        its task is done, the worker is free again; when it died first, the last result is a ``WorkerDied``
        and a new worker takes its place."""
        task, broken = worker.task, False
        while not broken and worker.connection.poll():
            try:
                message = worker.connection.recv()
            except (EOFError, OSError):
                broken = True
                break
            if isinstance(message, _TaskDone):
                worker.task, worker.busy = None, False
                return
            yield task, message
        if not broken and worker.process.is_alive():
            return  # nothing more for now: the task goes on
        worker.process.join(timeout=5)
        reason = _death_reason(worker.process.exitcode)
        worker.task, worker.busy = None, False
        self._stop(worker)
        self._pool[index] = self._start_worker()
        yield task, WorkerDied(reason)

    @staticmethod
    def _stop(worker: _Worker) -> None:
        """End one worker now (SIGTERM, then SIGKILL) and release its pipe."""
        if worker.process.is_alive():
            worker.process.terminate()
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=5)
        worker.connection.close()

    def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones (after an interrupt) are terminated,
        so closing never waits for a long task."""
        for worker in self._pool:
            if not worker.busy and worker.process.is_alive():
                try:
                    worker.connection.send(None)
                except (BrokenPipeError, OSError):
                    pass
        deadline = time.monotonic() + 5
        for worker in self._pool:
            if not worker.busy:
                worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            self._stop(worker)
        self._pool = []


_END = object()


class DaskExecutor:
    """Sends the tasks to the Dask scheduler at ``address`` (e.g. ``tcp://10.0.0.5:8786``). The workers
    must be able to import this package and read the dataset's files at the same paths. Like a local worker,
    each Dask worker process runs its tasks with its share of its machine's cores: the cores over the task
    slots (worker threads) the cluster has on that machine (``dask_task``)."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise BenchError("--executor dask needs the distributed package (pip install distributed)") from None
        try:
            self._client = Client(address, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:  # unreachable, or a malformed address
            raise BenchError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc})") from None
        workers = self._client.scheduler_info().get("workers", {})
        self.workers = len(workers)
        slots_by_host: dict[str, int] = {}
        for info in workers.values():
            slots_by_host[info["host"]] = slots_by_host.get(info["host"], 0) + info["nthreads"]
        #: worker address -> the task slots of all workers on its machine
        self._slots = {address: slots_by_host[info["host"]] for address, info in workers.items()}

    def run(self, function: Callable, tasks: Iterable) -> Iterator[tuple[object, object]]:
        from distributed import as_completed

        tasks = list(tasks)
        # pure=False: a task's result is never shared with an equal-looking one (each is keyed by the run)
        futures = {self._client.submit(dask_task, function, task, self._slots, pure=False): task for task in tasks}
        self._futures = list(futures)
        for future in as_completed(futures):
            error = future.exception()
            for part in (future.result() if error is None else [error]):
                yield futures[future], part

    def close(self) -> None:
        for future in getattr(self, "_futures", []):
            future.cancel()
        self._client.close()


def dask_task(function: Callable, task, slots: dict[str, int]) -> list:
    """What a Dask worker runs for one task: ``all_parts(function, task)``, in a process limited to its share
    of the cores (``slots``: worker address -> task slots on its machine; a worker that joined later counts
    its own threads)."""
    from distributed import get_worker

    worker = get_worker()
    _share_cores(slots.get(worker.address, worker.state.nthreads))
    return all_parts(function, task)


@cache
def _share_cores(slots: int) -> int:
    """Limit this process, once, to ``available_cores() // slots`` threads (at least 1); returns that."""
    threads = max(1, available_cores() // max(1, slots))
    limit_threads(threads)
    return threads


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
