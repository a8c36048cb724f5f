"""What a run's worker does: one image task (``Task``: one image and every method it still needs) read,
hashed and decoded once, then each method's result computed, written back, scored and sent (``run_task``),
keyed by the hashes of the very bytes it was computed from (``result_key``).

``bench.runner`` makes the tasks (``image_tasks``) and records what they send; ``bench.executors`` runs
them here, in local worker processes or on Dask.
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from bench.burst import BurstSpec
from bench.cache import make_key
from bench.core.errors import BenchError, first_line
from bench.core.levels import Levels
from bench.datasets import Dataset, DatasetItem
from bench.evaluation import evaluate, input_paths, load_inputs, make_noisy_raw, noise_for
from bench.report.saved_crops import ImageCrops, image_crops, result_crop
from methods.base import Method


@dataclass(frozen=True)
class Task:
    """One image and the methods to compute on it, from one reading of its files; picklable, so that any
    executor can run it (``run_task``).

    methods: the validated method instances, in table order; resource_hashes: SHA-256 of each one's weights
    files. expected_inputs: SHA-256 of the files of ``input_paths`` as the run hashed them before it started.
    known_noise: a blind estimate of the noisy file with that content (``valid_estimate_record``), if any.
    number: the task's place in the run's task list (an image's methods may be split over tasks).
    """

    methods: tuple[Method, ...]
    resource_hashes: tuple[tuple[str, ...], ...]
    dataset: Dataset
    item: DatasetItem
    noise_mode: str
    burst: BurstSpec | None
    return_mosaic: bool
    expected_inputs: tuple[str, ...]
    known_noise: dict | None = None
    number: int = 0

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(method.name for method in self.methods)


def image_tasks(to_compute: list[tuple[DatasetItem, list[str]]], methods: dict[str, Method],
                resources: dict[str, tuple[str, ...]], dataset: Dataset, noise_mode: str, burst: BurstSpec | None,
                return_mosaic: bool, expected: dict[str, tuple[str, ...]], workers: int) -> list[Task]:
    """One task per image with all the methods it needs, so each image is read, hashed and decoded once
    for all of them. Only when there are fewer images than ``workers`` is an image's list split (round
    robin) into up to ``ceil(workers / images)`` tasks, so that every worker has work."""
    parts = max(1, -(-workers // len(to_compute))) if to_compute else 1
    tasks = []
    for item, names in to_compute:
        for group in (names[k::parts] for k in range(min(parts, len(names)))):
            tasks.append(Task(tuple(methods[name] for name in group), tuple(resources[name] for name in group),
                              dataset, item, noise_mode, burst, return_mosaic, expected[item.image_id],
                              number=len(tasks)))
    return tasks


@dataclass
class TaskResult:
    """One result a task sends back: method ``method`` on the task's image.

    facts: the measured ``{psnr, ssim, ssim_col, score, seconds, megapixels}``, or None with ``error`` set.
    noise: the noise record it used (``NoiseEstimate.record``); noise_computed: estimated in this task (set
    on the first result that used the new estimate).
    key / input_hashes: the result's cache key and the SHA-256 of each file, from the bytes it decoded.
    changed_inputs: files whose content differs from the run's pre-flight hash (relative names).
    warnings: one line per input file with pixels outside [black, white] (``bench.datasets.check_levels``) or
    levels other than its tags give.
    mosaic: the written-back ``(H, W)`` uint16 mosaic when asked for; cfa, levels: the frame's CFA and levels.
    crop: the pixels of it the report shows (``bench.report.saved_crops.result_crop``), or None.
    image_crops: the report's noisy and ground-truth crops, rendering and overview of the task's image
    (``bench.report.saved_crops.image_crops``, its role still empty), on the first result with a crop.
    """

    method: str
    facts: dict | None
    error: str = ""
    noise: dict | None = None
    noise_computed: bool = False
    key: str = ""
    input_hashes: tuple[str, ...] = ()
    changed_inputs: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    mosaic: np.ndarray | None = None
    cfa: str = "BGGR"
    levels: Levels | None = None
    traceback: str = ""
    crop: dict | None = None
    image_crops: ImageCrops | None = None


def run_task(task: Task) -> Iterator[TaskResult]:
    """Load the task's image once, then give it to each of its methods in turn, writing each output back to
    uint16 and scoring it; yields one TaskResult per method, in order, as each finishes. Every result is keyed
    by the hashes of the bytes this task decoded. Never raises for a method's fault or an unreadable input:
    those come back as failed results (a failing method fails only its own)."""
    dataset, item = task.dataset, task.item
    try:
        inputs = load_inputs(dataset, item, task.burst)
    except BenchError as exc:
        for method in task.methods:
            yield TaskResult(method.name, None, f"input error: {exc}")
        return
    changed = tuple(relative_name(path, dataset.root)
                    for path, before, now in zip(input_paths(dataset, item, task.burst), task.expected_inputs,
                                                 inputs.hashes) if before != now)
    known = task.known_noise if inputs.hashes[0] == task.expected_inputs[0] else None
    noise = noise_for(inputs, dataset, task.noise_mode, known)
    gt, levels = inputs.pair.gt.mosaic, inputs.pair.noisy.levels
    input_problem = ""
    try:
        raw = make_noisy_raw(inputs, dataset, noise, task.burst)
    except BenchError as exc:  # NoiseEstimateError included: the input's fault, not the methods'
        input_problem = f"input error: {exc}"
    input_used_noise = noise.record() is not None  # synthetic burst frames were made with it
    image: ImageCrops | None = None  # the report's crops of this image, made once, sent with the first crop
    image_problem, image_sent = "", False
    noise_problem: str | None = None  # None until a method asks for the profile; "" once it was given
    noise_reported = False
    for method, resource_hashes in zip(task.methods, task.resource_hashes):
        uses_noise = input_used_noise or method.kind != "reference"
        problem = input_problem
        if not problem and uses_noise:
            if noise_problem is None:
                try:
                    noise.profile()
                    noise_problem = ""
                except BenchError as exc:  # NoiseEstimateError: the input's fault, not the method's
                    noise_problem = f"input error: {exc}"
            problem = noise_problem
        record = noise.record() if uses_noise else None
        computed = bool(record) and noise.computed and not noise_reported
        noise_reported = noise_reported or computed
        key = result_key(method, resource_hashes, inputs.hashes, dataset, item, task.noise_mode, task.burst)
        common = {"key": key, "input_hashes": inputs.hashes, "changed_inputs": changed,
                  "warnings": inputs.pair.level_warnings}
        if problem:
            yield TaskResult(method.name, None, problem, record, computed, **common)
            continue
        try:
            evaluation = evaluate(method, raw, gt, levels)
        except Exception as exc:  # a failing method must never take the run down
            yield TaskResult(method.name, None, first_line(exc), record, computed, **common,
                             traceback=traceback.format_exc())
            continue
        crop, crop_problem = None, image_problem  # the report's crop never costs a result
        if image is None and not image_problem:
            try:
                image = image_crops(item.image_id, "", inputs.pair.noisy.mosaic, gt, inputs.pair.noisy.cfa, levels)
            except Exception as exc:
                image_problem = crop_problem = first_line(exc)
        if image is not None:
            try:
                crop = result_crop(evaluation.mosaic, gt, levels, image.window)
            except Exception as exc:
                crop_problem = first_line(exc)
        if crop_problem:
            common["warnings"] += (f"{item.noisy_path.name}: no crop for the report ({crop_problem})",)
        send_image = crop is not None and not image_sent
        image_sent = image_sent or send_image
        scores = evaluation.scores
        facts = {"psnr": scores.psnr, "ssim": scores.ssim, "ssim_col": scores.ssim_col, "score": scores.score,
                 "seconds": evaluation.seconds, "megapixels": inputs.pair.noisy.mosaic.size / 1e6}
        yield TaskResult(method.name, facts, "", record, computed, **common,
                         mosaic=evaluation.mosaic if task.return_mosaic else None, cfa=inputs.pair.noisy.cfa,
                         levels=levels, crop=crop, image_crops=image if send_image else None)


def result_key(method: Method, resource_hashes: tuple[str, ...], input_hashes: tuple[str, ...], dataset: Dataset,
               item: DatasetItem, noise_mode: str, burst: BurstSpec | None) -> str:
    """The cache key of one (method, image) result (see ``bench.cache``): what it depends on, never the
    image's id or the dataset's name."""
    true = dataset.true_noise.get(item.image_id)
    return make_key({
        "method": method.name, "params": method.param_values(),
        "resources": list(resource_hashes),
        "inputs": list(input_hashes),
        "noise": noise_mode, "true_noise": [true.a, true.b] if noise_mode == "oracle" else None,
        "burst": dataclasses.asdict(burst) if burst else None,
        "levels": dataset.levels.as_dict(),
    })


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (as tables and records name files), else in full."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
