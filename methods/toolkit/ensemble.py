"""Bayer-aware self-ensemble: denoise flipped and transposed copies of a BGGR mosaic and average the results
brought back.

A flip of a Bayer mosaic changes its phase along that axis (BGGR flipped left-right is GBRG), so a network
trained on BGGR would see the wrong colour in every plane. Here a flipped axis is first padded by two
reflected samples at each end (a reflection by an even count keeps the phase), flipped, and one sample is
dropped at each end: the result is BGGR again, one sample longer at each end than the original, and every
original sample keeps its colour. A transpose keeps BGGR as it is. Each transform is undone exactly on the
output, so the average is over aligned pixels.

``TRANSFORMS[:count]`` are used: 1 = identity only (off), 2 = + transpose, 4 = the four flips, 8 = the four
flips with and without the transpose.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: (flip rows, flip columns, transpose), in the order ``count`` takes them.
TRANSFORMS = ((False, False, False), (False, False, True), (True, False, False), (False, True, False),
              (True, True, False), (True, False, True), (False, True, True), (True, True, True))
ENSEMBLE_COUNTS = (1, 2, 4, 8)


def _flip_axis(mosaic: np.ndarray, axis: int) -> np.ndarray:
    """Flip along ``axis`` keeping the BGGR phase: pad 2 (reflect), reverse, drop one sample at each end;
    the axis grows by 2."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (2, 2)
    flipped = np.flip(np.pad(mosaic, pad, mode="reflect"), axis=axis)
    length = flipped.shape[axis]
    return np.take(flipped, np.arange(1, length - 1), axis=axis)


def _unflip_axis(mosaic: np.ndarray, axis: int) -> np.ndarray:
    """Undo ``_flip_axis`` on a result of the same shape: reverse, keep samples 1 .. n-2 (the original's)."""
    reversed_back = np.flip(mosaic, axis=axis)
    length = reversed_back.shape[axis]
    return np.take(reversed_back, np.arange(1, length - 1), axis=axis)


def forward(mosaic: np.ndarray, flip_rows: bool, flip_columns: bool, transpose: bool) -> np.ndarray:
    """The ``(H, W)`` BGGR mosaic transformed; still BGGR (module docstring)."""
    if flip_rows:
        mosaic = _flip_axis(mosaic, 0)
    if flip_columns:
        mosaic = _flip_axis(mosaic, 1)
    return np.ascontiguousarray(mosaic.T if transpose else mosaic)


def inverse(mosaic: np.ndarray, flip_rows: bool, flip_columns: bool, transpose: bool) -> np.ndarray:
    """Undo ``forward`` with the same flags on an output lined up with its result."""
    if transpose:
        mosaic = mosaic.T
    if flip_columns:
        mosaic = _unflip_axis(mosaic, 1)
    if flip_rows:
        mosaic = _unflip_axis(mosaic, 0)
    return np.ascontiguousarray(mosaic)


def ensemble_average(mosaic: np.ndarray, denoise: Callable[[np.ndarray], np.ndarray], count: int) -> np.ndarray:
    """Mean of ``inverse(denoise(forward(mosaic, t)), t)`` over ``TRANSFORMS[:count]``.

    mosaic: ``(H, W)`` float32 BGGR. denoise: a BGGR mosaic -> its denoised mosaic (same shape, float).
    count: one of ``ENSEMBLE_COUNTS``. Returns ``(H, W)`` float32.
    """
    if count not in ENSEMBLE_COUNTS:
        raise ValueError(f"self-ensemble count must be one of {ENSEMBLE_COUNTS}, not {count}")
    total = np.zeros(mosaic.shape, dtype=np.float64)
    for flags in TRANSFORMS[:count]:
        total += inverse(np.asarray(denoise(forward(mosaic, *flags)), dtype=np.float64), *flags)
    return (total / count).astype(np.float32)
