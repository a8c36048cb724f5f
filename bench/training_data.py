"""Where ``bench train``'s pairs come from, and its fixed validation pairs.

Three sources, each a sampler with ``sample(rng) -> (noisy, clean, profile)`` (``(patch, patch, 4)`` float32
packed BGGR in [0, 1] and the ``NoiseProfile`` the noise was made with):

* ``SyntheticSampler``: clean sRGB photographs (``--clean-dir``). A random crop, optionally downscaled
  (anti-aliased, ``cv2.INTER_AREA``) by ``downscale`` so that one raw pixel carries a photograph's detail
  rather than its demosaicing blur, flipped and rotated, unprocessed to linear camera RGB
  (``bench.embedded.unprocess``), blurred with probability ``blur_probability`` by a Gaussian of sigma
  U(0, ``max_blur``), mosaicked to BGGR, stored as 16-bit DN at the competition's levels and made noisy with
  the organisers' generator at (a, b) log-uniform over the competition ranges.
* ``CaptureSampler``: real captures (``--raw-dir``, any Bayer DNG; ``bench.real_raw``): a random crop of the
  scene at an even offset, flipped / transposed so the BGGR phase is kept (``bayer_augment``), made noisy the
  same way.
* ``PairSampler``: a competition-layout folder of real noisy / ground-truth pairs (``--data``), with the
  same Bayer-preserving flips.

``MixedSampler`` draws each patch from one source with stated probabilities. Validation pairs are fixed:
crops of held-out photographs and of held-out captures at each of the five noise groups, and central crops
of held-out real pairs; each is a ``ValidationPair`` naming its set and group, so validation is reported
per noise group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.core.errors import BenchError
from bench.core.levels import LevelPolicy
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL
from bench.real_raw import NOISE_GROUPS, CleanCapture, noisy_pair, random_profile
from bench.real_raw import validation_pairs as capture_validation_pairs

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class ValidationPair:
    """One fixed validation pair: ``noisy`` / ``clean`` ``(h, w, 4)`` float32 packed BGGR in [0, 1], the true
    ``profile``, ``group`` (0..4, the noise group; -1 when the pair's own noise is not one of them) and
    ``set`` ("srgb", "raw" or "pairs")."""

    noisy: np.ndarray
    clean: np.ndarray
    profile: NoiseProfile
    group: int
    set: str


def list_images(folders: list[Path]) -> list[Path]:
    """Every image file under ``folders`` (recursively), sorted; BenchError for a missing folder."""
    found = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise BenchError(f"{folder}: clean-image folder not found")
        found += [p for p in sorted(Path(folder).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    return found


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an image file; BenchError naming the file if it cannot be read."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise BenchError(f"{path}: not a readable image")
    return np.ascontiguousarray(image[..., ::-1])


def split_train_validation(paths: list[Path], every: int = 10) -> tuple[list[Path], list[Path]]:
    """Every ``every``-th image is held out for validation (deterministic, by sorted order)."""
    return [p for k, p in enumerate(paths) if k % every != 0], [p for k, p in enumerate(paths) if k % every == 0]


def synthetic_pair(srgb: np.ndarray, patch: int, rng: np.random.Generator, max_blur: float,
                   profile: NoiseProfile | None = None, downscale: float = 1.0,
                   blur_probability: float = 1.0) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
    """One training pair from an ``(H, W, 3)`` uint8 sRGB image (both sides >= 2*patch + 8).

    downscale: the crop is taken ``downscale`` times larger and shrunk (area-averaged) to the patch, at
    most as far as the image allows (>= 1). blur_probability: the chance that the Gaussian blur of sigma
    U(0, ``max_blur``) is applied. Returns ``(noisy, clean, profile)``: ``(patch, patch, 4)`` float32 packed
    BGGR in [0, 1] and the noise profile used (drawn log-uniformly over the competition ranges unless
    given).
    """
    import cv2
    from scipy.ndimage import gaussian_filter

    from bench.embedded import mosaic_bggr, unprocess
    from bench.core.rawio import denormalize, normalize, pack

    margin = 4
    side = 2 * patch + 2 * margin
    factor = max(1.0, min(float(downscale), min(srgb.shape[:2]) / side))
    source_side = min(int(math.ceil(side * factor)), *srgb.shape[:2])
    top = int(rng.integers(0, srgb.shape[0] - source_side + 1))
    left = int(rng.integers(0, srgb.shape[1] - source_side + 1))
    crop = srgb[top:top + source_side, left:left + source_side].astype(np.float64) / 255.0
    if source_side != side:
        crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = np.rot90(crop, k=int(rng.integers(0, 4)))
    linear, _ = unprocess(np.ascontiguousarray(crop), rng)
    sigma = float(rng.uniform(0.0, max_blur))
    blurred = blur_probability >= 1.0 or rng.random() < blur_probability  # no draw when always: old pairs stay
    if blurred and sigma > 0.05:
        linear = gaussian_filter(linear, sigma=(sigma, sigma, 0), mode="reflect")
    linear = linear[margin:margin + 2 * patch, margin:margin + 2 * patch]
    # stored as 16-bit DN exactly like the embedded set's ground truth, then the organisers' generator
    clean_mosaic = denormalize(mosaic_bggr(linear), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    if profile is None:
        profile = random_profile(rng)
    noisy_mosaic = add_noise(clean_mosaic, profile.a, profile.b, rng, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    clean, noisy = (normalize(pack(m), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
                    for m in (clean_mosaic, noisy_mosaic))
    return noisy, clean, profile


def bayer_augment(mosaic: np.ndarray, flip_rows: bool, flip_columns: bool, transpose: bool) -> np.ndarray:
    """Flip / transpose an ``(S + 2, S + 2)`` BGGR mosaic patch (S even) and return the ``(S, S)`` BGGR
    patch: after a flip the pattern's phase changes along that axis, so one row (column) is dropped at
    each end to restore it. A transpose keeps BGGR as it is."""
    mosaic = mosaic[::-1][1:-1] if flip_rows else mosaic[:-2]
    mosaic = mosaic[:, ::-1][:, 1:-1] if flip_columns else mosaic[:, :-2]
    if transpose:
        mosaic = mosaic.T
    return np.ascontiguousarray(mosaic)


def random_even_crop(mosaic: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(side, side)`` crop of ``mosaic`` starting at an even row and column (so the pattern is kept)."""
    top = 2 * int(rng.integers(0, (mosaic.shape[0] - side) // 2 + 1))
    left = 2 * int(rng.integers(0, (mosaic.shape[1] - side) // 2 + 1))
    return mosaic[top:top + side, left:left + side]


class PairSampler:
    """Random augmented crops of a competition-layout folder's pairs, loaded into memory once. Every 10th
    pair (by image order) is held out for validation when there are at least two."""

    def __init__(self, root: Path, patch: int, log: Callable[[str], None], levels: LevelPolicy | None = None):
        from bench.datasets import open_dataset
        from bench.evaluation import load_inputs, noise_for

        levels = levels or LevelPolicy()
        dataset = open_dataset(root, black_level=levels.black, white_level=levels.white, levels=levels.mode)
        if not dataset.has_ground_truth:
            raise BenchError(f"{root}: training pairs need ground truth")
        for message in dataset.check_files():
            log(f"warning: {message}")
        self.items = []
        for item in dataset.items:
            loaded = load_inputs(dataset, item, burst=None)
            pair = loaded.pair
            if pair.noisy.cfa != "BGGR":
                raise BenchError(f"{item.noisy_path}: training expects BGGR, got {pair.noisy.cfa}")
            mode = "oracle" if item.image_id in dataset.true_noise else "estimate"
            profile = noise_for(loaded, dataset, mode).profile()
            self.items.append((pair.noisy.mosaic, pair.gt.mosaic, profile, pair.noisy.levels))
        self.held_out = self.items[::10] if len(self.items) >= 2 else []
        self.items = [item for k, item in enumerate(self.items) if k % 10 != 0] if self.held_out else self.items
        self.patch = patch
        log(f"loaded {len(self.items)} training pairs from {root} ({len(self.held_out)} held out for validation)")

    def validation_pairs(self) -> list[ValidationPair]:
        """The held-out pairs' central crops (at most 256 x 256 packed)."""
        from bench.core.rawio import pack_normalized

        pairs = []
        for noisy_mosaic, gt_mosaic, profile, levels in self.held_out:
            packed = [pack_normalized(m, levels.black_level, levels.white) for m in (noisy_mosaic, gt_mosaic)]
            height, width = packed[0].shape[:2]
            top, left = max((height - 256) // 2, 0), max((width - 256) // 2, 0)
            noisy, clean = (np.ascontiguousarray(p[top:top + 256, left:left + 256]) for p in packed)
            pairs.append(ValidationPair(noisy, clean, profile, -1, "pairs"))
        return pairs

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
        from bench.core.rawio import pack_normalized

        noisy_mosaic, gt_mosaic, profile, levels = self.items[int(rng.integers(len(self.items)))]
        side = 2 * self.patch + 2
        top = 2 * int(rng.integers(0, (noisy_mosaic.shape[0] - side) // 2 + 1))
        left = 2 * int(rng.integers(0, (noisy_mosaic.shape[1] - side) // 2 + 1))
        flips = rng.random(3) < 0.5
        out = []
        for mosaic in (noisy_mosaic, gt_mosaic):
            crop = bayer_augment(mosaic[top:top + side, left:left + side], *flips)
            out.append(pack_normalized(crop, levels.black_level, levels.white))
        return out[0], out[1], profile


class SyntheticSampler:
    """Random synthetic pairs from clean sRGB images held in memory (``synthetic_pair``)."""

    def __init__(self, paths: list[Path], patch: int, max_blur: float, downscale: float = 1.0,
                 blur_probability: float = 1.0):
        minimum = 2 * patch + 8
        self.images = [image for image in (read_rgb(p) for p in paths) if min(image.shape[:2]) >= minimum]
        if not self.images:
            raise BenchError(f"no clean image is at least {minimum} pixels on a side")
        self.patch, self.max_blur = patch, max_blur
        self.downscale, self.blur_probability = downscale, blur_probability

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
        image = self.images[int(rng.integers(len(self.images)))]
        return synthetic_pair(image, self.patch, rng, self.max_blur, downscale=self.downscale,
                              blur_probability=self.blur_probability)


class CaptureSampler:
    """Random noisy crops of real captures (``bench.real_raw.CleanCapture``, held in memory): an even-offset
    crop, Bayer-preserving flips / transpose, the organisers' generator at a random competition profile."""

    def __init__(self, captures: list[CleanCapture], patch: int):
        side = 2 * patch + 2
        self.captures = [c for c in captures if min(c.gt.shape) >= side]
        if not self.captures:
            raise BenchError(f"no raw capture is at least {side} pixels on a side (--patch {patch})")
        self.patch = patch

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
        capture = self.captures[int(rng.integers(len(self.captures)))]
        crop = random_even_crop(capture.gt, 2 * self.patch + 2, rng)
        gt = bayer_augment(crop, *(rng.random(3) < 0.5))
        profile = random_profile(rng)
        noisy, clean = noisy_pair(gt, profile, rng)
        return noisy, clean, profile


class MixedSampler:
    """Each patch from one of ``samplers``, chosen with probabilities ``weights`` (normalised to sum 1)."""

    def __init__(self, samplers: list, weights: list[float]):
        total = float(sum(weights))
        if not samplers or total <= 0:
            raise BenchError("no training data source")
        self.samplers, self.probabilities = samplers, [w / total for w in weights]

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, NoiseProfile]:
        return self.samplers[int(rng.choice(len(self.samplers), p=self.probabilities))].sample(rng)


def srgb_validation_pairs(paths: list[Path], count: int, seed: int, downscale: float = 1.0) -> list[ValidationPair]:
    """``count`` fixed pairs (128 x 128 packed) from held-out images, with (a, b) spread over the five
    noise groups in turn; the same for every run with the same images, seed and ``downscale`` (blur sigma
    U(0, 1) always applied, as the earlier validation did)."""
    rng = np.random.default_rng([seed, 7])
    images = [image for image in (read_rgb(p) for p in paths) if min(image.shape[:2]) >= 2 * 128 + 8]
    if not images:
        raise BenchError("no held-out image is large enough for validation (256 x 256 + 8)")
    pairs = []
    for k in range(count):
        group = k % len(NOISE_GROUPS)
        noisy, clean, profile = synthetic_pair(images[k % len(images)], 128, rng, 1.0, NoiseProfile(*NOISE_GROUPS[group]),
                                               downscale=downscale)
        pairs.append(ValidationPair(noisy, clean, profile, group, "srgb"))
    return pairs


def raw_validation_pairs(captures: list[CleanCapture], side: int, seed: int) -> list[ValidationPair]:
    """The central ``side`` x ``side`` mosaic of each held-out capture at each of the five noise groups."""
    return [ValidationPair(p["noisy"], p["clean"], p["profile"], p["group"], "raw")
            for p in capture_validation_pairs(captures, side, seed)]
