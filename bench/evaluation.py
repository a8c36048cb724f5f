"""How one image is evaluated: read (and hashed from the bytes decoded), given a noise profile, denoised,
written back to uint16 the competition's way and scored.

``bench run``, ``bench tune``, the report's re-created crops, training validation and ``bench speed`` all
go through this module, so a number means the same thing wherever it is shown:

* ``load_inputs``: every file a task reads, read once, hashed from the very bytes that are decoded;
* ``NoiseEstimate``: the one owner of an image's noise profile (true or blindly estimated; computed at most
  once, timed, checked, and recorded for ``noise.csv`` and the cache);
* ``make_noisy_raw``: the ``NoisyRaw`` a method receives (with synthetic or real burst frames);
* ``evaluate`` / ``score_output`` / ``timed_denoise``: the denoise call, its write-back and its scores.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from bench.burst import BurstSpec, packed_frames, synthesize_burst
from bench.cache import InvalidEntry, make_key, require_number
from bench.core.files import sha256_bytes
from bench.datasets import (Dataset, DatasetItem, LoadedPair, check_same_levels, load_burst_frames, load_item,
                            read_bytes, read_linear_scene)
from bench.core.errors import BenchError
from bench.core.levels import LevelPolicy, Levels
from bench.core.metrics import ImageScores, score_mosaic
from bench.core.noise_model import NoiseProfile
from bench.pipeline import packed_to_mosaic
from bench.core.rawio import RawImage
from methods.base import Method, NoisyRaw

NOISE_MODES = ("estimate", "oracle")


class NoiseEstimateError(BenchError):
    """The noise profile of an image could not be obtained, or is not a valid profile (NaN, negative)."""


# ------------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class LoadedInputs:
    """Everything one task read: the noisy / ground-truth pair, real burst frames 1.. (empty when the run
    uses none) and the SHA-256 of every file, from the bytes decoded, in ``input_paths`` order."""

    pair: LoadedPair
    burst_frames: tuple[RawImage, ...]
    hashes: tuple[str, ...]
    #: The folder's linear scene of the image, decoded from the bytes hashed last in ``hashes``, when a moving
    #: synthetic burst is made from it; else None.
    clean_linear: np.ndarray | None = None

    @cached_property
    def packed(self) -> np.ndarray:
        """Frame 0 as methods receive it: ``(h, w, 4)`` float32 in [0, 1], read-only, normalised once for the
        noise estimate and every method."""
        packed = self.pair.noisy.normalized_packed()
        packed.setflags(write=False)
        return packed


def input_paths(dataset: Dataset, item: DatasetItem, burst: BurstSpec | None) -> list[Path]:
    """The files a task on ``item`` reads: noisy, ground truth, then the real burst frames it uses."""
    paths = [item.noisy_path, item.gt_path]
    if burst is not None and burst.frames > 1 and dataset.has_real_bursts:
        paths += list(item.burst_paths[:burst.frames - 1])
    if uses_linear_scene(dataset, item, burst):
        paths.append(dataset.linear_paths[item.image_id])
    return paths


def uses_linear_scene(dataset: Dataset, item: DatasetItem, burst: BurstSpec | None) -> bool:
    """Whether a task on ``item`` makes a moving synthetic burst from the folder's linear scene of it."""
    return (burst is not None and burst.frames > 1 and not burst.static and not dataset.has_real_bursts
            and item.image_id in dataset.linear_paths)


def load_inputs(dataset: Dataset, item: DatasetItem, burst: BurstSpec | None) -> LoadedInputs:
    """Read every file of ``input_paths`` once. Raises BenchError naming the file on any problem."""
    pair = load_item(dataset, item)
    frames: list[tuple[RawImage, str]] = []
    if burst is not None and burst.frames > 1 and dataset.has_real_bursts:
        frames = load_burst_frames(dataset, item, burst.frames - 1)
        for image, _ in frames:
            if image.shape != pair.noisy.shape or image.cfa != pair.noisy.cfa:
                raise BenchError(f"{image.path}: size {image.shape} / CFA {image.cfa} differ from frame 0's "
                                 f"{pair.noisy.shape} / {pair.noisy.cfa}")
            check_same_levels(pair.item.noisy_path, pair.noisy.levels, image.path, image.levels)
    hashes = (pair.noisy_sha256, pair.gt_sha256, *(digest for _, digest in frames))
    scene = None
    if uses_linear_scene(dataset, item, burst):
        path = dataset.linear_paths[item.image_id]
        data = read_bytes(path)
        scene = read_linear_scene(path, data, pair.gt.mosaic.shape)
        hashes = (*hashes, sha256_bytes(data))
    return LoadedInputs(pair, tuple(image for image, _ in frames), hashes, scene)


# ------------------------------------------------------------------------------------------- noise


def estimate_noise(packed: np.ndarray, *, step: float) -> NoiseProfile:
    """``bench.core.noise.estimate_noise`` (the blind estimate of an ``(h, w, 4)`` float32 image in [0, 1],
    ``step`` one DN), imported on first use: it brings scipy, which a run of reference methods never needs."""
    from bench.core.noise import estimate_noise as estimate

    return estimate(packed, step=step)


def estimate_key(noisy_sha256: str, levels: LevelPolicy) -> str:
    """Cache key of the blind noise estimate of a noisy file: its content and the level policy decide it (the
    policy and the file's tags, part of its content, decide its levels)."""
    return make_key({"noisy": noisy_sha256, "levels": levels.as_dict()})


def valid_noise_record(body: object, sources: tuple[str, ...] = NOISE_MODES) -> dict:
    """A ``NoiseEstimate.record`` ``{"a", "b", "source", "seconds"}`` read back, if well-formed and its source
    one of ``sources``; InvalidEntry otherwise."""
    if not isinstance(body, dict) or body.get("source") not in sources:
        raise InvalidEntry(f"noise record is {body!r}")
    return {"a": require_number(body, "a", 0.0), "b": require_number(body, "b", 0.0), "source": body["source"],
            "seconds": require_number(body, "seconds", 0.0)}


def valid_estimate_record(body: dict) -> dict:
    """A cached blind estimate (a noise record whose source is "estimate"); InvalidEntry otherwise."""
    return valid_noise_record(body, ("estimate",))


def check_profile(profile: NoiseProfile, where: str) -> NoiseProfile:
    """``profile`` if ``a`` and ``b`` are finite and >= 0 and not both 0; NoiseEstimateError otherwise."""
    a, b = profile.a, profile.b
    if not (math.isfinite(a) and math.isfinite(b)) or a < 0 or b < 0 or (a == 0 and b == 0):
        raise NoiseEstimateError(f"{where}: noise profile a={a!r}, b={b!r} is not a valid variance a*x + b "
                                 "(finite, non-negative, not both zero)")
    return profile


class NoiseEstimate:
    """The noise profile methods receive for one image, and the record of how it was obtained.

    mode "oracle": the dataset's true profile ``true``. Mode "estimate": the blind estimate of ``packed``
    (``(h, w, 4)`` float32 in [0, 1], frame 0, normalised with its file's own levels; ``dn_step`` one DN of
    that file's range), computed on first use and timed, unless ``known`` (an earlier
    estimate of these very bytes, ``valid_estimate_record`` format) is given. ``profile()`` raises
    NoiseEstimateError, never returns an invalid profile.
    """

    def __init__(self, mode: str, packed: np.ndarray, dn_step: float, where: str,
                 true: NoiseProfile | None = None, known: dict | None = None):
        if mode not in NOISE_MODES:
            raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
        if mode == "oracle" and true is None:
            raise NoiseEstimateError(f"{where}: --noise oracle needs the image's true profile")
        self.mode, self._packed, self._dn_step, self._where = mode, packed, dn_step, where
        self._true, self._known = true, known
        self._profile: NoiseProfile | None = None
        self._seconds = 0.0
        #: True once a blind estimate was computed here (not taken from ``known``): worth caching.
        self.computed = False

    def profile(self) -> NoiseProfile:
        if self._profile is None:
            if self.mode == "oracle":
                profile = self._true
            elif self._known is not None:
                profile = NoiseProfile(self._known["a"], self._known["b"], "estimate")
                self._seconds = self._known["seconds"]
            else:
                started = time.perf_counter()
                try:
                    profile = estimate_noise(self._packed, step=self._dn_step)
                except Exception as exc:
                    raise NoiseEstimateError(f"{self._where}: the blind noise estimate failed "
                                             f"({type(exc).__name__}: {exc})".splitlines()[0]) from None
                self._seconds = time.perf_counter() - started
                self.computed = True
            self._profile = check_profile(profile, self._where)
        return self._profile

    def record(self) -> dict | None:
        """``{"a", "b", "source", "seconds"}`` of the profile given, or None when nobody asked for one."""
        if self._profile is None:
            return None
        return {"a": self._profile.a, "b": self._profile.b, "source": self._profile.source,
                "seconds": self._seconds}


def noise_for(inputs: LoadedInputs, dataset: Dataset, mode: str, known: dict | None = None) -> NoiseEstimate:
    """The NoiseEstimate of one loaded image under ``mode`` ("estimate" or "oracle"), in the normalised units
    of its noisy file's levels."""
    pair = inputs.pair
    return NoiseEstimate(mode, inputs.packed, pair.noisy.levels.dn_step, str(pair.item.noisy_path),
                         true=dataset.true_noise.get(pair.item.image_id), known=known)


# ------------------------------------------------------------------------------------- method input


def make_noisy_raw(inputs: LoadedInputs, dataset: Dataset, noise: NoiseEstimate,
                   burst: BurstSpec | None = None) -> NoisyRaw:
    """The method input for one loaded image; its noise profile is ``noise``'s.

    With ``burst``, the frames are frame 0 (the noisy image) plus ``burst.frames - 1`` further frames: the
    real ones ``inputs`` holds or, for a dataset without real bursts, synthetic ones (``bench.burst``) made
    with the true profile where known, else with the estimate the methods receive.
    """
    pair = inputs.pair
    image_id = pair.item.image_id
    packed = inputs.packed
    frames = packed[None]
    if burst is not None and burst.frames > 1:
        if inputs.burst_frames:
            frames = np.concatenate([frames, np.stack([image.normalized_packed() for image in inputs.burst_frames])])
        else:
            true = dataset.true_noise.get(image_id)
            generator = true if true is not None else noise.profile()
            clean_rgb = inputs.clean_linear
            if clean_rgb is None and dataset.clean_linear and not burst.static:
                clean_rgb = dataset.clean_linear(image_id)
            mosaics = synthesize_burst(burst, image_id, pair.noisy.mosaic, pair.gt.mosaic, pair.noisy.cfa,
                                       generator, pair.noisy.levels, clean_rgb)
            frames = packed_frames(mosaics, pair.noisy.levels)
    return NoisyRaw(frames, pair.noisy.cfa, noise.profile, image_id)


# ------------------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class Evaluation:
    """One method on one image: its scores, the ``(H, W)`` uint16 mosaic they were computed on (what is
    saved or submitted) and the seconds the ``denoise`` call took."""

    scores: ImageScores
    mosaic: np.ndarray
    seconds: float


def timed_denoise(method: Method, raw: NoisyRaw) -> tuple[np.ndarray, float]:
    """``method.denoise(raw)`` and the seconds it took (burst methods get every frame, others frame 0)."""
    method_input = raw if method.kind == "burst" else raw.reference_only()
    started = time.perf_counter()
    out = method.denoise(method_input)
    return out, time.perf_counter() - started


def score_output(out, gt_mosaic: np.ndarray, levels: Levels) -> tuple[ImageScores, np.ndarray]:
    """A method's ``(h, w, 4)`` output checked (``MethodOutputError``), written back to the ``(2h, 2w)``
    uint16 mosaic the competition's way in the image's ``levels`` and scored against ``gt_mosaic`` with
    data_range = its white level."""
    height, width = gt_mosaic.shape
    mosaic = packed_to_mosaic(out, (height // 2, width // 2, 4), levels)
    return score_mosaic(gt_mosaic, mosaic, data_range=levels.white), mosaic


def evaluate(method: Method, raw: NoisyRaw, gt_mosaic: np.ndarray, levels: Levels) -> Evaluation:
    """Denoise ``raw`` with ``method`` (timed), write it back in the image's ``levels`` and score it against
    ``gt_mosaic``. Raises whatever the method raised, or MethodOutputError for an invalid output."""
    out, seconds = timed_denoise(method, raw)
    scores, mosaic = score_output(out, gt_mosaic, levels)
    return Evaluation(scores, mosaic, seconds)
