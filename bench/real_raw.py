"""Real camera captures as clean scenes: training content for ``bench train --raw-dir`` and the real-raw
validation pairs of ``bench raw-pairs``.

A capture is any Bayer DNG. Each file is read with its own levels (``LevelPolicy("file")``: black per plane
and white from its tags), normalised by them, and cropped by one row and/or one column (and as much at the
far edge, so the sides stay even) so that its pattern becomes BGGR, the competition's. A badly underexposed
capture (99.9th percentile below ``UNDEREXPOSED_BELOW`` of its range) is scaled up so that percentile lands
at ``EXPOSE_TO``, then clipped to 1: otherwise it would train or test only the darkest corner of the range.
The scene is then what the competition's ground truth is: a uint16 mosaic at the competition's levels
(black 1024, white 16383), truncated to whole DN like the organisers' write-back, to which noisy copies are
made with the organisers' generator (``bench.core.noise_model.add_noise``).

Such captures are clean-ish, not clean: their own sensor noise and quantisation stay in the ground truth,
as they did in the competition's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.cfa import bayer_offset, check_bayer
from bench.core.errors import BenchError
from bench.core.levels import LevelPolicy, denormalize, normalize
from bench.core.noise_model import A_RANGE, B_RANGE, NoiseProfile, add_noise
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, pack, pack_normalized, read_dng, unpack

#: A capture whose 99.9th percentile (normalised by its own levels) is below this is scaled up ...
UNDEREXPOSED_BELOW = 0.5
#: ... so that the percentile lands here.
EXPOSE_TO = 0.9
#: The five noise groups of the embedded set (and of the competition's range), one (a, b) each.
NOISE_GROUPS = tuple(zip((float(v) for v in np.logspace(-4, -2, 5)), (float(v) for v in np.logspace(-6, -3, 5))))
RAW_SUFFIXES = (".dng",)


@dataclass(frozen=True)
class CleanCapture:
    """One real capture as a clean scene.

    name: the file's stem. source: its path. gt: ``(H, W)`` uint16 BGGR mosaic at the competition's levels
    (black 1024, white 16383), H and W even. cfa: the file's own pattern. crop: ``(row, col)`` offset of the
    BGGR crop in the file's mosaic. gain: the exposure factor applied (1 when none). tags: the file's levels,
    ``(black per plane, white)``.
    """

    name: str
    source: Path
    gt: np.ndarray
    cfa: str
    crop: tuple[int, int]
    gain: float
    tags: tuple

    def describe(self) -> str:
        black, white = self.tags
        exposure = f", scaled x{self.gain:.2f}" if self.gain != 1.0 else ""
        return (f"{self.source.name} ({self.cfa}, black {'/'.join(map(str, black))}, white {white}, "
                f"cropped at {self.crop} to BGGR{exposure})")


def list_captures(folders: list[Path]) -> list[Path]:
    """Every DNG under ``folders`` (recursively), sorted by name; BenchError for a missing folder or none."""
    found: list[Path] = []
    for folder in folders:
        if not Path(folder).is_dir():
            raise BenchError(f"{folder}: raw-capture folder not found")
        found += [p for p in Path(folder).rglob("*") if p.suffix.lower() in RAW_SUFFIXES and p.is_file()]
    if not found:
        raise BenchError(f"{', '.join(map(str, folders))}: no .dng capture found")
    return sorted(found, key=lambda p: (p.name, str(p)))


def bggr_crop(cfa: str, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The slices of an ``(H, W)`` mosaic of pattern ``cfa`` whose pattern is BGGR: starting at the row and
    column of the blue sample, ``H`` / ``W`` kept when the start is 0, else 2 fewer (sides stay even)."""
    row, col = bayer_offset(cfa, "B")
    height, width = shape
    return slice(row, height - (2 if row else 0) + row), slice(col, width - (2 if col else 0) + col)


def load_capture(path: Path) -> CleanCapture:
    """Read ``path`` (a Bayer DNG) as a clean scene (module docstring); BenchError naming the file for an
    unreadable file or a mosaic under 64 pixels a side."""
    path = Path(path)
    raw = read_dng(path, LevelPolicy("file"))
    cfa = check_bayer(raw.cfa, path)
    rows, cols = bggr_crop(cfa, raw.mosaic.shape)
    normalised = np.clip(normalize(pack(raw.mosaic), raw.levels.black_level, raw.levels.white), 0, 1)
    mosaic = unpack(normalised)[rows, cols]
    if min(mosaic.shape) < 64:
        raise BenchError(f"{path}: mosaic {raw.mosaic.shape} is too small for a training scene (64 px a side)")
    top = float(np.percentile(mosaic, 99.9))
    gain = EXPOSE_TO / top if 0 < top < UNDEREXPOSED_BELOW else 1.0
    if gain != 1.0:
        mosaic = np.clip(mosaic * np.float32(gain), 0.0, 1.0)
    gt = denormalize(mosaic, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    return CleanCapture(path.stem, path, gt, cfa, (rows.start, cols.start), float(gain), raw.tags)


def select_captures(paths: list[Path], names: list[str], option: str) -> list[Path]:
    """The captures among ``paths`` whose stem or name is in ``names``; BenchError naming ``option`` and the
    captures there are for a name that matches none."""
    for name in names:
        if not any(name in (p.stem, p.name) for p in paths):
            raise BenchError(f"{option} {name}: no such capture (there are: {', '.join(p.stem for p in paths)})")
    return [p for p in paths if p.stem in names or p.name in names]


def split_captures(paths: list[Path], hold_out: list[str]) -> tuple[list[Path], list[Path]]:
    """``(training, validation)`` paths: the validation captures are those named in ``hold_out`` (stem or
    name); with ``hold_out`` empty, the last by name when there are at least two. BenchError for an unknown
    name, or when nothing is left to train on."""
    validation = select_captures(paths, hold_out or ([paths[-1].stem] if len(paths) >= 2 else []), "--raw-hold-out")
    training = [p for p in paths if p not in validation]
    if not training:
        raise BenchError("every raw capture is held out for validation: none is left to train on")
    return training, validation


def random_profile(rng: np.random.Generator) -> NoiseProfile:
    """(a, b) log-uniform over the competition's ranges ``A_RANGE`` x ``B_RANGE``."""
    return NoiseProfile(float(np.exp(rng.uniform(*np.log(A_RANGE)))), float(np.exp(rng.uniform(*np.log(B_RANGE)))))


def noisy_pair(gt: np.ndarray, profile: NoiseProfile, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, clean)`` ``(h, w, 4)`` float32 packed in [0, 1] from an ``(H, W)`` uint16 BGGR ground truth
    at the competition's levels, noisy by the organisers' generator at ``profile``."""
    noisy = add_noise(gt, profile.a, profile.b, rng, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    return tuple(pack_normalized(m, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL) for m in (noisy, gt))


def central_crop(gt: np.ndarray, side: int) -> np.ndarray:
    """The central ``(side, side)`` part of a mosaic (at most the mosaic), starting on an even row/column."""
    height, width = gt.shape
    side_h, side_w = min(side, height), min(side, width)
    top, left = (height - side_h) // 4 * 2, (width - side_w) // 4 * 2
    return np.ascontiguousarray(gt[top:top + side_h, left:left + side_w])


def validation_pairs(captures: list[CleanCapture], side: int, seed: int) -> list[dict]:
    """Fixed real-raw validation pairs: the central ``side`` x ``side`` mosaic of each capture at each of
    the five ``NOISE_GROUPS``. Each is a dict with ``noisy``, ``clean`` (``(side/2, side/2, 4)`` float32),
    ``profile``, ``group`` (0..4) and ``capture`` (its name); the same for the same captures and seed."""
    pairs = []
    for index, capture in enumerate(captures):
        gt = central_crop(capture.gt, side)
        for group, (a, b) in enumerate(NOISE_GROUPS):
            profile = NoiseProfile(a, b)
            noisy, clean = noisy_pair(gt, profile, np.random.default_rng([seed, index, group, 11]))
            pairs.append({"noisy": noisy, "clean": clean, "profile": profile, "group": group,
                          "capture": capture.name})
    return pairs


def write_pair_folder(captures: list[CleanCapture], out: Path, seed: int = 0, side: int = 0) -> list[dict]:
    """Write the competition-layout pair folder ``bench run --data`` reads: for each capture and each of the
    five ``NOISE_GROUPS`` a ground truth ``ground truth/{i}_gt.dng`` (the capture, BGGR, competition levels;
    its central ``side`` x ``side`` part when ``side`` > 0) and ``noisy/{i}_noise.dng`` (the organisers'
    generator), the true profiles in ``noise_profile.csv`` and what each image is in ``recipe.json``.
    Returns the recipe rows. BenchError when ``out`` already holds images."""
    from bench.datasets import GT_DIR, NOISE_PROFILE_FILE, NOISY_DIR, write_noise_profiles
    from bench.core.rawio import write_dng_standalone

    out = Path(out)
    if (out / GT_DIR).exists() or (out / NOISY_DIR).exists():
        raise BenchError(f"{out}: already holds a pair folder; give an empty or new --out")
    (out / GT_DIR).mkdir(parents=True)
    (out / NOISY_DIR).mkdir()
    profiles, recipe = {}, []
    for index, capture in enumerate(captures):
        gt = central_crop(capture.gt, side) if side > 0 else capture.gt
        for group, (a, b) in enumerate(NOISE_GROUPS):
            image = index * len(NOISE_GROUPS) + group
            noisy = add_noise(gt, a, b, np.random.default_rng([seed, index, group, 13]),
                              COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
            write_dng_standalone(gt, out / GT_DIR / f"{image}_gt.dng")
            write_dng_standalone(noisy, out / NOISY_DIR / f"{image}_noise.dng")
            profiles[str(image)] = NoiseProfile(a, b)
            recipe.append({"image": str(image), "capture": capture.source.name, "cfa": capture.cfa,
                           "crop": list(capture.crop), "gain": capture.gain, "group": group, "a": a, "b": b,
                           "shape": list(gt.shape)})
    write_noise_profiles(out / NOISE_PROFILE_FILE, profiles)
    (out / "recipe.json").write_text(json.dumps({"seed": seed, "side": side, "images": recipe}, indent=1))
    return recipe
