"""``bench speed --full-table``: what the competition's full table costs, measured on full-size frames in one
run and projected.

Every single-frame method (or those of ``--methods``, with the parameters of ``--params``) is timed on one
full-size synthetic frame by ``bench.speed.measure_in_child`` (a fresh process each, the call ``bench run``
times), and the harness around the methods by ``measure_harness`` in another fresh process, on two full-size
DNG pairs, stage by stage with the suite's own functions (the second pair's times are kept: a long run's
process is warm):

* per image: the run's pre-flight read of its two files (hash, levels), the task's read (hash, decode,
  level checks), the blind noise estimate (once per image, when any method asks for one), the report's
  crops of the image;
* per result: the write-back to uint16 and the scores (``score_output``), the result's crop, its cache
  entry and, with ``--save-outputs``, its DNG and that file's hash.

Each measurement runs with the share of the cores a run's worker gets: ``cores // workers`` threads. The
projection for ``--pairs`` images on ``--workers`` workers is ``ceil(pairs / workers)`` images one after
another on each worker, each image costing the methods' seconds plus the harness's; so the workers are
assumed not to slow each other beyond their share of the cores (they are measured one at a time, the
machine otherwise idle), and a run's fixed costs (process start, the tables, seconds) are left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.processes import available_cores, limit_threads
from bench.speed import COMPETITION_SIZE, full_size_frame, measure_in_child, report_of_child, write_report
from methods.registry import get_method_class, list_methods

#: The harness stages ``measure_harness`` times, each image's then each result's, with their labels.
IMAGE_STAGES = {"preflight": "pre-flight read", "read": "read, hash, decode", "noise": "noise estimate",
                "image_crops": "report's image crops"}
RESULT_STAGES = {"score": "write-back and scores", "crop": "result's crop", "cache": "cache entry",
                 "save": "saved DNG (--save-outputs)"}


def single_frame_methods() -> list[str]:
    """The registered methods that denoise one frame (every kind but burst), sorted."""
    return [name for name in list_methods() if get_method_class(name).kind != "burst"]


def measure_harness(data: Path, save_outputs: bool) -> dict[str, float]:
    """Seconds of each harness stage (``IMAGE_STAGES``, ``RESULT_STAGES``) on the second image of the
    full-size pair folder ``data``, after the same stages on the first; in this process."""
    from bench.cache import ResultCache
    from bench.core.files import file_sha256
    from bench.core.rawio import write_dng
    from bench.datasets import open_dataset
    from bench.evaluation import load_inputs, noise_for, score_output
    from bench.report.saved_crops import image_crops, result_crop

    dataset = open_dataset(data)
    seconds: dict[str, float] = {}

    def timed(stage: str, call):
        started = time.perf_counter()
        value = call()
        seconds[stage] = time.perf_counter() - started
        return value

    with tempfile.TemporaryDirectory() as folder:
        cache = ResultCache(Path(folder) / "cache")
        for index, item in enumerate(dataset.items[:2]):
            timed("preflight", dataclasses.replace(dataset, items=[item]).preflight)
            inputs = timed("read", lambda: load_inputs(dataset, item, None))
            timed("noise", lambda: noise_for(inputs, dataset, "estimate").profile())
            pair = inputs.pair
            image = timed("image_crops", lambda: image_crops(item.image_id, "", pair.noisy.mosaic, pair.gt.mosaic,
                                                             pair.noisy.cfa, pair.noisy.levels))
            scores, mosaic = timed("score", lambda: score_output(inputs.packed, pair.gt.mosaic, pair.noisy.levels))
            crop = timed("crop", lambda: result_crop(mosaic, pair.gt.mosaic, pair.noisy.levels, image.window))
            facts = {"psnr": scores.psnr, "ssim": scores.ssim, "ssim_col": scores.ssim_col, "score": scores.score,
                     "seconds": 1.0, "megapixels": mosaic.size / 1e6, "noise": None, "output": None, "crop": crop}
            timed("cache", lambda: cache.put("result", f"{index:064x}", facts))
            out = Path(folder) / f"{index}.dng"
            seconds["save"] = 0.0
            if save_outputs:
                timed("save", lambda: (write_dng(mosaic, out, template=item.noisy_path, cfa=pair.noisy.cfa,
                                                 black_level=pair.noisy.levels.black_level,
                                                 white_level=pair.noisy.levels.white), file_sha256(out)))
    return seconds


def harness_in_child(data: Path, save_outputs: bool, threads: int) -> dict:
    """``measure_harness`` in a fresh ``python -m bench.full_table`` process with ``threads`` threads; its
    stage seconds, or ``{"error": one line}``."""
    return report_of_child("bench.full_table", [str(data)] + (["--save-outputs"] if save_outputs else []), threads)


@dataclass(frozen=True)
class Projection:
    """The full table's cost: ``method_seconds`` (name -> seconds per frame, or None where it failed),
    ``harness`` (stage -> seconds, ``measure_harness``), for ``pairs`` images on ``workers`` workers of
    ``threads`` threads each, ``save_outputs`` or not."""

    method_seconds: dict[str, float | None]
    harness: dict[str, float]
    pairs: int
    workers: int
    threads: int
    save_outputs: bool

    @property
    def images_per_worker(self) -> int:
        return math.ceil(self.pairs / self.workers)

    def harness_per_image(self) -> float:
        """Harness seconds of one image with every method: its image stages (the noise estimate only when a
        method asks for one) and one set of result stages per method."""
        asks_noise = any(get_method_class(name).kind != "reference" for name in self.method_seconds)
        image = sum(self.harness[stage] for stage in IMAGE_STAGES if stage != "noise" or asks_noise)
        return image + len(self.method_seconds) * sum(self.harness[stage] for stage in RESULT_STAGES)

    def per_image(self) -> float:
        return sum(s for s in self.method_seconds.values() if s is not None) + self.harness_per_image()

    def hours(self, seconds_per_image: float) -> float:
        """Wall hours of ``seconds_per_image`` for every image of the table."""
        return self.images_per_worker * seconds_per_image / 3600

    def lines(self) -> list[str]:
        """The printed table: one row per method, the harness (and its stages), the total."""
        total = self.per_image()
        rows = [f"{'':26s} {'s / image':>10s} {'hours':>8s} {'share':>7s}"]
        for name, seconds in self.method_seconds.items():
            if seconds is None:
                rows.append(f"{name:26s} {'failed':>10s}")
                continue
            rows.append(f"{name:26s} {seconds:10.2f} {self.hours(seconds):8.2f} {100 * seconds / total:6.1f} %")
        harness = self.harness_per_image()
        rows.append(f"{'harness':26s} {harness:10.2f} {self.hours(harness):8.2f} {100 * harness / total:6.1f} %")
        asks_noise = any(get_method_class(name).kind != "reference" for name in self.method_seconds)
        for stage, label in IMAGE_STAGES.items():
            if stage != "noise" or asks_noise:
                rows.append(f"  {label:24s} {self.harness[stage]:10.3f}   per image")
        for stage, label in RESULT_STAGES.items():
            if stage != "save" or self.save_outputs:
                rows.append(f"  {label:24s} {self.harness[stage]:10.3f}   per result, x {len(self.method_seconds)}")
        rows.append(f"{'total':26s} {total:10.2f} {self.hours(total):8.2f} {100.0:6.1f} %")
        return rows


def full_table(methods: list[str], params: dict[str, dict], pairs: int, workers: int, save_outputs: bool,
               size: tuple[int, int] = COMPETITION_SIZE, log=print) -> Projection:
    """Measure ``methods`` (with ``params``) and the harness on full-size frames with ``cores // workers``
    threads each and project the table of ``pairs`` images on ``workers`` workers."""
    from bench.benchmarks.frames import write_full_size_pairs

    threads = max(1, available_cores() // workers)
    seconds: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="full-table-") as folder:
        frame_path = Path(folder) / "frame.npy"
        np.save(frame_path, full_size_frame(*size))
        for name in methods:
            report = measure_in_child(name, params.get(name, {}), frame_path, threads=threads)
            seconds[name] = report.get("seconds")
            log(f"{name}: " + (f"{report['seconds']:.2f} s a frame" if "error" not in report
                               else f"failed: {report['error']}"))
        data = write_full_size_pairs(Path(folder) / "pairs", 2, size)
        harness = harness_in_child(data, save_outputs, threads)
    if "error" in harness:
        raise RuntimeError(f"the harness measurement failed: {harness['error']}")
    log("harness: " + ", ".join(f"{stage} {value:.3f} s" for stage, value in harness.items()))
    return Projection(seconds, harness, pairs, workers, threads, save_outputs)


def main(argv: list[str] | None = None) -> int:
    """The child side of ``harness_in_child``: ``measure_harness`` on a pair folder, its stage seconds
    written as JSON to ``--result``; on failure, the error's first line on stderr and exit status 1."""
    parser = argparse.ArgumentParser(prog="python -m bench.full_table",
                                     description="the harness's stages on full-size pairs, in this process")
    parser.add_argument("data", type=Path, help="a competition-layout folder of at least two full-size pairs")
    parser.add_argument("--save-outputs", action="store_true", help="also time writing each result's DNG")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    limit_threads(available_cores())
    return write_report(args.result, lambda: measure_harness(args.data, args.save_outputs))


if __name__ == "__main__":
    sys.exit(main())
