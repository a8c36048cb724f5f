"""Variance stabilisation for signal-dependent RAW noise ``var = a*x + b``.

The generalised Anscombe transform (GAT, Starck, Murtagh & Bijaoui 1998) maps a value ``z`` whose noise
variance is ``a*x + b`` to one whose noise standard deviation is about 1, so that a denoiser built for
white Gaussian noise of known sigma can be used:

    f(z) = 2 * sqrt(max(z/a + 3/8 + b/a**2, 0))

Going back, the algebraic inverse ``a*((D/2)**2 - 3/8 - b/a**2)`` is biased because ``f`` is nonlinear.
:func:`inverse_unbiased` uses the closed-form approximation of the exact unbiased inverse of Makitalo &
Foi (2013), written for this parametrisation, which removes most of that bias at low signal levels.
When ``a`` is negligible the noise is plain Gaussian and the transform is the scaling ``z / sqrt(b)``.

All functions take and return float arrays of any shape in the competition's normalised units. The
transforms work in float64 by default and in float32 when asked (``dtype``); both are computed in place,
a block of ``BLOCK_ELEMENTS`` at a time, and the float64 results are bit for bit those of the formulas
written out in float64 (``tests/test_vst.py``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from bench.core.noise_model import NoiseProfile

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


def inverse_algebraic(d: np.ndarray, profile: NoiseProfile) -> np.ndarray:
    """Direct algebraic inverse of :func:`forward` (biased for denoised values; for reference)."""
    _check(profile)
    d = np.asarray(d, dtype=np.float64)
    if _is_gaussian(profile):
        return d * np.sqrt(profile.b)
    return profile.a * ((d / 2.0) ** 2 - 0.375 - _sigma_ratio_sq(profile))


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
