"""Variance stabilisation for signal-dependent RAW noise ``var = a*x + b``.

The generalised Anscombe transform (GAT, Starck, Murtagh & Bijaoui 1998) maps a value ``z`` whose noise
variance is ``a*x + b`` to one whose noise standard deviation is about 1, so that a denoiser built for
white Gaussian noise of known sigma can be used:

    f(z) = 2 * sqrt(max(z/a + 3/8 + b/a**2, 0))

Going back, the algebraic inverse ``a*((D/2)**2 - 3/8 - b/a**2)`` is biased because ``f`` is nonlinear.
:func:`inverse_unbiased` uses the closed-form approximation of the exact unbiased inverse of Makitalo &
Foi (2013), written for this parametrisation, which removes most of that bias at low signal levels.
When ``a`` is negligible the noise is plain Gaussian and the transform is the scaling ``z / sqrt(b)``.

All functions take and return float arrays of any shape in the competition's normalised units.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from bench.core.noise_model import NoiseProfile

# Below this gain (in normalised units; the competition's a >= 1e-4) the signal-dependent part is ignored.
_MIN_GAIN = 1e-8
_SQRT_3_2 = np.sqrt(1.5)


def _sigma_ratio_sq(profile: NoiseProfile) -> float:
    """``b / a**2``: the Gaussian variance in units of the Poisson-like gain."""
    return profile.b / profile.a**2


def _is_gaussian(profile: NoiseProfile) -> bool:
    return profile.a < _MIN_GAIN


def _check(profile: NoiseProfile) -> None:
    if profile.a < 0 or profile.b < 0 or (profile.a < _MIN_GAIN and profile.b <= 0):
        raise ValueError(f"noise profile a={profile.a}, b={profile.b} has no positive variance")


def forward(z: np.ndarray, profile: NoiseProfile) -> np.ndarray:
    """GAT of ``z`` (noisy values): float64, noise standard deviation about 1."""
    _check(profile)
    z = np.asarray(z, dtype=np.float64)
    if _is_gaussian(profile):
        return z / np.sqrt(profile.b)
    return 2.0 * np.sqrt(np.maximum(z / profile.a + 0.375 + _sigma_ratio_sq(profile), 0.0))


def inverse_algebraic(d: np.ndarray, profile: NoiseProfile) -> np.ndarray:
    """Direct algebraic inverse of :func:`forward` (biased for denoised values; for reference)."""
    _check(profile)
    d = np.asarray(d, dtype=np.float64)
    if _is_gaussian(profile):
        return d * np.sqrt(profile.b)
    return profile.a * ((d / 2.0) ** 2 - 0.375 - _sigma_ratio_sq(profile))


def inverse_unbiased(d: np.ndarray, profile: NoiseProfile) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse (Makitalo & Foi 2013) of :func:`forward`.

    ``d``: denoised values in the stabilised domain (an estimate of E[f(z)]). Returns values in the
    original units, never below 0. The approximation's negative powers of ``d`` blow up for small ``d``,
    so below ``2*sqrt(3/8)`` (the transform of a zero signal when ``b = 0``) the result is 0; between
    that and ``2*sqrt(3/8 + b/a**2)`` (zero signal in general) the formula itself gives values <= 0,
    which are clipped to 0.
    """
    _check(profile)
    d = np.asarray(d, dtype=np.float64)
    if _is_gaussian(profile):
        return d * np.sqrt(profile.b)
    ratio = _sigma_ratio_sq(profile)
    floor = 2.0 * np.sqrt(0.375)
    safe = np.maximum(d, floor)
    value = (0.25 * safe**2 + 0.25 * _SQRT_3_2 / safe - 1.375 / safe**2 + 0.625 * _SQRT_3_2 / safe**3
             - 0.125 - ratio)
    return profile.a * np.where(d > floor, np.maximum(value, 0.0), 0.0)


def denoise_stabilised(
    packed: np.ndarray,
    profile: NoiseProfile,
    denoise_unit_noise: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Stabilise, denoise, invert: the common frame of the classical methods.

    packed: ``(h, w, 4)`` noisy normalised image. ``denoise_unit_noise`` receives the stabilised
    ``(h, w, 4)`` float64 image, whose noise standard deviation is about 1, and returns the denoised one
    (same shape). Returns ``(h, w, 4)`` float32 clipped to [0, 1].
    """
    stabilised = forward(packed, profile)
    denoised = denoise_unit_noise(stabilised)
    return np.clip(inverse_unbiased(denoised, profile), 0.0, 1.0).astype(np.float32)
