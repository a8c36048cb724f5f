"""``bench run``: every (image, method) pair denoised, written back to uint16, scored, recorded.

A run folder ``<out>/<dataset>/<run-id>/`` holds:

* ``per_image.csv``  one row per (method, image), appended and flushed as each finishes, so an
  interrupted run keeps everything it computed;
* ``summary.csv`` / ``summary.md``  per-method means (written at the end, also after Ctrl-C);
* ``run.json``  command line, methods and parameters, noise mode, package versions, git commit,
  dataset fingerprint, status;
* ``noise.csv``  the noise profile handed to the methods for each image (when one was needed);
* ``errors.log``  full tracebacks of method failures;
* ``outputs/<method>/<image>.dng``  with ``--save-outputs``: exactly the files that were scored.

Work is split into (method, image) tasks that run in this process, in local worker processes or on a Dask
cluster (``bench.executors``); each result is cached as it arrives (``bench.cache``), so rerunning an
interrupted or finished run recomputes nothing that finished.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import shutil
import json
import math
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench import provenance, tables
from bench.burst import BurstSpec, packed_frames, synthesize_burst
from bench.cache import ResultCache, file_sha256, make_key
from bench.datasets import Dataset, DatasetItem, LoadedPair, fingerprint, load_burst_frames, load_item
from bench.errors import BenchError
from bench.metrics import score_mosaic
from bench.noise import NoiseProfile, estimate_noise
from bench.pipeline import packed_to_mosaic
from bench.rawio import write_dng
from methods.base import Method, NoisyRaw
from methods.registry import create_method

NOISE_MODES = ("estimate", "oracle")


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
    #: Where the (method, image) tasks run: "local" with ``workers`` processes (1 = in this process), or
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


def run_benchmark(config: RunConfig, log: Callable[[str], None] | None = None) -> RunResult:
    """Run every method on every image of ``config.dataset`` and write the run folder."""
    from bench.executors import make_executor

    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    dataset = config.dataset
    check_scorable(dataset, config.noise_mode)
    methods = {name: create_method(name, config.params.get(name)) for name in config.method_names}
    unavailable = {name: type(m).unavailable_reason() for name, m in methods.items()}
    unavailable = {name: reason for name, reason in unavailable.items() if reason}
    for name, reason in unavailable.items():
        log(f"warning: method {name} cannot run here ({reason}); its rows are recorded as failed")
    dataset.check_files(burst_frames=config.burst.frames if config.burst else 1)
    input_hashes = {item.image_id: _input_hashes(dataset, item, config.burst) for item in dataset.items}
    cache = ResultCache(config.cache_folder, enabled=not config.fresh)

    run_dir = _new_run_dir(config.out_root / dataset.name)
    record = {
        "command": config.command,
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "status": "running",
        "dataset": {"name": dataset.name, "root": str(dataset.root), "images": len(dataset.items),
                    "black_level": dataset.black_level, "white_level": dataset.white_level},
        "noise": config.noise_mode,
        "burst": _burst_record(config.burst, dataset),
        "methods": {name: {"kind": m.kind, "params": m.param_values(), "unavailable": unavailable.get(name)}
                    for name, m in methods.items()},
        "versions": provenance.package_versions(),
        "git_commit": provenance.git_commit(),
    }
    _write_json(run_dir / "run.json", record)

    # every (image, method) pair: a failed row (method unavailable), a cached result, or a task to run
    rows: list[dict] = []
    noise_rows: dict[str, dict] = {}
    tasks: list[Task] = []
    cached = 0
    resources = {name: _resource_hashes(method) for name, method in methods.items() if name not in unavailable}
    for item in dataset.items:
        for name, method in methods.items():
            if name in unavailable:
                rows.append(_failed_row(name, item.image_id, f"unavailable: {unavailable[name]}"))
                continue
            key = _task_key(method, resources[name], dataset, item, input_hashes[item.image_id], config)
            entry = cache.get("result", key)
            if entry is not None and _reuse_output(entry, method, item, run_dir, config.save_outputs):
                rows.append(entry["row"])
                if entry.get("noise"):
                    noise_rows.setdefault(item.image_id, entry["noise"])
                cached += 1
                continue
            tasks.append(Task(name, config.params.get(name, {}), dataset, item, config.noise_mode, config.burst,
                              config.save_outputs, cache.folder, key))
    total = len(rows) + len(tasks)
    if cached:
        log(f"{cached} of {total} results taken from the cache ({cache.folder}; --fresh recomputes them)")

    interrupted = False
    order = {(item.image_id, name): k for k, (item, name) in
             enumerate((item, name) for item in dataset.items for name in methods)}
    with (run_dir / "per_image.csv").open("w", newline="") as per_image_file:
        writer = csv.DictWriter(per_image_file, fieldnames=tables.PER_IMAGE_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        per_image_file.flush()
        executor = None
        try:
            if tasks:
                executor = make_executor(config.executor, config.workers, config.scheduler)
                if executor.workers > 1:
                    log(f"{len(tasks)} tasks on {executor.workers} workers ({config.executor})")
            started, computed = time.monotonic(), 0
            for task, result in (executor.run(run_task, tasks) if executor else ()):
                if isinstance(result, BaseException):  # the task could not run: its worker died, say
                    if isinstance(result, KeyboardInterrupt):
                        raise result
                    message = f"{type(result).__name__}: {result}".splitlines()[0]
                    result = TaskResult(_failed_row(task.method, task.item.image_id, f"worker failed: {message}"))
                row = result.row
                if result.traceback:
                    with (run_dir / "errors.log").open("a") as f:
                        f.write(f"--- {task.method} on image {task.item.image_id}\n{result.traceback}\n")
                if result.mosaic is not None:
                    write_dng(result.mosaic, _output_path(run_dir, task.method, task.item.image_id),
                              template=task.item.noisy_path, cfa=result.cfa, black_level=dataset.black_level,
                              white_level=dataset.white_level)
                if result.noise:
                    noise_rows.setdefault(task.item.image_id, result.noise)
                if row["status"] == "ok":
                    cache.put("result", task.key, _cache_entry(row, result, run_dir, task))
                rows.append(row)
                writer.writerow(row)
                per_image_file.flush()
                computed += 1
                log(_progress_line(f"[{len(rows)}/{total}] image {task.item.image_id}", row)
                    + _eta(time.monotonic() - started, computed, len(tasks)))
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted: writing the tables of what finished")
        finally:
            if executor is not None:
                executor.close()

    rows.sort(key=lambda r: order[(str(r["image"]), r["method"])])
    _write_csv(run_dir / "per_image.csv", rows, tables.PER_IMAGE_COLUMNS)
    if noise_rows:
        noise_table = [{"image": item.image_id, **noise_rows[item.image_id]} for item in dataset.items
                       if item.image_id in noise_rows]
        pd.DataFrame(noise_table).to_csv(run_dir / "noise.csv", index=False)
    per_image = pd.DataFrame(rows, columns=tables.PER_IMAGE_COLUMNS)
    summary = tables.summarize(per_image, list(methods))
    summary.to_csv(run_dir / "summary.csv", index=False)
    succeeded = int((per_image["status"] == "ok").sum())
    failed = len(per_image) - succeeded
    file_hashes = sorted({pair for hashes in input_hashes.values() for pair in hashes})
    record.update({
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "status": "interrupted" if interrupted else "finished",
        "dataset_fingerprint": fingerprint(file_hashes),
        "results": {"succeeded": succeeded, "failed": failed, "from_cache": cached},
        "execution": {"executor": config.executor, "workers": config.workers, "fresh": config.fresh},
    })
    _write_json(run_dir / "run.json", record)
    (run_dir / "summary.md").write_text(_summary_markdown(summary, record, run_dir))
    return RunResult(run_dir, summary, succeeded, failed, interrupted, cached)


@dataclass(frozen=True)
class Task:
    """One (method, image) result to compute; picklable, so that any executor can run it (``run_task``)."""

    method: str
    params: dict  # the run's parameter overrides (others keep their defaults)
    dataset: Dataset
    item: DatasetItem
    noise_mode: str
    burst: BurstSpec | None
    return_mosaic: bool
    cache_folder: Path
    key: str


@dataclass
class TaskResult:
    """What a task sends back: its per_image row, the noise profile it used (``{a, b, source, seconds}``,
    None for reference methods), the written-back mosaic when asked for, the frame's CFA and, for a
    failure, the traceback."""

    row: dict
    noise: dict | None = None
    mosaic: np.ndarray | None = None
    cfa: str = "BGGR"
    traceback: str = ""


def run_task(task: Task) -> TaskResult:
    """Load one image, give it to one method, write the result back to uint16 and score it. Never raises
    for a method's fault or an unreadable input: those come back as failed rows."""
    dataset, image_id = task.dataset, task.item.image_id
    try:
        pair = load_item(dataset, task.item)
        known = _cached_estimate(task, pair) if task.noise_mode == "estimate" else None
        raw = make_noisy_raw(pair, dataset, task.noise_mode, task.burst, known_estimate=known)
    except BenchError as exc:
        return TaskResult(_failed_row(task.method, image_id, f"input error: {exc}"))
    method = create_method(task.method, task.params)
    noise = None
    try:
        if method.kind != "reference":
            started = time.perf_counter()
            profile = raw.noise
            seconds = known["seconds"] if known else time.perf_counter() - started
            noise = {"a": profile.a, "b": profile.b, "source": profile.source, "seconds": seconds}
            if task.noise_mode == "estimate" and known is None:
                ResultCache(task.cache_folder).put("noise", _estimate_key(pair), noise)
        method_input = raw if method.kind == "burst" else raw.reference_only()
        mosaic, seconds = denoise_to_mosaic(method, method_input, dataset)
        scores = score_mosaic(pair.gt.mosaic, mosaic, data_range=dataset.white_level)
    except Exception as exc:  # a failing method must never take the run down
        message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        return TaskResult(_failed_row(task.method, image_id, message), noise, traceback=traceback.format_exc())
    row = {"method": task.method, "image": image_id, "psnr": scores.psnr, "ssim": scores.ssim,
           "ssim_col": scores.ssim_col, "score": scores.score, "seconds": seconds,
           "megapixels": pair.noisy.mosaic.size / 1e6, "status": "ok", "error": ""}
    return TaskResult(row, noise, mosaic if task.return_mosaic else None, pair.noisy.cfa)


def _estimate_key(pair: LoadedPair) -> str:
    """Cache key of the blind noise estimate of a noisy file (its content decides it)."""
    return make_key({"noisy": pair.noisy_sha256, "black": pair.noisy.black_level, "white": pair.noisy.white_level})


def _cached_estimate(task: Task, pair: LoadedPair) -> dict | None:
    return ResultCache(task.cache_folder).get("noise", _estimate_key(pair))


def _input_hashes(dataset: Dataset, item: DatasetItem, burst: BurstSpec | None) -> list[tuple[str, str]]:
    """(relative name, SHA-256) of every file a task on ``item`` reads."""
    paths = [item.noisy_path, item.gt_path]
    if burst is not None and burst.frames > 1 and dataset.has_real_bursts:
        paths += list(item.burst_paths[:burst.frames - 1])
    return [(_relative(path, dataset.root), file_sha256(path)) for path in paths]


def _resource_hashes(method: Method) -> list[str]:
    """SHA-256 of each of the method's resource files (weights), read once per run."""
    return [file_sha256(path) if path.is_file() else f"missing {path}" for path in method.resource_files()]


def _task_key(method: Method, resource_hashes: list[str], dataset: Dataset, item: DatasetItem,
              hashes: list[tuple[str, str]], config: RunConfig) -> str:
    """The cache key of one (method, image) result (see ``bench.cache``)."""
    true = dataset.true_noise.get(item.image_id)
    return make_key({
        "method": method.name, "params": method.param_values(),
        "resources": resource_hashes,
        "inputs": [digest for _, digest in hashes],
        "noise": config.noise_mode, "true_noise": [true.a, true.b] if config.noise_mode == "oracle" else None,
        "burst": dataclasses.asdict(config.burst) if config.burst else None,
        "levels": [dataset.black_level, dataset.white_level],
    })


def _output_path(run_dir: Path, method: str, image_id: str) -> Path:
    return run_dir / "outputs" / method / f"{image_id}.dng"


def _cache_entry(row: dict, result: TaskResult, run_dir: Path, task: Task) -> dict:
    entry = {"row": row, "noise": result.noise}
    if result.mosaic is not None:
        path = _output_path(run_dir, task.method, task.item.image_id)
        entry["output"] = {"path": str(path.resolve()), "sha256": file_sha256(path)}
    return entry


def _reuse_output(entry: dict, method: Method, item: DatasetItem, run_dir: Path, save_outputs: bool) -> bool:
    """Whether a cached result can stand for this run: always, unless outputs are saved, in which case the
    DNG it wrote is copied into this run, and it cannot stand when that file is gone or changed."""
    if not save_outputs:
        return True
    output = entry.get("output")
    if not output or not Path(output["path"]).is_file() or file_sha256(Path(output["path"])) != output["sha256"]:
        return False
    target = _output_path(run_dir, method.name, item.image_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(output["path"], target)
    return True


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Write a whole CSV atomically (temporary file renamed into place)."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def make_noisy_raw(pair: LoadedPair, dataset: Dataset, noise_mode: str, burst: BurstSpec | None = None,
                   known_estimate: dict | None = None) -> NoisyRaw:
    """The method input for one loaded image; its noise profile is the dataset's true one ("oracle") or
    estimated from frame 0 on first use ("estimate").

    With ``burst``, the frames are frame 0 (the noisy image) plus ``burst.frames - 1`` real frames from the
    dataset's ``burst/`` folder or, for a dataset without real
    bursts, synthetic ones (``bench.burst``) made with the true profile where known, else the estimated one.
    known_estimate: ``{"a": ..., "b": ...}`` of an earlier blind estimate of this very file (the result
    cache's), used instead of estimating again.
    """
    packed = pair.noisy.normalized_packed()
    image_id = pair.item.image_id
    true = dataset.true_noise.get(image_id)
    if noise_mode == "oracle":

        def profile() -> NoiseProfile:
            return true
    else:

        @functools.cache
        def profile() -> NoiseProfile:
            if known_estimate is not None:
                return NoiseProfile(known_estimate["a"], known_estimate["b"], "estimate")
            return estimate_noise(packed, step=dataset.dn_step)

    frames = packed[None]
    if burst is not None and burst.frames > 1:
        if dataset.has_real_bursts:
            others = load_burst_frames(dataset, pair.item, burst.frames - 1)
            for image, _ in others:
                if image.shape != pair.noisy.shape or image.cfa != pair.noisy.cfa:
                    raise BenchError(f"{image.path}: size {image.shape} / CFA {image.cfa} differ from frame 0's "
                                     f"{pair.noisy.shape} / {pair.noisy.cfa}")
            frames = np.concatenate([frames, np.stack([image.normalized_packed() for image, _ in others])])
        else:
            # without a true profile the frames are made with the estimate the methods receive (computed once)
            generator = true if true is not None else profile()
            clean_rgb = dataset.clean_linear(image_id) if dataset.clean_linear and not burst.static else None
            mosaics = synthesize_burst(burst, image_id, pair.noisy.mosaic, pair.gt.mosaic, pair.noisy.cfa,
                                       generator, dataset.black_level, dataset.white_level, clean_rgb)
            frames = packed_frames(mosaics, dataset.black_level, dataset.white_level)
    return NoisyRaw(frames, pair.noisy.cfa, profile, image_id)


def _burst_record(burst: BurstSpec | None, dataset: Dataset) -> dict | None:
    """What run.json says about the frames methods received."""
    if burst is None or burst.frames == 1:
        return None
    if dataset.has_real_bursts:
        return {"frames": burst.frames, "source": f"real frames from {dataset.root / 'burst'}"}
    return {"frames": burst.frames, "source": "synthetic (bench.burst)", "max_shift_pixels": burst.max_shift,
            "max_rotation_degrees": burst.max_rotation, "seed": burst.seed,
            "generator_noise": "the dataset's true profile where known, else estimated from frame 0"}


def denoise_to_mosaic(method: Method, raw: NoisyRaw, dataset: Dataset) -> tuple[np.ndarray, float]:
    """Call the method (timed), validate its output and write it back the competition's way.

    Returns the ``(H, W)`` uint16 mosaic that is scored (and saved) and the seconds ``denoise`` took.
    Raises whatever the method raised, or MethodOutputError.
    """
    started = time.perf_counter()
    out = method.denoise(raw)
    seconds = time.perf_counter() - started
    return packed_to_mosaic(out, raw.packed.shape, dataset.black_level, dataset.white_level), seconds


def _failed_row(method: str, image_id: str, error: str) -> dict:
    return {"method": method, "image": image_id, "psnr": math.nan, "ssim": math.nan, "ssim_col": math.nan,
            "score": math.nan, "seconds": math.nan, "megapixels": math.nan, "status": "failed", "error": error}


def _eta(elapsed: float, done: int, total: int) -> str:
    """``"  ETA 1h02m"``: the time left if the remaining tasks take as long on average as the finished ones
    (empty when nothing is left)."""
    if done >= total or done == 0:
        return ""
    left = round(elapsed / done * (total - done))
    hours, rest = divmod(left, 3600)
    return f"  ETA {hours}h{rest // 60:02d}m" if hours else f"  ETA {rest // 60}m{rest % 60:02d}s"


def _progress_line(prefix: str, row: dict) -> str:
    if row["status"] != "ok":
        return f"{prefix} {row['method']:<12} FAILED: {row['error']}"
    return (f"{prefix} {row['method']:<12} psnr {row['psnr']:7.3f} dB  ssim {row['ssim']:.4f}  "
            f"score {row['score']:6.2f}  {row['seconds']:.2f} s")


def _summary_markdown(summary: pd.DataFrame, record: dict, run_dir: Path) -> str:
    dataset = record["dataset"]
    burst = record.get("burst")
    frames = (f", {burst['frames']}-frame bursts ({burst['source']}; single-frame methods get frame 0)"
              if burst else "")
    return "\n".join([
        f"# {dataset['name']}: {dataset['images']} images, noise profile: {record['noise']}{frames}",
        "",
        tables.to_markdown(summary),
        "",
        "Score = (0.8*max(PSNR-30,0)/30 + 0.2*max(SSIM-0.8,0)/0.2)*100 per image (2-D SSIM), averaged; "
        "PSNR/SSIM on the written-back uint16 mosaic, data_range = white level. "
        "SSIM (col) is the 2022 column-wise SSIM. s / image is the denoise call alone.",
        "",
        f"- status: {record['status']}, started {record['started']}",
        f"- dataset fingerprint: {record.get('dataset_fingerprint', '')}",
        f"- code: {record['git_commit'] or 'not a git checkout'}",
        f"- regenerate: `{record['command']}`",
        "",
    ])


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


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
