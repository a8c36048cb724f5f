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
"""

from __future__ import annotations

import csv
import functools
import datetime as dt
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
from bench.datasets import Dataset, LoadedPair, fingerprint, load_burst_frames, load_item
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


@dataclass
class RunResult:
    run_dir: Path
    summary: pd.DataFrame
    succeeded: int
    failed: int
    interrupted: bool = False


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
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    dataset = config.dataset
    check_scorable(dataset, config.noise_mode)
    methods = {name: create_method(name, config.params.get(name)) for name in config.method_names}
    unavailable = {name: type(m).unavailable_reason() for name, m in methods.items()}
    unavailable = {name: reason for name, reason in unavailable.items() if reason}
    for name, reason in unavailable.items():
        log(f"warning: method {name} cannot run here ({reason}); its rows are recorded as failed")
    dataset.check_files(burst_frames=config.burst.frames if config.burst else 1)

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

    rows: list[dict] = []
    file_hashes: list[tuple[str, str]] = []
    noise_rows: list[dict] = []
    interrupted = False
    needs_noise = any(m.kind != "reference" for name, m in methods.items() if name not in unavailable)
    total = len(dataset.items)
    with (run_dir / "per_image.csv").open("w", newline="") as per_image_file:
        writer = csv.DictWriter(per_image_file, fieldnames=tables.PER_IMAGE_COLUMNS)
        writer.writeheader()

        def add_row(row: dict) -> None:
            rows.append(row)
            writer.writerow(row)
            per_image_file.flush()

        try:
            for position, item in enumerate(dataset.items, start=1):
                prefix = f"[{position}/{total}] image {item.image_id}"
                try:
                    pair = load_item(dataset, item)
                except BenchError as exc:
                    log(f"{prefix}: input error: {exc}")
                    for name in methods:
                        add_row(_failed_row(name, item.image_id, f"input error: {exc}"))
                    continue
                file_hashes += [(_relative(item.noisy_path, dataset.root), pair.noisy_sha256),
                                (_relative(item.gt_path, dataset.root), pair.gt_sha256)]
                try:
                    raw = make_noisy_raw(pair, dataset, config.noise_mode, config.burst, file_hashes)
                except BenchError as exc:
                    log(f"{prefix}: input error: {exc}")
                    for name in methods:
                        add_row(_failed_row(name, item.image_id, f"input error: {exc}"))
                    continue
                if needs_noise:
                    started = time.perf_counter()
                    profile = raw.noise
                    noise_rows.append({"image": item.image_id, "a": profile.a, "b": profile.b,
                                       "source": profile.source, "seconds": time.perf_counter() - started})
                for name, method in methods.items():
                    if name in unavailable:
                        add_row(_failed_row(name, item.image_id, f"unavailable: {unavailable[name]}"))
                        continue
                    method_input = raw if method.kind == "burst" else raw.reference_only()
                    row = _run_one(method, method_input, pair, dataset, run_dir, config.save_outputs)
                    add_row(row)
                    log(_progress_line(prefix, row))
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted: writing the tables of what finished")

    if noise_rows:
        pd.DataFrame(noise_rows).to_csv(run_dir / "noise.csv", index=False)
    per_image = pd.DataFrame(rows, columns=tables.PER_IMAGE_COLUMNS)
    summary = tables.summarize(per_image, list(methods))
    summary.to_csv(run_dir / "summary.csv", index=False)
    succeeded = int((per_image["status"] == "ok").sum())
    failed = len(per_image) - succeeded
    record.update({
        "finished": dt.datetime.now().isoformat(timespec="seconds"),
        "status": "interrupted" if interrupted else "finished",
        "dataset_fingerprint": fingerprint(file_hashes),
        "results": {"succeeded": succeeded, "failed": failed},
    })
    _write_json(run_dir / "run.json", record)
    (run_dir / "summary.md").write_text(_summary_markdown(summary, record, run_dir))
    return RunResult(run_dir, summary, succeeded, failed, interrupted)


def make_noisy_raw(pair: LoadedPair, dataset: Dataset, noise_mode: str, burst: BurstSpec | None = None,
                   file_hashes: list[tuple[str, str]] | None = None) -> NoisyRaw:
    """The method input for one loaded image; its noise profile is the dataset's true one ("oracle") or
    estimated from frame 0 on first use ("estimate").

    With ``burst``, the frames are frame 0 (the noisy image) plus ``burst.frames - 1`` real frames from the
    dataset's ``burst/`` folder (their hashes appended to ``file_hashes``) or, for a dataset without real
    bursts, synthetic ones (``bench.burst``) made with the true profile where known, else the estimated one.
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
            return estimate_noise(packed, step=dataset.dn_step)

    frames = packed[None]
    if burst is not None and burst.frames > 1:
        if dataset.has_real_bursts:
            others = load_burst_frames(dataset, pair.item, burst.frames - 1)
            for image, digest in others:
                if image.shape != pair.noisy.shape or image.cfa != pair.noisy.cfa:
                    raise BenchError(f"{image.path}: size {image.shape} / CFA {image.cfa} differ from frame 0's "
                                     f"{pair.noisy.shape} / {pair.noisy.cfa}")
                if file_hashes is not None:
                    file_hashes.append((_relative(image.path, dataset.root), digest))
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


def _run_one(method: Method, raw: NoisyRaw, pair: LoadedPair, dataset: Dataset, run_dir: Path,
             save_outputs: bool) -> dict:
    """Denoise, write back to uint16, optionally save, score. Never raises for a method's fault."""
    image_id = pair.item.image_id
    megapixels = pair.noisy.mosaic.size / 1e6
    try:
        mosaic, seconds = denoise_to_mosaic(method, raw, dataset)
        if save_outputs:
            write_dng(mosaic, run_dir / "outputs" / method.name / f"{image_id}.dng", template=pair.item.noisy_path,
                      cfa=pair.noisy.cfa, black_level=dataset.black_level, white_level=dataset.white_level)
        scores = score_mosaic(pair.gt.mosaic, mosaic, data_range=dataset.white_level)
    except Exception as exc:  # a failing method must never take the run down
        message = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        with (run_dir / "errors.log").open("a") as f:
            f.write(f"--- {method.name} on image {image_id}\n{traceback.format_exc()}\n")
        return _failed_row(method.name, image_id, message)
    return {"method": method.name, "image": image_id, "psnr": scores.psnr, "ssim": scores.ssim,
            "ssim_col": scores.ssim_col, "score": scores.score, "seconds": seconds,
            "megapixels": megapixels, "status": "ok", "error": ""}


def _failed_row(method: str, image_id: str, error: str) -> dict:
    return {"method": method, "image": image_id, "psnr": math.nan, "ssim": math.nan, "ssim_col": math.nan,
            "score": math.nan, "seconds": math.nan, "megapixels": math.nan, "status": "failed", "error": error}


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
