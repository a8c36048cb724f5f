"""Band-limited camera motion of an image: translation and rotation by Fourier shifts, no interpolation kernel.

Translations are phase ramps of the Fourier transform along each axis; a rotation is three shears, each a
per-line Fourier shift (Unser, Thevenaz & Yaroslavsky 1995). The image is first extended by reflection on every
side and the extension tapered to each line's mean, so that its periodic continuation has no edge; lines are
made odd in length so that there is no Nyquist term and a shift is undone exactly by the opposite one.

Two users: the synthetic bursts (``bench.burst``) move the clean scene with :func:`move_image`, and
:mod:`methods.burst_reconstruct` uses the same model, unclipped (:func:`move_content`), as the forward model
of its reconstruction, with :func:`move_content` ``inverse=True`` as the model's adjoint (every shear and
shift is unitary on the extended lines; only the extension and crop at the borders make the inverse differ
from the adjoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Pixels of reflected, tapered extension on each side for the Fourier motion.
MOTION_MARGIN = 32


@dataclass(frozen=True)
class FrameMotion:
    """Motion of one frame relative to frame 0: the content shifts by ``(dy, dx)`` sensor pixels and rotates by
    ``rotation`` degrees about the image centre (OpenCV's sense of the angle)."""

    dy: float
    dx: float
    rotation: float


def shift_lines(image: np.ndarray, shifts: np.ndarray, axis: int) -> np.ndarray:
    """Band-limited shift of every 1-D line of ``image`` along ``axis`` (its length odd, so there is no
    Nyquist term and a shift is undone exactly by the opposite shift): ``out[..., i, ...] = image[..., i -
    s, ...]`` with ``s`` = ``shifts``, broadcast against ``image`` with size 1 along ``axis``. Computed in
    ``image``'s precision: float32 stays float32, anything else is float64."""
    import scipy.fft  # not at import time: `bench list` loads no scipy

    length = image.shape[axis]
    if length % 2 == 0:
        raise ValueError(f"Fourier line shifts need an odd length, got {length}")
    frequencies = np.fft.rfftfreq(length)
    shape = [1] * image.ndim
    shape[axis] = len(frequencies)
    ramp = np.exp(-2j * np.pi * frequencies.reshape(shape) * np.asarray(shifts, dtype=np.float64))
    if image.dtype == np.float32:
        ramp = ramp.astype(np.complex64)
    return scipy.fft.irfft(scipy.fft.rfft(image, axis=axis) * ramp, n=length, axis=axis)


def tapered_extension(image: np.ndarray, margin: int, axis: int) -> np.ndarray:
    """``image`` extended along ``axis`` by ``margin`` reflected samples before and ``margin`` (or
    ``margin + 1``, to make the length odd) after, the extension fading (raised cosine) to each line's mean
    so that the periodic continuation is smooth. Keeps float32, else float64."""
    length = image.shape[axis]
    after = margin + (length + 1) % 2
    padding = [(0, 0)] * image.ndim
    padding[axis] = (margin, after)
    padded = np.pad(image, padding, mode="reflect")
    mean = padded.mean(axis=axis, keepdims=True)
    weight = np.ones(padded.shape[axis], dtype=padded.dtype)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(margin) / margin)
    weight[:margin] = ramp
    weight[margin + length:] = np.r_[ramp[::-1], np.zeros(after - margin)]
    shape = [1] * image.ndim
    shape[axis] = len(weight)
    return mean + (padded - mean) * weight.reshape(shape)


def move_content(image: np.ndarray, motion: FrameMotion, inverse: bool = False) -> np.ndarray:
    """``(H, W, C)`` image as seen after the camera moved by ``motion`` (band-limited, module docstring), not
    clipped; with ``inverse``, the opposite motion (the steps undone in reverse order). Keeps float32, else
    float64."""
    dtype = np.float32 if image.dtype == np.float32 else np.float64
    height, width = image.shape[:2]
    margin = MOTION_MARGIN
    padded = tapered_extension(tapered_extension(np.asarray(image, dtype=dtype), margin, 0), margin, 1)
    rows = (np.arange(padded.shape[0]) - margin - (height - 1) / 2.0)[:, None, None]
    columns = (np.arange(padded.shape[1]) - margin - (width - 1) / 2.0)[None, :, None]
    angle = -np.deg2rad(motion.rotation)
    along_x, along_y = -np.tan(angle / 2.0), np.sin(angle)
    if inverse:
        padded = shift_lines(padded, np.full((1, 1, 1), -motion.dx), axis=1)
        padded = shift_lines(padded, np.full((1, 1, 1), -motion.dy), axis=0)
        padded = _rotate(padded, motion.rotation, -along_x * rows, -along_y * columns)
    else:
        padded = _rotate(padded, motion.rotation, along_x * rows, along_y * columns)
        padded = shift_lines(padded, np.full((1, 1, 1), motion.dy), axis=0)
        padded = shift_lines(padded, np.full((1, 1, 1), motion.dx), axis=1)
    return np.ascontiguousarray(padded[margin:margin + height, margin:margin + width])


def move_image(rgb: np.ndarray, motion: FrameMotion) -> np.ndarray:
    """``(H, W, 3)`` RGB in [0, 1] as seen after the camera moved (:func:`move_content`), clipped to [0, 1].
    float64."""
    return np.clip(move_content(np.asarray(rgb, dtype=np.float64), motion), 0.0, 1.0)


def _rotate(padded: np.ndarray, rotation: float, shear_x: np.ndarray, shear_y: np.ndarray) -> np.ndarray:
    """Three shears (x, y, x) by per-line shifts ``shear_x`` (per row) and ``shear_y`` (per column); none
    when ``rotation`` is 0."""
    if not rotation:
        return padded
    padded = shift_lines(padded, shear_x, axis=1)
    padded = shift_lines(padded, shear_y, axis=0)
    return shift_lines(padded, shear_x, axis=1)
