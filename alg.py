"""bm3d: BM3D (reference bm3d package, both stages) on the 4 Bayer planes jointly after a VST and a 2x2 Haar.

A self-contained competition submission written by raw-bench's `bench export`.

Usage:  python alg.py INPUT_DIR OUTPUT_DIR

Denoises every INPUT_DIR/noisy{i}.dng (or {i}_noise.dng) into OUTPUT_DIR/denoise{i}.dng.
From Python: `denoise_image(packed, profile, cfa)` is the method itself.

What it does to each image: read the mosaic (rawpy), pack the 2x2 Bayer phases into 4 planes,
normalise each plane with its black level and the white level LEVELS gives the file, estimate the
noise profile var = a*x + b from the image alone, denoise, clip to [0, 1], scale back to the same
levels and truncate to uint16, and write the pixels into a byte-for-byte copy of the noisy file
(its tags, levels included, kept).
Levels: competition (black 1024, white 16383 for every file, whatever its tags say).

Method: bm3d (classical), parameters:
    sigma_scale = 0.9
    speed = 'standard'
    tile_size = 512
    workers = 0
    step_ht = 0
    max_3d_size_ht = 0
    search_window_ht = 0
    bs_wiener = 0
    step_wiener = 0
    max_3d_size_wiener = 0
    search_window_wiener = 0
    wiener = True
Chosen from: results/embedded/20261201-234208, the highest mean Score there (65.10) among the methods `bench export --best` could consider.

Needs: bm3d, numpy, rawpy, scipy, tifffile.

Generated from raw-bench's own source (bench/codegen.py copies the functions the benchmark ran,
unchanged, grouped by the file they come from); do not edit. Regenerate with
    python -m bench export --best results/embedded/20261201-234208 --kind classical --script alg.py
"""
from __future__ import annotations

import argparse
import ctypes
import io
import multiprocessing
import numpy as np
import os
import re
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from scipy.ndimage import correlate1d
from scipy.special import ndtr
from typing import Callable


# ---- from bench/core/errors.py


class BenchError(Exception):
    """A problem with the user's input or set-up, stated in one line that names the file or thing at fault."""


# ---- from bench/core/cfa.py


#: The Bayer layouts, in ``PLANE_OFFSETS`` order.
BAYER_CFAS = ("BGGR", "RGGB", "GRBG", "GBRG")


def bayer_problem(cfa: object) -> str | None:
    """What keeps ``cfa`` from being a 2x2 Bayer pattern, as one phrase, or None when it is one."""
    if not isinstance(cfa, str) or len(cfa) != 4 or any(letter not in "RGB" for letter in cfa):
        return "it must be four letters R, G, B (one per 2x2 position)"
    if sorted(cfa) != ["B", "G", "G", "R"]:
        return "a Bayer pattern has one R, one B and two G"
    if cfa[0] != cfa[3] and cfa[1] != cfa[2]:  # the Gs on neither diagonal, (0, 0)-(1, 1) nor (0, 1)-(1, 0)
        return "its two G share a row or a column instead of a diagonal"
    return None


def check_bayer(cfa: object, source: object) -> str:
    """``cfa`` when it is a 2x2 Bayer pattern; otherwise BenchError ``"<source>: CFA pattern ... is not a 2x2
    Bayer pattern (why)"``, ``source`` being the file (or image) it came from."""
    problem = bayer_problem(cfa)
    if problem is not None:
        raise BenchError(f"{source}: CFA pattern {cfa!r} is not a 2x2 Bayer pattern ({problem}); "
                         f"supported: {', '.join(BAYER_CFAS)}")
    return cfa


# ---- from bench/core/files.py


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Create ``path`` whole or not at all: ``write(tmp)`` fills a temporary file in the same folder (with
    the permissions of a normally created file), which then replaces ``path``. The folder must exist."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # not mkstemp's 0600
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---- from bench/core/levels.py


COMPETITION_BLACK_LEVEL = 1024


COMPETITION_WHITE_LEVEL = 16383


#: Largest value a 16-bit mosaic can hold, so the highest possible white level.
MAX_LEVEL = 65535


LEVEL_MODES = ("competition", "file")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def level_range_problem(black_level, white_level) -> str | None:
    """What is wrong with a black level (one, or four per plane) and white level for 16-bit data, as one
    phrase, or None when ``0 <= black < white <= 65535`` holds for integers (for every plane's black)."""
    blacks = tuple(black_level) if isinstance(black_level, (tuple, list)) else (black_level,)
    if len(blacks) not in (1, 4) or not all(_is_int(b) for b in blacks) or not _is_int(white_level):
        return f"black level {black_level!r} and white level {white_level!r} must be integers"
    if not all(0 <= b < white_level <= MAX_LEVEL for b in blacks):
        return (f"black level {black_text(blacks)} and white level {white_level} must satisfy "
                f"0 <= black < white <= {MAX_LEVEL}")
    return None


def black_text(black_level) -> str:
    """``1024`` for one black level (or four equal ones), ``1000/1010/1020/1030`` for four per plane."""
    blacks = tuple(black_level) if isinstance(black_level, (tuple, list)) else (black_level,)
    if len(set(blacks)) == 1:
        return str(int(blacks[0]))
    return "/".join(str(int(b)) for b in blacks)


def _per_sample_black(black_level, shape: tuple[int, ...]) -> np.ndarray:
    """Four per-plane black levels as an int64 array that broadcasts against an array of ``shape``: the last
    axis of a packed ``(..., 4)`` array, or the 2x2 CFA phases of a 2-D mosaic."""
    black = np.asarray(black_level, dtype=np.int64)
    if black.shape != (4,):
        raise ValueError(f"black level must be one value or four (one per plane), got {black_level!r}")
    if len(shape) == 2:
        rows, cols = shape
        return np.tile(black.reshape(2, 2), ((rows + 1) // 2, (cols + 1) // 2))[:rows, :cols]
    if not shape or shape[-1] != 4:
        raise ValueError(f"per-plane black levels need a 2-D mosaic or a packed (..., 4) array, got shape {shape}")
    return black


def normalize(raw: np.ndarray, black_level, white_level: int) -> np.ndarray:
    """Competition normalisation ``(raw - black) / (white - black)`` in float32 (not clipped); ``black_level``
    one level or four per plane (module docstring)."""
    if np.ndim(black_level) == 0:
        return (raw.astype(np.float32) - np.float32(black_level)) / np.float32(white_level - black_level)
    black = _per_sample_black(black_level, np.shape(raw))
    return (raw.astype(np.float32) - black.astype(np.float32)) / (white_level - black).astype(np.float32)


def denormalize(x: np.ndarray, black_level, white_level: int) -> np.ndarray:
    """Competition inverse: ``clip(x, 0, 1) * (white - black) + black`` in float32, then truncating
    ``astype(uint16)`` (no rounding), exactly as the organisers' code does on a float32 network output;
    ``black_level`` one level or four per plane (module docstring)."""
    if np.ndim(black_level) == 0:
        scaled = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * np.float32(white_level - black_level)
        return (scaled + np.float32(black_level)).astype(np.uint16)
    black = _per_sample_black(black_level, np.shape(x))
    scaled = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * (white_level - black).astype(np.float32)
    return (scaled + black.astype(np.float32)).astype(np.uint16)


@dataclass(frozen=True)
class Levels:
    """The levels one frame is normalised with: ``black``, the black level of each packed plane
    (``PLANE_OFFSETS`` order, four integers), and ``white``, the white level. ValueError unless
    ``0 <= black < white <= 65535`` for every plane."""

    black: tuple[int, int, int, int]
    white: int

    def __post_init__(self):
        problem = level_range_problem(tuple(self.black), self.white)
        if problem is None and len(self.black) != 4:
            problem = f"black level {self.black!r} must be four values, one per plane"
        if problem:
            raise ValueError(problem)
        object.__setattr__(self, "black", tuple(int(b) for b in self.black))
        object.__setattr__(self, "white", int(self.white))

    @classmethod
    def of(cls, black_level, white_level: int) -> "Levels":
        """Levels from one black level (every plane's) or four, and the white level."""
        if isinstance(black_level, (tuple, list)):
            return cls(tuple(black_level), white_level)
        return cls((black_level,) * 4, white_level)

    @property
    def uniform(self) -> bool:
        """True when all four planes share one black level (as in the competition)."""
        return len(set(self.black)) == 1

    @property
    def black_level(self):
        """What ``normalize`` takes: the one black level when the planes share it, else the four."""
        return self.black[0] if self.uniform else self.black

    @property
    def white_level(self) -> int:
        return self.white

    @property
    def dn_step(self) -> float:
        """One stored level (DN) in the normalised domain, ``1 / (white - black)`` (with the planes' mean
        black where they differ): what the blind noise estimator models the truncation to whole DN with."""
        if self.uniform:
            return 1.0 / (self.white - self.black[0])
        return 1.0 / (self.white - sum(self.black) / 4.0)

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` (a packed ``(..., 4)`` array or a 2-D mosaic) normalised, float32, not clipped."""
        return normalize(raw, self.black_level, self.white)

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        """The organisers' write-back of ``x`` (packed or a 2-D mosaic) to uint16 in these levels."""
        return denormalize(x, self.black_level, self.white)

    def describe(self) -> str:
        """``black 1024, white 16383`` (``black 1000/1010/1020/1030 per plane, ...`` where they differ)."""
        per_plane = "" if self.uniform else " per plane"
        return f"black {black_text(self.black)}{per_plane}, white {self.white}"

    def as_dict(self) -> dict:
        """``{"black": [four ints], "white": int}``, for records."""
        return {"black": list(self.black), "white": self.white}


@dataclass(frozen=True)
class LevelPolicy:
    """Where each file's levels come from (module docstring): ``mode`` "competition" or "file", and
    ``black`` / ``white`` the levels fixed for every file (``--black-level`` / ``--white-level``, or the
    competition's 1024 / 16383, which "competition" fills in), None where each file's own tag is used.
    BenchError for an unknown mode or impossible levels."""

    mode: str = "competition"
    black: int | None = None
    white: int | None = None

    def __post_init__(self):
        if self.mode not in LEVEL_MODES:
            raise BenchError(f"--levels must be one of {', '.join(LEVEL_MODES)}, got {self.mode!r}")
        if self.mode == "competition":
            object.__setattr__(self, "black", COMPETITION_BLACK_LEVEL if self.black is None else self.black)
            object.__setattr__(self, "white", COMPETITION_WHITE_LEVEL if self.white is None else self.white)
        if self.black is not None and self.white is not None:
            problem = level_range_problem(self.black, self.white)
            if problem:
                raise BenchError(f"{problem} (--black-level/--white-level)")
        for name, value in (("black", self.black), ("white", self.white)):
            if value is not None and (not _is_int(value) or not 0 <= value <= MAX_LEVEL):
                raise BenchError(f"--{name}-level {value!r} must be an integer from 0 to {MAX_LEVEL}")
            object.__setattr__(self, name, None if value is None else int(value))

    @property
    def fixed(self) -> Levels | None:
        """The levels of every file when the policy fixes both parts (no file is needed), else None."""
        if self.black is None or self.white is None:
            return None
        return Levels.of(self.black, self.white)

    def resolve(self, path, tag_black: tuple[int, ...], tag_white: int) -> Levels:
        """The levels of the file at ``path`` whose DNG tags give ``tag_black`` (per plane) and ``tag_white``;
        BenchError naming the file when they are no valid levels."""
        black = (self.black,) * 4 if self.black is not None else tuple(tag_black)
        white = self.white if self.white is not None else tag_white
        problem = level_range_problem(black, white)
        if problem:
            raise BenchError(f"{path}: levels from its DNG tags ({tags_text(tag_black, tag_white)}) do not "
                             f"work: {problem}; pass --black-level/--white-level for this sensor")
        return Levels.of(black, white)

    def tag_note(self, path, used: Levels, tag_black: tuple[int, ...], tag_white: int) -> str | None:
        """One line saying that the file at ``path`` is normalised with other levels than its DNG tags give,
        or None when they agree (always under "file" without overrides)."""
        if tuple(tag_black) == used.black and tag_white == used.white:
            return None
        why = ("--levels competition fixes them as the organisers did; --levels file uses the tags"
               if self.mode == "competition" else "--black-level/--white-level override them")
        return (f"{path}: its DNG tags give {tags_text(tag_black, tag_white)}, but it is normalised with "
                f"{used.describe()} ({why})")

    def describe(self) -> str:
        """One phrase, e.g. ``competition (black 1024, white 16383 for every file)`` or ``file (each file's
        DNG tags)``."""
        if self.mode == "competition":
            return f"competition (black {self.black}, white {self.white} for every file, whatever its tags say)"
        parts = [f"black {self.black}" if self.black is not None else "black from each file's DNG tags",
                 f"white {self.white}" if self.white is not None else "white from each file's DNG tags"]
        return f"file ({', '.join(parts)})"

    def as_dict(self) -> dict:
        """``{"mode", "black", "white"}`` (None where each file's tag is used), for records and cache keys."""
        return {"mode": self.mode, "black": self.black, "white": self.white}


def tags_text(tag_black: tuple[int, ...], tag_white: int) -> str:
    """``black 1000/1010/1020/1030, white 4095``: what a file's DNG tags say."""
    return f"black {black_text(tuple(tag_black))}, white {tag_white}"


# ---- from bench/core/noise_estimation.py


#: Side of the square tiles, in packed pixels.
DEFAULT_BLOCK = 8


#: Pixels left out at each image border so that every filter sees only real pixels.
_MARGIN = 3


#: A tile is flat when both texture energies are below this multiple of the predicted noise variance.
#: For pure noise about 70 % of 8x8 tiles pass; lower values reject more faint texture.
_TEXTURE_THRESHOLD = 1.25


#: Tiles whose level is within this many noise standard deviations of 1 are not used.
_WHITE_CLIP_SIGMAS = 4.0


#: Fewest tiles a fit uses; when fewer are flat, the least textured ones are taken.
_MIN_TILES = 16


#: The likelihood is raised to this power: tiles from real images scatter more than pure noise does
#: (on validation images the untempered posterior was about 1.5x too narrow).
_LIKELIHOOD_TEMPER = 0.5


_SELECTION_ROUNDS = 6


_LEVEL_BINS = 64


#: Level bins span at least this many standard deviations of a tile's mean level.
_BIN_WIDTH_SIGMAS = 4.0


_GRID_POINTS = 41


_SECOND_DIFFERENCE = np.array([1.0, -2.0, 1.0])


# Fine residual: outer(second difference, second difference) / 6, unit gain for white noise.
_RESIDUAL_TAPS = (_SECOND_DIFFERENCE / np.sqrt(6.0), _SECOND_DIFFERENCE / np.sqrt(6.0))


# Fine texture: second difference along one axis, binomial smoothing along the other.
_FINE_TEXTURE_TAPS = (np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / np.sqrt(70.0), _SECOND_DIFFERENCE / np.sqrt(6.0))


# Coarse texture: the same at twice the scale, after 2x2 box averaging.
_COARSE_SMOOTH = np.convolve([1.0, 1.0], [1.0, 0.0, 2.0, 0.0, 1.0])


_COARSE_DIFFERENCE = np.convolve([1.0, 1.0], [1.0, 0.0, -2.0, 0.0, 1.0])


_COARSE_TEXTURE_TAPS = (_COARSE_SMOOTH / np.linalg.norm(_COARSE_SMOOTH),
                        _COARSE_DIFFERENCE / np.linalg.norm(_COARSE_DIFFERENCE))


@dataclass(frozen=True)
class TileStatistics:
    """Per-tile statistics of a packed image, all ``(n_tiles,)`` float64 arrays (every plane's tiles).

    level: mean stored value of the tile, in [0, 1].
    residual: mean squared fine residual; the noise variance plus whatever fine texture leaks in.
    fine_texture, coarse_texture: mean squared oriented second differences (both orientations
    averaged) at scales 1 and 2; equal to the noise variance for white noise, larger on texture.
    """

    level: np.ndarray
    residual: np.ndarray
    fine_texture: np.ndarray
    coarse_texture: np.ndarray

    def subset(self, mask: np.ndarray) -> "TileStatistics":
        return TileStatistics(self.level[mask], self.residual[mask], self.fine_texture[mask],
                              self.coarse_texture[mask])


def _separable(plane: np.ndarray, row_taps: np.ndarray, column_taps: np.ndarray) -> np.ndarray:
    """Correlate ``plane`` with ``outer(row_taps, column_taps)`` (rows = axis 0)."""
    return correlate1d(correlate1d(plane, row_taps, axis=0, mode="reflect"), column_taps, axis=1, mode="reflect")


def _oriented_energy(plane: np.ndarray, taps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Mean of the squared responses of a separable filter and of its transpose."""
    across, along = taps
    return 0.5 * (_separable(plane, across, along) ** 2 + _separable(plane, along, across) ** 2)


def tile_statistics(packed: np.ndarray, block: int = DEFAULT_BLOCK) -> TileStatistics:
    """Statistics of the ``block`` x ``block`` tiles of every plane of ``packed`` (``(h, w, planes)``)."""
    levels, residuals, fine, coarse = [], [], [], []
    for index in range(packed.shape[-1]):
        plane = np.asarray(packed[..., index], dtype=np.float64)
        rows = (plane.shape[0] - 2 * _MARGIN) // block
        cols = (plane.shape[1] - 2 * _MARGIN) // block
        if rows < 1 or cols < 1:
            continue
        inside = (slice(_MARGIN, _MARGIN + rows * block), slice(_MARGIN, _MARGIN + cols * block))

        def tile_means(image: np.ndarray) -> np.ndarray:
            return image[inside].reshape(rows, block, cols, block).mean(axis=(1, 3)).ravel()

        levels.append(tile_means(plane))
        residuals.append(tile_means(_separable(plane, *_RESIDUAL_TAPS) ** 2))
        fine.append(tile_means(_oriented_energy(plane, _FINE_TEXTURE_TAPS)))
        coarse.append(tile_means(_oriented_energy(plane, _COARSE_TEXTURE_TAPS)))
    if not levels:
        raise ValueError(f"image of shape {packed.shape} is too small for {block}x{block} tiles "
                         f"(needs at least {block + 2 * _MARGIN} pixels a side)")
    return TileStatistics(*(np.concatenate(parts) for parts in (levels, residuals, fine, coarse)))


def residual_degrees_of_freedom(block: int = DEFAULT_BLOCK) -> float:
    """Effective chi-square degrees of freedom of a tile's residual energy under white noise.

    Neighbouring residuals share pixels, so ``block**2`` residuals carry fewer independent squares:
    ``dof = n**2 / sum_{p,q} rho(p - q)**2`` with ``rho`` the residual filter's autocorrelation.
    """
    taps = _RESIDUAL_TAPS[0]
    rho_1d = np.correlate(taps, taps, mode="full")  # lags -2..2, rho(0) = 1
    lags = np.arange(-(len(taps) - 1), len(taps))
    weight_1d = np.maximum(block - np.abs(lags), 0)
    pair_sum_1d = np.sum(rho_1d**2 * weight_1d)  # sum over pairs in one dimension
    return float(block**4 / pair_sum_1d**2)


def stored_moments(x: np.ndarray, a, b, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance and d(mean)/dx of the stored value at clean level ``x`` (arrays broadcast).

    The stored value is ``floor(clip(y, 0, 1) / step) * step`` with ``y ~ N(x, a*x + b)``: a normal
    censored at 0 and 1, then truncated to whole DN, which lowers values off the clip points by
    ``step/2`` on average and adds about ``step**2/12`` of variance.
    """
    sigma = np.sqrt(a * x + b)
    low = -x / sigma
    high = (1.0 - x) / sigma
    inside = ndtr(high) - ndtr(low)
    above = ndtr(-high)
    density_low = np.exp(-0.5 * low * low) / np.sqrt(2.0 * np.pi)
    density_high = np.exp(-0.5 * high * high) / np.sqrt(2.0 * np.pi)
    first_inside = x * inside + sigma * (density_low - density_high)  # E[y; 0 < y < 1]
    second_inside = ((x * x + sigma * sigma) * inside + 2.0 * x * sigma * (density_low - density_high)
                     + sigma * sigma * (low * density_low - high * density_high))
    clipped_mean = first_inside + above
    clipped_var = second_inside + above - clipped_mean**2
    mean = clipped_mean - 0.5 * step * inside
    variance = (clipped_var - step * (first_inside - clipped_mean * inside)
                + step * step * (inside / 3.0 - inside * inside / 4.0))
    slope = inside + a / (2.0 * sigma) * (density_low - density_high)
    return mean, np.maximum(variance, 1e-300), slope


def variance_at_level(level: np.ndarray, a, b, step: float, newton_steps: int = 5) -> np.ndarray:
    """Predicted residual energy of a flat tile whose mean stored value is ``level``.

    Solves ``stored mean(x) = level`` for the clean level ``x`` by Newton's method (the mean is smooth
    and increasing in ``x``), then returns the stored variance there. ``a`` and ``b`` broadcast against
    ``level``.
    """
    level = np.asarray(level, dtype=np.float64)
    x = np.clip(level + 0.5 * step, 0.0, 1.0) + np.zeros_like(np.asarray(a, dtype=np.float64))
    for _ in range(newton_steps):
        mean, _, slope = stored_moments(x, a, b, step)
        x = np.clip(x - (mean - level) / np.maximum(slope, 1e-3), 0.0, 1.0)
    return stored_moments(x, a, b, step)[1]


def _flat_tiles(stats: TileStatistics, noise_var: np.ndarray) -> np.ndarray:
    """Boolean mask of tiles consistent with pure noise of variance ``noise_var`` (per tile)."""
    flat = ((stats.fine_texture < _TEXTURE_THRESHOLD * noise_var)
            & (stats.coarse_texture < _TEXTURE_THRESHOLD * noise_var)
            & (stats.level < 1.0 - _WHITE_CLIP_SIGMAS * np.sqrt(noise_var)))
    if flat.sum() < _MIN_TILES:
        texture = np.maximum(stats.fine_texture, stats.coarse_texture) / noise_var
        texture[stats.level >= 1.0 - _WHITE_CLIP_SIGMAS * np.sqrt(noise_var)] = np.inf
        flat = np.zeros(len(texture), dtype=bool)
        flat[np.argsort(texture, kind="stable")[:_MIN_TILES]] = True
    return flat


def _initial_profile(stats: TileStatistics, a_range, b_range) -> tuple[float, float]:
    """A deliberately low first guess: a line through the lower decile of residual energy per level."""
    bins = min(24, len(stats.level) // 8)
    if bins < 2:
        return float(a_range[0]), float(b_range[0])
    order = np.argsort(stats.level, kind="stable")
    levels, energies = [], []
    for members in np.array_split(order, bins):
        levels.append(np.median(stats.level[members]))
        energies.append(max(np.quantile(stats.residual[members], 0.1), 1e-12))
    levels, energies = np.asarray(levels), np.asarray(energies)
    design = np.stack([levels, np.ones_like(levels)], axis=1) / energies[:, None]  # relative errors
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(energies), rcond=None)
    return float(np.clip(a, *a_range)), float(np.clip(b, *b_range))


def _binned(level: np.ndarray, residual: np.ndarray, level_sd: np.ndarray) -> tuple[np.ndarray, ...]:
    """Level bins: (mean level, sum of residual energies, tile count), each ``(bins,)``.

    Bins hold about equal numbers of tiles but span at least four standard deviations of a tile mean
    (``level_sd``, per tile): narrower bins would sort tiles of one true level by their noise, and where
    clipping bends the variance curve, the predicted variance at such a bin's mean is off.
    """
    order = np.argsort(level, kind="stable")
    sorted_level = level[order]
    target = max(1, len(order) // _LEVEL_BINS)
    means, sums, counts = [], [], []
    start = 0
    while start < len(order):
        stop = start + target
        widest = sorted_level[start] + _BIN_WIDTH_SIGMAS * level_sd[order[start]]
        stop = max(stop, int(np.searchsorted(sorted_level, widest, "right")))
        if len(order) - stop < target:  # too few left for a bin of their own
            stop = len(order)
        members = order[start:stop]
        means.append(level[members].mean())
        sums.append(residual[members].sum())
        counts.append(float(len(members)))
        start = stop
    return np.array(means), np.array(sums), np.array(counts)


def _best_for_score(log_values: np.ndarray, weights: np.ndarray) -> float:
    """The value maximising the expected ``1 - min(|v - t| / t, 1)`` when ``log10 t`` has the discrete
    distribution ``weights`` over ``log_values``."""
    truths = 10.0 ** log_values
    candidates = 10.0 ** np.linspace(log_values[0], log_values[-1], 301)
    errors = np.minimum(np.abs(candidates[:, None] - truths[None, :]) / truths[None, :], 1.0)
    return float(candidates[np.argmin(errors @ weights)])


def _fit(stats: TileStatistics, level_sd: np.ndarray, step: float, dof: float, a_range,
         b_range) -> tuple[float, float]:
    """Score-optimal ``(a, b)`` under the posterior given the tiles' residual energies.

    level_sd: ``(n_tiles,)`` standard deviation of each tile's mean level under the current profile.
    """
    mean_level, energy_sum, count = _binned(stats.level, stats.residual, level_sd)
    half_dof = 0.5 * dof * _LIKELIHOOD_TEMPER
    full_box = (*np.log10(a_range), *np.log10(b_range))
    box = full_box
    for stage in range(2):  # a grid over the whole range, then one over where the posterior lives
        log_a = np.linspace(box[0], box[1], _GRID_POINTS)
        log_b = np.linspace(box[2], box[3], _GRID_POINTS)
        variance = variance_at_level(mean_level, 10.0 ** log_a[:, None, None], 10.0 ** log_b[None, :, None], step)
        neg_log_lik = half_dof * (energy_sum / variance + count * np.log(variance)).sum(axis=-1)
        posterior = np.exp(-(neg_log_lik - neg_log_lik.min()))
        if stage == 0:
            rows = np.flatnonzero((posterior > 1e-6).any(axis=1))
            cols = np.flatnonzero((posterior > 1e-6).any(axis=0))
            da, db = log_a[1] - log_a[0], log_b[1] - log_b[0]
            box = (max(full_box[0], log_a[rows[0]] - da), min(full_box[1], log_a[rows[-1]] + da),
                   max(full_box[2], log_b[cols[0]] - db), min(full_box[3], log_b[cols[-1]] + db))
    a_weights = posterior.sum(axis=1) / posterior.sum()
    b_weights = posterior.sum(axis=0) / posterior.sum()
    return _best_for_score(log_a, a_weights), _best_for_score(log_b, b_weights)


def estimate_profile(packed: np.ndarray, *, block: int = DEFAULT_BLOCK, step: float,
                     a_range: tuple[float, float], b_range: tuple[float, float]) -> tuple[float, float]:
    """Estimate ``(a, b)`` of one noisy image (see the module docstring for the method).

    packed: ``(h, w, planes)`` float array of stored values in [0, 1] (``h, w >= block + 6``).
    step: one DN in the normalised domain. a_range, b_range: the allowed (and prior) ranges; the
    result lies inside them. Deterministic: the same input always gives the same output.
    """
    packed = np.asarray(packed)
    if packed.ndim != 3:
        raise ValueError(f"expected an (h, w, planes) image, got shape {packed.shape}")
    if not np.all(np.isfinite(packed)):
        raise ValueError("image contains NaN or infinite values")
    return profile_from_statistics(tile_statistics(packed, block), block=block, step=step, a_range=a_range,
                                   b_range=b_range)


def profile_from_statistics(stats: TileStatistics, *, block: int, step: float, a_range: tuple[float, float],
                            b_range: tuple[float, float]) -> tuple[float, float]:
    """Steps 2-4 of the module docstring on tile statistics already computed: ``(a, b)`` inside the ranges.

    ``estimate_profile`` passes those of one image; a burst method may pass statistics whose energies
    come from differences between aligned frames (``methods.toolkit.burst_noise``), in which texture
    largely cancels."""
    dof = residual_degrees_of_freedom(block)
    a, b = _initial_profile(stats, a_range, b_range)
    selections: list[np.ndarray] = []
    for _ in range(_SELECTION_ROUNDS):
        noise_var = variance_at_level(stats.level, a, b, step)
        flat = _flat_tiles(stats, noise_var)
        if any(np.array_equal(flat, earlier) for earlier in selections):
            break  # converged, or cycling between selections that differ by a few threshold-edge tiles
        selections.append(flat)
        level_sd = np.sqrt(noise_var[flat] / block**2)
        a, b = _fit(stats.subset(flat), level_sd, step, dof, a_range, b_range)
    return a, b


# ---- from bench/core/rawio.py


#: Row/column offset of each packed plane inside a 2x2 CFA cell.
PLANE_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


_CFA_PHOTOMETRIC = 32803


@dataclass(frozen=True)
class RawImage:
    """A RAW frame as read from disk.

    mosaic: ``(H, W)`` uint16 sensor values, black level included, H and W even.
    cfa: colour of each packed plane, e.g. ``"BGGR"`` (see module docstring for the plane order).
    levels: the levels this frame is normalised with (``bench.core.levels``: chosen by the reader's
    ``LevelPolicy`` from the competition's or the file's own).
    path: where it was read from, or None.
    tags: the levels the file's DNG tags give, ``(black per plane, white)``, or None when not read from a file.
    """

    mosaic: np.ndarray
    cfa: str
    levels: Levels
    path: Path | None = None
    tags: tuple[tuple[int, int, int, int], int] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.mosaic.shape

    @property
    def black_level(self):
        """The black level (the four per plane where they differ)."""
        return self.levels.black_level

    @property
    def white_level(self) -> int:
        return self.levels.white

    def normalized_packed(self) -> np.ndarray:
        """``(H/2, W/2, 4)`` float32 in [0, 1] (values below black / above white are clipped)."""
        return pack_normalized(self.mosaic, self.levels.black_level, self.levels.white)


@dataclass(frozen=True)
class DngLayout:
    """Where and how the CFA image is stored inside a DNG/TIFF file."""

    height: int
    width: int
    bits_per_sample: int
    compression: int
    byteorder: str  # "<" or ">"
    tiled: bool
    data_offsets: tuple[int, ...]
    data_byte_counts: tuple[int, ...]
    file_size: int

    @property
    def is_contiguous_uncompressed_16bit(self) -> bool:
        """True when the pixels are one uncompressed 16-bit run of rows (strips, not tiles), the case the
        byte splice supports."""
        if self.compression != 1 or self.bits_per_sample != 16 or self.tiled:
            return False
        expected = self.height * self.width * 2
        ends = [o + n for o, n in zip(self.data_offsets, self.data_byte_counts)]
        contiguous = all(ends[i] == self.data_offsets[i + 1] for i in range(len(ends) - 1))
        return contiguous and sum(self.data_byte_counts) == expected

    @property
    def payload_offset(self) -> int:
        return self.data_offsets[0]


def inspect_dng(path: str | os.PathLike) -> DngLayout:
    """Parse the TIFF structure of ``path`` and locate its CFA image; check the file is complete.

    Raises BenchError (naming the file) when the file is missing, is not a TIFF/DNG, has no CFA image,
    or is shorter than its image data says (truncated).
    """
    import tifffile

    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{path}: is a folder, not a DNG file")
    if not path.is_file():
        raise BenchError(f"{path}: file not found")
    size = path.stat().st_size
    try:
        with tifffile.TiffFile(path) as tif:
            page = _find_cfa_page(tif)
            if page is None:
                raise BenchError(f"{path}: no CFA (Bayer) image in this DNG")
            layout = DngLayout(
                height=int(page.imagelength),
                width=int(page.imagewidth),
                bits_per_sample=int(page.bitspersample),
                compression=int(page.compression),
                byteorder=tif.byteorder,
                tiled=bool(page.is_tiled),
                data_offsets=tuple(int(o) for o in page.dataoffsets),
                data_byte_counts=tuple(int(n) for n in page.databytecounts),
                file_size=size,
            )
    except BenchError:
        raise
    except Exception as exc:  # tifffile raises several types for corrupt headers
        raise BenchError(f"{path}: not a readable DNG/TIFF file ({type(exc).__name__}: {exc})") from None
    needed = max((o + n for o, n in zip(layout.data_offsets, layout.data_byte_counts)), default=0)
    if needed > size:
        raise BenchError(f"{path}: truncated: file has {size} bytes but its image data ends at byte {needed}")
    return layout


def _find_cfa_page(tif):
    """The full-resolution CFA page of an open TiffFile, looking into SubIFDs as DNG allows."""
    import tifffile

    candidates = []
    for page in tif.pages:
        candidates.append(page)
        for offset in page.subifds or ():
            tif.filehandle.seek(offset)
            candidates.append(tifffile.TiffPage(tif, index=0))
    cfa_pages = [p for p in candidates if int(p.photometric) == _CFA_PHOTOMETRIC]
    if not cfa_pages:
        return None
    return max(cfa_pages, key=lambda p: int(p.imagelength) * int(p.imagewidth))


def read_dng(
    path: str | os.PathLike,
    levels: LevelPolicy | Levels | None = None,
    data: bytes | None = None,
) -> RawImage:
    """Read the visible Bayer mosaic of a DNG with rawpy.

    levels: the ``LevelPolicy`` that chooses this file's levels (default: the competition's 1024 / 16383,
    not read from the file, as the organisers did), or the ``Levels`` themselves.
    data: the file's bytes when the caller already read them (e.g. to hash them); read from ``path``
    otherwise.
    Raises BenchError naming the file for anything unreadable, or for tags that give no valid levels
    where the policy takes them from the file.
    """
    import rawpy

    path = Path(path)
    inspect_dng(path)
    if data is None:
        data = path.read_bytes()
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            pattern = np.asarray(raw.raw_pattern)
            colors = raw.color_desc.decode("ascii")
            per_channel, white = list(raw.black_level_per_channel), int(raw.white_level)
            mosaic = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
    except Exception as exc:
        raise BenchError(f"{path}: rawpy could not decode it ({type(exc).__name__}: {exc})") from None
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        raise BenchError(f"{path}: mosaic shape {mosaic.shape} is not a 2-D image with even sides")
    tags = _plane_levels(path, per_channel, white, pattern)
    cfa = "".join(colors[pattern[r, c]] for r, c in PLANE_OFFSETS)
    check_bayer(cfa, path)
    if not isinstance(levels, Levels):
        levels = (levels or LevelPolicy()).resolve(path, *tags)
    return RawImage(mosaic=mosaic, cfa=cfa, levels=levels, path=path, tags=tags)


def _plane_levels(path: Path, per_channel: list, white: int,
                  pattern: np.ndarray) -> tuple[tuple[int, int, int, int], int]:
    """``(black of each packed plane, white)`` from rawpy's tags: ``black_level_per_channel`` is indexed by
    colour index, which ``raw_pattern`` gives for each position of the 2x2 CFA cell. BenchError naming the
    file for a pattern that is not 2x2."""
    if pattern.shape != (2, 2):
        raise BenchError(f"{path}: CFA pattern {pattern.tolist()} is not a 2x2 Bayer pattern")
    return tuple(int(per_channel[int(pattern[r, c])]) for r, c in PLANE_OFFSETS), int(white)


def pack(mosaic: np.ndarray) -> np.ndarray:
    """``(H, W)`` -> ``(H/2, W/2, 4)``, planes in ``PLANE_OFFSETS`` order; dtype kept."""
    if mosaic.ndim != 2 or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        raise ValueError(f"pack needs a 2-D mosaic with even sides, got shape {mosaic.shape}")
    return np.stack([mosaic[r::2, c::2] for r, c in PLANE_OFFSETS], axis=-1)


def unpack(packed: np.ndarray) -> np.ndarray:
    """``(H/2, W/2, 4)`` -> ``(H, W)``; the inverse of :func:`pack`; dtype kept."""
    if packed.ndim != 3 or packed.shape[2] != 4:
        raise ValueError(f"unpack needs an (h, w, 4) array, got shape {packed.shape}")
    h, w, _ = packed.shape
    mosaic = np.empty((2 * h, 2 * w), dtype=packed.dtype)
    for plane, (r, c) in enumerate(PLANE_OFFSETS):
        mosaic[r::2, c::2] = packed[..., plane]
    return mosaic


def pack_normalized(mosaic: np.ndarray, black_level, white_level: int) -> np.ndarray:
    """What a method receives: the ``(H, W)`` mosaic packed, normalised and clipped -> ``(H/2, W/2, 4)``
    float32 in [0, 1]; ``black_level`` one level or four, one per plane."""
    return np.clip(normalize(pack(mosaic), black_level, white_level), 0.0, 1.0)


def write_dng_splice(template: str | os.PathLike, mosaic: np.ndarray, out_path: str | os.PathLike) -> None:
    """Write ``mosaic`` into a byte-for-byte copy of ``template`` (the competition's method).

    Only the pixel payload is replaced, so every tag of the template (size, CFA, colour data) is kept.
    Verified: the output has the template's size and rawpy reads back exactly ``mosaic``.
    Raises BenchError when the template is not an uncompressed contiguous 16-bit DNG of the same shape.
    """
    template = Path(template)
    layout = inspect_dng(template)
    if not layout.is_contiguous_uncompressed_16bit:
        raise BenchError(
            f"{template}: cannot splice into it (compression {layout.compression}, "
            f"{layout.bits_per_sample} bits, {len(layout.data_offsets)} strips); use the standalone writer"
        )
    if mosaic.shape != (layout.height, layout.width):
        raise BenchError(f"{template}: template is {layout.height}x{layout.width}, image is {mosaic.shape}")
    data = bytearray(template.read_bytes())
    payload = np.ascontiguousarray(mosaic, dtype=layout.byteorder + "u2").tobytes()
    start = layout.payload_offset
    data[start : start + len(payload)] = payload
    _write_verified(Path(out_path), bytes(data), mosaic, expected_size=layout.file_size)


def _write_verified(path: Path, data: bytes, mosaic: np.ndarray, expected_size: int | None,
                    expected: tuple[str, Levels] | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, check it (size, rawpy reads back exactly
    ``mosaic`` and, when ``expected`` is given, that CFA and the levels in its tags), then rename it into
    place: a crash or a failed check never leaves a bad file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write_and_check(tmp: Path) -> None:
        tmp.write_bytes(data)
        size = tmp.stat().st_size
        if expected_size is not None and size != expected_size:
            raise BenchError(f"{path}: written file has {size} bytes, template had {expected_size}")
        back = read_dng(tmp)
        if back.shape != mosaic.shape or not np.array_equal(back.mosaic, mosaic):
            raise BenchError(f"{path}: re-reading the written DNG does not give back the written pixels")
        if expected is not None and (back.cfa, back.tags) != (expected[0], (expected[1].black, expected[1].white)):
            raise BenchError(f"{path}: re-reading the written DNG gives CFA {back.cfa} and tags {back.tags}, not "
                             f"{expected[0]} and {expected[1].describe()}")

    atomic_write(path, write_and_check)


# ---- from bench/core/noise_model.py


#: The organisers' ranges of a and b.
A_RANGE = (1e-4, 1e-2)


B_RANGE = (1e-6, 1e-3)


@dataclass(frozen=True)
class NoiseProfile:
    """Noise variance ``a * x + b`` of a normalised packed image; ``source`` is "oracle" or "estimate"."""

    a: float
    b: float
    source: str = "oracle"

    def std(self, x: np.ndarray) -> np.ndarray:
        """Per-pixel noise standard deviation at clean level ``x`` (same shape as ``x``, float)."""
        return np.sqrt(np.maximum(self.a * np.asarray(x) + self.b, 0.0))


# ---- from bench/core/noise.py


def estimate_noise(packed: np.ndarray, *, block: int = DEFAULT_BLOCK,
                   step: float = 1.0 / (COMPETITION_WHITE_LEVEL - COMPETITION_BLACK_LEVEL)) -> NoiseProfile:
    """Estimate ``(a, b)`` of one noisy image from the image alone (the competition's final-round task).

    packed: ``(h, w, 4)`` normalised noisy image (float, values in [0, 1]; ``h, w >= block + 6``).
    block: side of the tiles the image is cut into. step: one DN in the normalised domain (the stored
    values are whole DN; the default is the competition's 1/15359).
    Returns ``NoiseProfile(a, b, source="estimate")`` with ``a`` in ``A_RANGE`` and ``b`` in ``B_RANGE``.
    Deterministic. The method (flat-tile selection, clipping-aware likelihood, score-optimal choice) is
    described in ``bench.core.noise_estimation``.
    """
    a, b = estimate_profile(packed, block=block, step=step, a_range=A_RANGE, b_range=B_RANGE)
    return NoiseProfile(a=a, b=b, source="estimate")


# ---- from bench/core/processes.py


def available_cores() -> int:
    """Cores this process may use: ``RAW_BENCH_CORES`` when a parent set it, else the CPU affinity."""
    if os.environ.get("RAW_BENCH_CORES", "").isdigit():
        return max(1, int(os.environ["RAW_BENCH_CORES"]))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this (child) process end when ``parent_pid`` does, also after ``kill -9`` of the parent: on
    Linux the kernel sends SIGKILL (prctl PR_SET_PDEATHSIG); everywhere a daemon thread checks once a second
    that the parent is still there. Call it first thing in a child process."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="die-with-parent", daemon=True).start()


# ---- from bench/datasets.py


NOISY_FILE_NAME = re.compile(r"^(\d+)_noise\.dng$", re.IGNORECASE)


TEST_FILE_NAME = re.compile(r"^noisy(\d+)\.dng$", re.IGNORECASE)


# ---- from bench/pipeline.py


class MethodOutputError(Exception):
    """A method returned something that is not a valid denoised image."""


def check_output(out, expected_shape: tuple[int, ...]) -> np.ndarray:
    """Validate a method's return value: array of ``expected_shape``, floating, finite, within [0, 1].
    Returns it as float32."""
    if not isinstance(out, np.ndarray):
        raise MethodOutputError(f"returned {type(out).__name__}, expected a numpy array")
    if out.shape != expected_shape:
        raise MethodOutputError(f"returned shape {out.shape}, expected {expected_shape}")
    if not np.issubdtype(out.dtype, np.floating):
        raise MethodOutputError(f"returned dtype {out.dtype}, expected floating point")
    if not np.isfinite(out).all():
        raise MethodOutputError(f"returned {int((~np.isfinite(out)).sum())} NaN or infinite values")
    low, high = float(out.min()), float(out.max())
    if low < 0.0 or high > 1.0:
        raise MethodOutputError(f"returned values outside [0, 1] (min {low:.6g}, max {high:.6g})")
    return out.astype(np.float32, copy=False)


def packed_to_mosaic(out, expected_shape: tuple[int, ...], levels: Levels) -> np.ndarray:
    """A method's ``(h, w, 4)`` output -> the ``(2h, 2w)`` uint16 mosaic written back: checked, clipped to
    [0, 1], scaled to each plane's [black, white] of ``levels`` and truncated (``Levels.denormalize``)."""
    return unpack(levels.denormalize(check_output(out, expected_shape)))


def find_noisy_inputs(folder: Path) -> list[tuple[str, Path]]:
    """The noisy images of ``folder`` as ``(id, path)`` in numeric order of the id.

    Accepts ``noisy{i}.dng`` (the test layout) or ``{i}_noise.dng`` files in ``folder`` itself or, when it
    has one, in its ``noisy/`` subfolder (the training layout). BenchError when there are none, or when two
    files claim the same id.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder}: input folder not found")
    if (folder / "noisy").is_dir():
        folder = folder / "noisy"
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        for pattern in (TEST_FILE_NAME, NOISY_FILE_NAME):
            match = pattern.match(path.name)
            if match:
                index = int(match.group(1))
                if index in found:
                    raise BenchError(f"{path}: image {index} is also {found[index].name}")
                found[index] = path
    if not found:
        raise BenchError(f"{folder}: no noisy images (expected noisy{{i}}.dng or {{i}}_noise.dng files)")
    return [(str(index), found[index]) for index in sorted(found)]


def output_name(image_id: str) -> str:
    """The submission's file name for image ``image_id``: ``denoise{i}.dng``."""
    return f"denoise{image_id}.dng"


def denoise_file(noisy_path: Path, out_path: Path, denoise, levels: LevelPolicy) -> float:
    """Read ``noisy_path`` with the levels ``levels`` gives it (the competition's, or its own DNG tags),
    estimate its noise profile, denoise it with ``denoise`` (module docstring) and write the result into a
    byte copy of the noisy file at ``out_path`` (values in its [black, white], its tags kept).

    Returns the seconds the whole file took. Raises BenchError naming the file for unreadable input, and
    MethodOutputError when ``denoise`` returns something invalid.
    """
    started = time.perf_counter()
    raw = read_dng(noisy_path, levels)
    packed = raw.normalized_packed()
    profile = estimate_noise(packed, step=raw.levels.dn_step)
    out = denoise(packed, profile, raw.cfa)
    write_dng_splice(noisy_path, packed_to_mosaic(out, packed.shape, raw.levels), out_path)
    return time.perf_counter() - started


def script_main(argv: list[str], denoise, levels: LevelPolicy, description: str) -> int:
    """Command line of an exported script: ``INPUT_DIR OUTPUT_DIR``; writes ``OUTPUT_DIR/denoise{i}.dng``
    for every noisy image of ``INPUT_DIR`` (see ``find_noisy_inputs``). Errors print one line and give
    exit status 2."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input_dir", type=Path, help="folder of noisy{i}.dng (or {i}_noise.dng) files")
    parser.add_argument("output_dir", type=Path, help="where denoise{i}.dng are written")
    args = parser.parse_args(argv)
    try:
        inputs = find_noisy_inputs(args.input_dir)
        for position, (image_id, path) in enumerate(inputs, start=1):
            seconds = denoise_file(path, args.output_dir / output_name(image_id), denoise, levels)
            print(f"[{position}/{len(inputs)}] {path.name} -> {output_name(image_id)}  {seconds:.1f} s", flush=True)
    except (BenchError, MethodOutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# ---- from methods/toolkit/vst.py


# Below this gain (in normalised units; the competition's a >= 1e-4) the signal-dependent part is ignored.
_MIN_GAIN = 1e-8


_SQRT_3_2 = np.sqrt(1.5)


#: Elements transformed at a time (256 KB of float32): each block's temporaries stay in the CPU cache.
BLOCK_ELEMENTS = 1 << 16


def _sigma_ratio_sq(profile: NoiseProfile) -> float:
    """``b / a**2``: the Gaussian variance in units of the Poisson-like gain."""
    return profile.b / profile.a**2


def _is_gaussian(profile: NoiseProfile) -> bool:
    return profile.a < _MIN_GAIN


def _check(profile: NoiseProfile) -> None:
    if profile.a < 0 or profile.b < 0 or (profile.a < _MIN_GAIN and profile.b <= 0):
        raise ValueError(f"noise profile a={profile.a}, b={profile.b} has no positive variance")


def _blockwise(values: np.ndarray, dtype: type, transform_block: Callable[[np.ndarray], None]) -> np.ndarray:
    """A new ``dtype`` array of ``values``' shape: ``values`` copied into it ``BLOCK_ELEMENTS`` at a time, each
    block then transformed in place by ``transform_block`` (so its temporaries stay in the CPU cache)."""
    values = np.asarray(values)
    result = np.empty(values.shape, dtype=dtype)
    flat_values, flat_result = values.reshape(-1), result.reshape(-1)
    for start in range(0, flat_result.size, BLOCK_ELEMENTS):
        block = flat_result[start:start + BLOCK_ELEMENTS]
        block[...] = flat_values[start:start + BLOCK_ELEMENTS]
        transform_block(block)
    return result


def _check_dtype(dtype: type) -> None:
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"the stabilised domain is float32 or float64, not {np.dtype(dtype)}")


def forward(z: np.ndarray, profile: NoiseProfile, dtype: type = np.float64) -> np.ndarray:
    """GAT of ``z`` (noisy values, any shape): a new ``dtype`` array (float64, or float32), noise standard
    deviation about 1. The float64 result is bit for bit the formula's, each step in float64."""
    _check(profile)
    _check_dtype(dtype)
    if _is_gaussian(profile):
        sigma = float(np.sqrt(profile.b))
        return _blockwise(z, dtype, lambda block: np.divide(block, sigma, out=block))
    gain, offset = float(profile.a), float(_sigma_ratio_sq(profile))

    def transform(block: np.ndarray) -> None:
        # 2 * sqrt(max(z/a + 3/8 + b/a**2, 0)), in the formula's order of operations
        block /= gain
        block += 0.375
        block += offset
        np.maximum(block, 0.0, out=block)
        np.sqrt(block, out=block)
        block *= 2.0

    return _blockwise(z, dtype, transform)


def inverse_unbiased(d: np.ndarray, profile: NoiseProfile, dtype: type = np.float64) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse (Makitalo & Foi 2013) of :func:`forward`.

    ``d``: denoised values in the stabilised domain (an estimate of E[f(z)]), any shape. Returns a new
    ``dtype`` array (float64, or float32) in the original units, never below 0. The approximation's negative
    powers of ``d`` blow up for small ``d``, so below ``2*sqrt(3/8)`` (the transform of a zero signal when
    ``b = 0``) the result is 0; between that and ``2*sqrt(3/8 + b/a**2)`` (zero signal in general) the
    formula itself gives values <= 0, which are clipped to 0. The float64 result is bit for bit the formula's,
    each step in float64.
    """
    _check(profile)
    _check_dtype(dtype)
    if _is_gaussian(profile):
        sigma = float(np.sqrt(profile.b))
        return _blockwise(d, dtype, lambda block: np.multiply(block, sigma, out=block))
    gain, offset = float(profile.a), float(_sigma_ratio_sq(profile))
    floor = float(2.0 * np.sqrt(0.375))
    first, third = float(0.25 * _SQRT_3_2), float(0.625 * _SQRT_3_2)

    def transform(block: np.ndarray) -> None:
        # a * (d > floor ? max(value, 0) : 0), value = s**2/4 + first/s - 1.375/s**2 + third/s**3 - 1/8 - b/a**2
        # with s = max(d, floor), summed in that order
        above_floor = block > floor
        safe = np.maximum(block, floor)
        term = np.empty_like(block)
        np.square(safe, out=block)
        block *= 0.25
        block += np.divide(first, safe, out=term)
        block -= np.divide(1.375, np.square(safe, out=term), out=term)
        block += np.divide(third, np.power(safe, 3, out=term), out=term)
        block -= 0.125
        block -= offset
        np.maximum(block, 0.0, out=block)
        np.copyto(block, 0.0, where=~above_floor)
        block *= gain

    return _blockwise(d, dtype, transform)


def denoise_stabilised(
    packed: np.ndarray,
    profile: NoiseProfile,
    denoise_unit_noise: Callable[[np.ndarray], np.ndarray],
    dtype: type = np.float64,
) -> np.ndarray:
    """Stabilise, denoise, invert: the common frame of the classical methods.

    packed: ``(h, w, 4)`` noisy normalised image. ``denoise_unit_noise`` receives the stabilised
    ``(h, w, 4)`` image in ``dtype``, whose noise standard deviation is about 1, and returns the denoised one
    (same shape; float32 or float64). ``dtype``: float64 (the default, used by BM3D) or float32 (half the
    memory traffic; for the fast filters, whose own arithmetic is float32 or 16-bit anyway). Returns
    ``(h, w, 4)`` float32 clipped to [0, 1].
    """
    stabilised = forward(packed, profile, dtype)
    denoised = denoise_unit_noise(stabilised)
    result = inverse_unbiased(denoised, profile, dtype)
    np.clip(result, 0.0, 1.0, out=result)
    return result.astype(np.float32, copy=False)


# ---- from methods/bm3d.py


#: Orthonormal (and its own inverse) 2x2 Haar transform across the four planes of a CFA cell. Row 0 is the
#: cell sum / 2, the channel in which BM3D matches blocks.
HAAR_2X2 = np.array([[1, 1, 1, 1],
                     [1, -1, 1, -1],
                     [1, 1, -1, -1],
                     [1, -1, -1, 1]], dtype=np.float64) / 2.0


#: Pixels of context added on each side of a tile (enough for BM3D's 8x8 blocks to see past the seam).
TILE_MARGIN = 16


#: Most worker processes used by default.
MAX_WORKERS = 4


@dataclass(frozen=True)
class Tile:
    """Where one tile lies: ``core`` (the pixels it produces) and ``padded`` (core plus margin) as slices
    of the image, and ``core_in_padded``, the core as slices of the padded crop."""

    core: tuple[slice, slice]
    padded: tuple[slice, slice]
    core_in_padded: tuple[slice, slice]


def tile_grid(height: int, width: int, tile_size: int, margin: int) -> list[Tile]:
    """Cover a ``height`` x ``width`` image with near-equal tiles of side at most ``tile_size`` (0: one tile),
    each padded by ``margin`` pixels on the sides that have neighbours."""
    rows = _spans(height, tile_size)
    cols = _spans(width, tile_size)
    tiles = []
    for r0, r1 in rows:
        for c0, c1 in cols:
            pr0, pr1 = max(r0 - margin, 0), min(r1 + margin, height)
            pc0, pc1 = max(c0 - margin, 0), min(c1 + margin, width)
            tiles.append(Tile(core=(slice(r0, r1), slice(c0, c1)), padded=(slice(pr0, pr1), slice(pc0, pc1)),
                              core_in_padded=(slice(r0 - pr0, r1 - pr0), slice(c0 - pc0, c1 - pc0))))
    return tiles


def _spans(length: int, tile_size: int) -> list[tuple[int, int]]:
    """Split ``range(length)`` into the fewest near-equal ``(start, stop)`` spans of at most ``tile_size``."""
    count = 1 if tile_size <= 0 else -(-length // tile_size)
    edges = [round(k * length / count) for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


#: The bm3d package's profile fields that the method's parameters of the same names set (0: the value of the
#: profile ``speed`` picks). ``_ht``: the hard-thresholding stage, ``_wiener``: the Wiener stage; ``step``:
#: distance between reference blocks, ``max_3d_size``: most blocks stacked per group, ``search_window``: side
#: of the block-matching search area, ``bs``: block side.
PROFILE_FIELDS = ("step_ht", "max_3d_size_ht", "search_window_ht", "bs_wiener", "step_wiener",
                  "max_3d_size_wiener", "search_window_wiener")


def package_profile(speed: str, overrides: tuple[tuple[str, int], ...] = ()):
    """The bm3d package profile: ``BM3DProfile`` ("standard") or ``BM3DProfileLC`` ("fast", sparser
    reference blocks, smaller search windows), with each ``(field, value)`` of ``overrides`` (fields of
    ``PROFILE_FIELDS``, value 0 = keep the profile's) set on it."""
    import bm3d

    profile = bm3d.BM3DProfileLC() if speed == "fast" else bm3d.BM3DProfile()
    for field_name, value in overrides:
        if field_name not in PROFILE_FIELDS:
            raise ValueError(f"not a BM3D profile field this method sets: {field_name!r}")
        if value:
            setattr(profile, field_name, int(value))
    return profile


def bm3d_joint(channels: np.ndarray, sigma: float, speed: str = "standard",
               overrides: tuple[tuple[str, int], ...] = (), wiener: bool = True) -> np.ndarray:
    """BM3D, single-threaded, of ``(h, w, c)`` float64 channels with white noise of std ``sigma`` in each;
    blocks are matched in channel 0. Profile: ``package_profile(speed, overrides)``; both stages, or the
    hard-thresholding stage alone when ``wiener`` is False. Returns the denoised ``(h, w, c)`` float64.
    Module-level so that worker processes can run it."""
    import bm3d

    profile = package_profile(speed, overrides)
    profile.num_threads = 1  # deterministic: the package's threads reorder float sums
    stages = bm3d.BM3DStages.ALL_STAGES if wiener else bm3d.BM3DStages.HARD_THRESHOLDING
    denoised = bm3d.bm3d(channels, sigma_psd=[sigma] * channels.shape[-1], profile=profile, stage_arg=stages)
    return np.asarray(denoised, dtype=np.float64).reshape(channels.shape)


def bm3d_packed(packed: np.ndarray, profile: NoiseProfile, sigma_scale: float, speed: str, tile_size: int,
                workers: int, step_ht: int = 0, max_3d_size_ht: int = 0, search_window_ht: int = 0,
                bs_wiener: int = 0, step_wiener: int = 0, max_3d_size_wiener: int = 0,
                search_window_wiener: int = 0, wiener: bool = True) -> np.ndarray:
    """``(h, w, 4)`` float32 noisy normalised image with noise ``profile`` -> the denoised ``(h, w, 4)``
    float32 in [0, 1]. Parameters as declared on ``BM3D``."""
    overrides = (("step_ht", step_ht), ("max_3d_size_ht", max_3d_size_ht), ("search_window_ht", search_window_ht),
                 ("bs_wiener", bs_wiener), ("step_wiener", step_wiener),
                 ("max_3d_size_wiener", max_3d_size_wiener), ("search_window_wiener", search_window_wiener))

    def filter_unit_noise(stabilised: np.ndarray) -> np.ndarray:
        # (h, w, 4) float64 with unit noise std -> denoised (h, w, 4) float64
        channels = stabilised @ HAAR_2X2.T
        tiles = tile_grid(channels.shape[0], channels.shape[1], tile_size, TILE_MARGIN)
        crops = [np.ascontiguousarray(channels[tile.padded]) for tile in tiles]
        sigmas = [sigma_scale] * len(crops)
        speeds = [speed] * len(crops)
        processes = min(workers if workers > 0 else min(MAX_WORKERS, available_cores()), len(crops))
        if processes == 1:
            results = [bm3d_joint(crop, sigma, speed, overrides, wiener) for crop, sigma in zip(crops, sigmas)]
        else:
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=processes, mp_context=spawn, initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                results = list(pool.map(bm3d_joint, crops, sigmas, speeds, [overrides] * len(crops),
                                        [wiener] * len(crops)))
        denoised = np.empty_like(channels)
        for tile, result in zip(tiles, results):
            denoised[tile.core] = result[tile.core_in_padded]
        return denoised @ HAAR_2X2

    return denoise_stabilised(packed, profile, filter_unit_noise)


# ---- this submission
#: Where each input's black and white levels come from (see LevelPolicy).
LEVELS = LevelPolicy(mode='competition', black=1024, white=16383)
DESCRIPTION = "bm3d (sigma_scale=0.9, speed='standard', tile_size=512, workers=0, step_ht=0, max_3d_size_ht=0, search_window_ht=0, bs_wiener=0, step_wiener=0, max_3d_size_wiener=0, search_window_wiener=0, wiener=True): BM3D (reference bm3d package, both stages) on the 4 Bayer planes jointly after a VST and a 2x2 Haar."

PARAMETERS = {'sigma_scale': 0.9, 'speed': 'standard', 'tile_size': 512, 'workers': 0, 'step_ht': 0, 'max_3d_size_ht': 0, 'search_window_ht': 0, 'bs_wiener': 0, 'step_wiener': 0, 'max_3d_size_wiener': 0, 'search_window_wiener': 0, 'wiener': True}


def denoise_image(packed: np.ndarray, profile: NoiseProfile, cfa: str) -> np.ndarray:
    """``(h, w, 4)`` float32 normalised noisy image in [0, 1], its noise profile and the colour of each plane
    -> the denoised ``(h, w, 4)`` float32 in [0, 1]."""
    return bm3d_packed(packed, profile, **PARAMETERS)


def main(argv: list[str]) -> int:
    return script_main(argv, denoise_image, LEVELS, DESCRIPTION)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
