"""``bench run``: every (image, method) pair denoised, written back to uint16, scored, recorded.

A run folder ``<out>/<dataset>/<run-id>/`` holds:

* ``per_image.csv``  one row per (method, image), appended and flushed as each finishes, so an
  interrupted run keeps everything it computed;
* ``summary.csv`` / ``summary.md``  per-method means (written at the end, also after Ctrl-C);
* ``run.json``  command line, methods and parameters, noise mode, the levels of every file read, package
  versions, git commit, dataset fingerprint, status;
* ``noise.csv``  the noise profile handed to the methods for each image (when one was needed);
* ``errors.log``  full tracebacks of method failures;
* ``outputs/<method>/<image>.dng``  with ``--save-outputs``: exactly the files that were scored;
* ``crops.npz``  what ``bench report`` shows of the three images it picks, cut from the scored outputs
  (``bench.report.saved_crops``), so the report runs no method again.

Work is split into image tasks (``Task``: one image and every method it still needs, so its files are read,
hashed and decoded once for all of them) that run in this process, in local worker processes or on a Dask
cluster (``bench.executors``); a task sends each method's result as it finishes, and each is cached as it
arrives (``bench.cache``), so rerunning an interrupted or finished run recomputes nothing that finished.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import math
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from bench import provenance, tables
from bench.burst import BurstSpec
from bench.cache import InvalidEntry, ResultCache, require_number
from bench.datasets import BURST_DIR, NOISE_UNITS, Dataset, DatasetItem, fingerprint
from bench.core.errors import BenchError, RunInterrupted, first_line
from bench.evaluation import (NOISE_MODES, check_profile, estimate_key, input_paths, valid_estimate_record,
                              valid_noise_record)
from bench.core.metrics import score as competition_score
from bench.core.files import atomic_write, atomic_write_text, file_sha256
from bench.core.levels import black_text
from bench.core.rawio import write_dng
from bench.report.saved_crops import CROPS_FILE, ImageCrops, valid_crop_fact, write_run_crops
from bench.run_record import BurstRecord, DatasetRecord, LevelsRecord, MethodRecord, RunRecord
from bench.tasks import Task, image_tasks, relative_name, result_key, run_task
from methods.base import Method
from methods.registry import create_method

#: The measured columns of a per_image row, as the cache stores them.
_FACT_COLUMNS = ("psnr", "ssim", "ssim_col", "score", "seconds", "megapixels")


@dataclass
class RunConfig:
    """Everything a run needs; built by the command line or by a caller."""

    method_names: list[str]
    dataset: Dataset
    out_root: Path = Path("results")
    noise_mode: str = "estimate"
    save_outputs: bool = False
    params: dict[str, dict] = field(default_factory=dict)
    command: str = ""
    #: None: one frame per image. Otherwise burst methods get N frames (real ones where the dataset has
    #: them, else synthetic) and single-frame methods get frame 0.
    burst: BurstSpec | None = None
    #: Where the image tasks run: "local" with ``workers`` processes (1 = in this process), or
    #: "dask" on the scheduler at ``scheduler``.
    workers: int = 1
    executor: str = "local"
    scheduler: str | None = None
    #: True: compute everything again, ignoring (but refreshing) cached results.
    fresh: bool = False
    #: The result cache's folder (None: ``<cache root>/results``).
    cache_folder: Path | None = None


@dataclass
class RunResult:
    run_dir: Path
    summary: pd.DataFrame
    succeeded: int
    failed: int
    interrupted: bool = False
    #: Results taken from the cache instead of being computed.
    cached: int = 0
    #: The signal that interrupted the run (SIGINT or SIGTERM), or None.
    signal: int | None = None


def check_scorable(dataset: Dataset, noise_mode: str) -> None:
    """BenchError unless every image has ground truth and, for ``noise_mode`` "oracle", a true profile."""
    if not dataset.has_ground_truth:
        raise BenchError(f"{dataset.root}: has no ground truth, so it cannot be scored "
                         "(a test folder is for `bench export`)")
    if noise_mode not in NOISE_MODES:
        raise BenchError(f"--noise must be one of {NOISE_MODES}, got {noise_mode!r}")
    if noise_mode == "oracle":
        missing = [item.image_id for item in dataset.items if item.image_id not in dataset.true_noise]
        if missing:
            raise BenchError(f"{dataset.root}: --noise oracle needs the true profile of image {missing[0]} "
                             "in noise_profile.csv (columns image,a,b)")
    for image_id, profile in dataset.true_noise.items():
        check_profile(profile, f"{dataset.root / 'noise_profile.csv'}, image {image_id}")


def run_benchmark(config: RunConfig, log: Callable[[str], None] | None = None) -> RunResult:
    """Run every method on every image of ``config.dataset`` and write the run folder.

    SIGINT and SIGTERM stop the run the same way: what finished is kept, the tables are written, and
    ``RunResult.signal`` says which signal it was; a second signal while the tables are written is noted
    and cannot lose them.
    """
    from bench.executors import make_executor

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    dataset = config.dataset
    check_scorable(dataset, config.noise_mode)
    methods = {name: create_method(name, config.params.get(name)) for name in config.method_names}
    unavailable = {name: type(m).unavailable_reason() for name, m in methods.items()}
    unavailable = {name: reason for name, reason in unavailable.items() if reason}
    for name, reason in unavailable.items():
        log(f"warning: method {name} cannot run here ({reason}); its rows are recorded as failed")
    frames = config.burst.frames if config.burst else 1
    moving = config.burst is not None and frames > 1 and not config.burst.static
    preflight = dataset.preflight(burst_frames=frames, linear=moving)  # every file read once: checked, hashed
    warned = dict.fromkeys(preflight.warnings)
    for message in warned:
        log(f"warning: {message}")
    file_levels = {relative_name(path, dataset.root): found.record() for path, found in preflight.levels.items()}
    paths = {item.image_id: input_paths(dataset, item, config.burst) for item in dataset.items}
    expected = {image_id: tuple(preflight.hashes[path] for path in item_paths)
                for image_id, item_paths in paths.items()}
    cache = ResultCache(config.cache_folder, enabled=not config.fresh, warn=log)

    run_dir = _new_run_dir(config.out_root / dataset.name)
    record = RunRecord(
        command=config.command, started=dt.datetime.now().isoformat(timespec="seconds"), status="running",
        dataset=DatasetRecord(dataset.name, str(dataset.root), len(dataset.items), dataset.levels.black,
                              dataset.levels.white, dataset.origin),
        levels=LevelsRecord(dataset.levels.mode, file_levels),
        noise=config.noise_mode,
        burst=BurstRecord.of(config.burst, dataset.root / BURST_DIR if dataset.has_real_bursts else None),
        methods={name: MethodRecord(m.kind, m.param_values(), unavailable.get(name)) for name, m in methods.items()},
        versions=provenance.package_versions(), git_commit=provenance.git_commit())
    record.write(run_dir)

    # blind estimates of this run's noisy files: from the cache, then from the tasks as they finish
    estimates: dict[str, dict] = {}
    if config.noise_mode == "estimate":
        for item in dataset.items:
            known = cache.get("noise", estimate_key(expected[item.image_id][0], dataset.levels),
                              valid_estimate_record)
            if known is not None:
                estimates[item.image_id] = known

    # every (image, method) pair: a failed row (method unavailable), a cached result, or one to compute
    rows: list[dict] = []
    noise_rows: dict[str, dict] = {}
    crops: dict[tuple[str, str], dict] = {}  # (method, image) -> the report's crop of a successful result
    images: dict[str, ImageCrops] = {}  # image -> its noisy and ground-truth crops etc., from a task
    to_compute: list[tuple[DatasetItem, list[str]]] = []  # each image and the methods it still needs
    cached = 0
    resources = {name: _resource_hashes(method) for name, method in methods.items() if name not in unavailable}
    for item in dataset.items:
        needed = []
        for name, method in methods.items():
            if name in unavailable:
                rows.append(_failed_row(name, item.image_id, f"unavailable: {unavailable[name]}"))
                continue
            key = result_key(method, resources[name], expected[item.image_id], dataset, item, config.noise_mode,
                             config.burst)
            facts = cache.get("result", key, valid_result_facts)
            if facts is not None and _reuse_output(facts, method, item, run_dir, config.save_outputs):
                rows.append(_row(name, item.image_id, facts))
                crops[(name, item.image_id)] = facts["crop"]
                if facts["noise"]:
                    noise_rows.setdefault(item.image_id, facts["noise"])
                cached += 1
                continue
            needed.append(name)
        if needed:
            to_compute.append((item, needed))
    to_run = sum(len(names) for _, names in to_compute)
    total = len(rows) + to_run
    if cached:
        log(f"{cached} of {total} results taken from the cache ({cache.folder}; --fresh recomputes them)")

    def tasks_with_known_estimates(tasks: list[Task]):
        """The tasks, each with the blind estimate of its noisy file when one is known by the time a worker
        takes it (executors pull tasks one at a time), so an image whose methods are split over several
        tasks is estimated once, not once per task."""
        for task in tasks:
            yield dataclasses.replace(task, known_noise=estimates.get(task.item.image_id))

    order = {(item.image_id, name): k for k, (item, name) in
             enumerate((item, name) for item in dataset.items for name in methods)}
    guard = _SignalGuard(log)
    with guard, (run_dir / "per_image.csv").open("w", newline="") as per_image_file:
        writer = csv.DictWriter(per_image_file, fieldnames=tables.PER_IMAGE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        per_image_file.flush()
        executor = None
        try:
            guard.arm()
            tasks: list[Task] = []
            if to_compute:
                executor = make_executor(config.executor, config.workers, config.scheduler)
                tasks = image_tasks(to_compute, methods, resources, dataset, config.noise_mode, config.burst,
                                    config.save_outputs, expected, executor.workers)
                if executor.workers > 1:
                    log(f"{to_run} results in {len(tasks)} tasks on {executor.workers} workers ({config.executor})")
            started, computed = time.monotonic(), 0
            unreported = {task.number: list(task.method_names) for task in tasks}
            for task, result in (executor.run(run_task, tasks_with_known_estimates(tasks)) if executor else ()):
                guard.disarm()  # a signal from here on waits until this result is recorded
                if isinstance(result, BaseException):  # the task could not run or finish: its worker died, say
                    if isinstance(result, KeyboardInterrupt):
                        raise result
                    new_rows = [_failed_row(name, task.item.image_id, f"worker failed: {first_line(result)}")
                                for name in unreported[task.number]]
                    unreported[task.number] = []
                else:
                    unreported[task.number].remove(result.method)
                    new_rows = [_record_result(task, result, run_dir, dataset, cache, estimates, noise_rows,
                                               crops, images, log)]
                for message in getattr(result, "warnings", ()):
                    if message not in warned:
                        warned[message] = None
                        log(f"warning: {message}")
                for row in new_rows:
                    rows.append(row)
                    writer.writerow(row)
                    computed += 1
                    log(tables.progress_line(f"[{len(rows)}/{total}] image {task.item.image_id}", row)
                        + tables.eta_text(time.monotonic() - started, computed, to_run))
                per_image_file.flush()
                guard.arm()
            guard.disarm()
        except KeyboardInterrupt as exc:  # RunInterrupted (SIGINT, SIGTERM) or a plain one
            guard.disarm()
            guard.received = guard.received or getattr(exc, "signum", signal.SIGINT)
            log(f"interrupted ({signal.Signals(guard.received).name}): writing the tables of what finished")
        finally:
            guard.disarm()
            if executor is not None:
                executor.close()

        rows.sort(key=lambda r: order[(str(r["image"]), r["method"])])
        _write_csv(run_dir / "per_image.csv", rows, tables.PER_IMAGE_COLUMNS)
        if noise_rows:
            noise_table = [{"image": item.image_id, **noise_rows[item.image_id], "units": NOISE_UNITS,
                            **_level_columns(file_levels[relative_name(item.noisy_path, dataset.root)])}
                           for item in dataset.items if item.image_id in noise_rows]
            pd.DataFrame(noise_table).to_csv(run_dir / "noise.csv", index=False)
        per_image = pd.DataFrame(rows, columns=tables.PER_IMAGE_COLUMNS)
        summary = tables.summarize(per_image, list(methods))
        summary.to_csv(run_dir / "summary.csv", index=False)
        _write_crops(run_dir, dataset, per_image, methods, crops, expected, images, log)
        succeeded = int((per_image["status"] == "ok").sum())
        failed = len(per_image) - succeeded
        interrupted = guard.received is not None
        file_hashes = sorted({(relative_name(path, dataset.root), digest) for image_id, item_paths in paths.items()
                              for path, digest in zip(item_paths, expected[image_id])})
        record.finished = dt.datetime.now().isoformat(timespec="seconds")
        record.status = "interrupted" if interrupted else "finished"
        record.dataset_fingerprint = fingerprint(file_hashes)
        record.results = {"succeeded": succeeded, "failed": failed, "from_cache": cached}
        record.execution = {"executor": config.executor, "workers": config.workers, "fresh": config.fresh}
        record.write(run_dir)
        atomic_write_text(run_dir / "summary.md", tables.summary_markdown(summary, record))
    return RunResult(run_dir, summary, succeeded, failed, interrupted, cached, guard.received)


class _SignalGuard:
    """SIGINT and SIGTERM handling for one run (main thread only; elsewhere it does nothing).

    While *armed* (waiting for results) the first signal raises RunInterrupted at once; while disarmed
    (recording a result, writing the tables) a signal is only noted, and the run stops at its next arm.
    Any later signal is noted with a line and changes nothing: the tables are always written.
    """

    def __init__(self, log: Callable[[str], None]):
        self._log = log
        self._armed = False
        self._previous: dict = {}
        self.received: int | None = None

    def __enter__(self) -> "_SignalGuard":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        """Give the signals back; after an interrupted run, ignore them instead, so that one more Ctrl-C
        while the process exits cannot kill it by signal and change its exit status."""
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_IGN if self.received is not None else handler)

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            self._log(f"{signal.Signals(signum).name} again: still writing the tables of what finished")
            return
        self.received = signum
        if self._armed:
            self._armed = False
            raise RunInterrupted(signum)

    def arm(self) -> None:
        """From now on a signal stops the run at once; one that came while disarmed stops it now."""
        if self.received is not None:
            raise RunInterrupted(self.received)
        self._armed = True

    def disarm(self) -> None:
        self._armed = False


def _record_result(task: "Task", result, run_dir: Path, dataset: Dataset, cache: ResultCache,
                   estimates: dict[str, dict], noise_rows: dict[str, dict], crops: dict[tuple[str, str], dict],
                   images: dict[str, ImageCrops], log: Callable[[str], None]) -> dict:
    """Turn one result a task sent back into its per_image row: write its output and errors, cache its facts
    (under the key of the bytes it actually read) and its blind noise estimate, keep its crop (and its
    image's crops, for ``crops.npz``)."""
    name, image_id = result.method, task.item.image_id
    if result.traceback:
        with (run_dir / "errors.log").open("a") as f:
            f.write(f"--- {name} on image {image_id}\n{result.traceback}\n")
    if result.noise_computed and result.noise:
        estimates.setdefault(image_id, result.noise)
        cache.put("noise", estimate_key(result.input_hashes[0], dataset.levels), result.noise)
    if result.noise and not result.changed_inputs:
        noise_rows.setdefault(image_id, result.noise)
    if result.facts is None:
        return _failed_row(name, image_id, result.error)
    facts = {**result.facts, "noise": result.noise, "output": None, "crop": result.crop}
    if result.changed_inputs:  # a true fact about the new content, but not about the files this run hashed
        cache.put("result", result.key, facts)
        log(f"warning: {', '.join(result.changed_inputs)} changed during the run")
        return _failed_row(name, image_id, f"input changed during the run: {', '.join(result.changed_inputs)} "
                                           "(its content differs from the run's; run again)")
    if result.mosaic is not None:
        path = _output_path(run_dir, name, image_id)
        write_dng(result.mosaic, path, template=task.item.noisy_path, cfa=result.cfa,
                  black_level=result.levels.black_level, white_level=result.levels.white)
        facts["output"] = {"path": str(path.resolve()), "sha256": file_sha256(path)}
    cache.put("result", result.key, facts)
    crops[(name, image_id)] = result.crop
    if result.image_crops is not None:
        images.setdefault(image_id, result.image_crops)
    return _row(name, image_id, facts)


def valid_result_facts(body: dict) -> dict:
    """A cached result's facts if they have the schema ``_record_result`` stores and are consistent (the
    Score is the Score of the PSNR and SSIM stored beside it); InvalidEntry otherwise."""
    facts = {"psnr": require_number(body, "psnr"), "ssim": require_number(body, "ssim", -1.0, 1.0),
             "ssim_col": require_number(body, "ssim_col", -1.0, 1.0), "score": require_number(body, "score", 0.0),
             "seconds": require_number(body, "seconds", 0.0), "megapixels": require_number(body, "megapixels", 1e-9)}
    if not math.isclose(facts["score"], competition_score(facts["psnr"], facts["ssim"]), rel_tol=1e-9, abs_tol=1e-9):
        raise InvalidEntry("score is not the Score of psnr and ssim")
    noise = body.get("noise")
    if noise is not None:
        noise = valid_noise_record(noise)
    output = body.get("output")
    if output is not None and not (isinstance(output, dict) and isinstance(output.get("path"), str)
                                   and isinstance(output.get("sha256"), str)):
        raise InvalidEntry(f"output is {output!r}")
    try:
        crop = valid_crop_fact(body.get("crop"))
    except ValueError as exc:
        raise InvalidEntry(f"crop: {exc}") from None
    return {**facts, "noise": noise, "output": output, "crop": crop}


def _resource_hashes(method: Method) -> tuple[str, ...]:
    """SHA-256 of each of the method's resource files (weights), read once per run."""
    return tuple(file_sha256(path) if path.is_file() else f"missing {path}" for path in method.resource_files())


def _level_columns(levels: dict) -> dict:
    """noise.csv's ``black`` (e.g. ``1024``, or ``1000/1010/1020/1030`` per plane) and ``white`` of a file's
    levels as run.json records them: the units (a, b) are in."""
    return {"black": black_text(levels["black"]), "white": levels["white"]}


def _output_path(run_dir: Path, method: str, image_id: str) -> Path:
    return run_dir / "outputs" / method / f"{image_id}.dng"


def _reuse_output(facts: dict, method: Method, item: DatasetItem, run_dir: Path, save_outputs: bool) -> bool:
    """Whether a cached result can stand for this run: always, unless outputs are saved, in which case the
    DNG it wrote is copied into this run, and it cannot stand when that file is gone or changed."""
    if not save_outputs:
        return True
    output = facts["output"]
    if not output or not Path(output["path"]).is_file() or file_sha256(Path(output["path"])) != output["sha256"]:
        return False
    target = _output_path(run_dir, method.name, item.image_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(output["path"], target)
    return True


def _write_crops(run_dir: Path, dataset: Dataset, per_image: pd.DataFrame, methods: dict[str, Method],
                 crops: dict[tuple[str, str], dict], expected: dict[str, tuple[str, ...]],
                 images: dict[str, ImageCrops], log: Callable[[str], None]) -> None:
    """Write the run's ``crops.npz`` for the report; a problem is one warning, never the run's tables."""
    references = {name for name, method in methods.items() if method.kind == "reference"}
    try:
        write_run_crops(run_dir, dataset, per_image, references, crops, expected, images)
    except Exception as exc:
        log(f"warning: {run_dir / CROPS_FILE}: not written ({first_line(exc)}); `bench report` will run the "
            "methods again for its crops")


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write a whole CSV atomically (temporary file renamed into place)."""
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def _row(method: str, image_id: str, facts: dict) -> dict:
    """The per_image row of a measured result: this run's method name and image id beside the facts."""
    return {"method": method, "image": image_id, **{k: facts[k] for k in _FACT_COLUMNS}, "status": "ok", "error": ""}


def _failed_row(method: str, image_id: str, error: str) -> dict:
    return {"method": method, "image": image_id, "psnr": math.nan, "ssim": math.nan, "ssim_col": math.nan,
            "score": math.nan, "seconds": math.nan, "megapixels": math.nan, "status": "failed", "error": error}


def _new_run_dir(parent: Path) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for suffix in ["", *(f"-{k}" for k in range(2, 1000))]:
        candidate = parent / f"{stamp}{suffix}"
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise BenchError(f"{parent}: could not create a new run folder")
