"""Signal-dependent RAW noise: the organisers' generator and a blind estimator of its profile.

Everything here works in the competition's normalised domain on packed images
(``(h, w, 4)`` float values in [0, 1], see ``bench.rawio``), where the noise model is
``var(x) = a * x + b`` with ``a`` in [1e-4, 1e-2] and ``b`` in [1e-6, 1e-3].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.rawio import denormalize, normalize, pack, unpack

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


def add_noise(
    clean_mosaic: np.ndarray, a: float, b: float, rng: np.random.Generator, black_level: int, white_level: int
) -> np.ndarray:
    """The organisers' generator: ``noisy = x + N(0, sqrt(a*x + b))`` on the normalised packed image,
    clipped to [0, 1] and truncated back to uint16.

    clean_mosaic: ``(H, W)`` uint16 with black level. Returns the noisy ``(H, W)`` uint16 mosaic.
    """
    x = normalize(pack(clean_mosaic), black_level, white_level).astype(np.float64)
    sigma = np.sqrt(np.maximum(a * x + b, 0.0))
    noisy = x + rng.standard_normal(x.shape) * sigma
    return unpack(denormalize(noisy, black_level, white_level))


# A 3x3 second-difference kernel: zero response to constant and linear signals, unit gain for white noise
# (the squares of its taps sum to 1), so the filtered image's variance is the noise variance where the
# scene is locally smooth.
_RESIDUAL_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64) / 6.0


def estimate_noise(packed: np.ndarray, block: int = 8, bins: int = 24) -> NoiseProfile:
    """Estimate ``(a, b)`` of one noisy image from the image alone.

    packed: ``(h, w, 4)`` normalised noisy image (float, values in [0, 1]).

    Per plane, the image is cut into ``block`` x ``block`` tiles; each tile gives its mean level and the
    variance of a high-pass residual. Tiles are grouped by level; within a group the lower quartile of
    tile variances (texture only adds variance) stands for the noise variance, corrected for the bias of
    taking a quartile of chi-square distributed values. Levels so close to 0 or 1 that clipping lowers
    the variance are left out. A weighted least-squares line through (level, variance) gives ``a, b``.
    """
    from scipy.ndimage import convolve
    from scipy.stats import chi2

    levels, variances = [], []
    for plane in np.moveaxis(np.asarray(packed, dtype=np.float64), -1, 0):
        residual = convolve(plane, _RESIDUAL_KERNEL, mode="reflect")
        h = (plane.shape[0] // block) * block
        w = (plane.shape[1] // block) * block
        tiles = (h // block, block, w // block, block)
        levels.append(plane[:h, :w].reshape(tiles).mean(axis=(1, 3)).ravel())
        variances.append((residual[:h, :w].reshape(tiles) ** 2).mean(axis=(1, 3)).ravel())
    level = np.concatenate(levels)
    variance = np.concatenate(variances)

    # Neighbouring residuals share pixels, so a tile holds fewer independent samples than block**2.
    dof = block * block / 4.0
    quantile = 0.25
    bias = chi2.ppf(quantile, dof) / dof

    edges = np.quantile(level, np.linspace(0, 1, bins + 1))
    xs, ys, weights = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (level >= lo) & (level <= hi)
        if inside.sum() < 8:
            continue
        x = float(np.median(level[inside]))
        v = float(np.quantile(variance[inside], quantile)) / bias
        sigma = np.sqrt(max(v, 0.0))
        if x - 3 * sigma <= 0.0 or x + 3 * sigma >= 1.0:
            continue  # clipping at 0 or 1 lowers the measured variance
        xs.append(x)
        ys.append(v)
        weights.append(inside.sum() / max(v, 1e-12) ** 2)
    if len(xs) < 2:
        v = float(np.median(variance)) / bias
        return NoiseProfile(a=0.0, b=max(v, 0.0), source="estimate")
    design = np.stack([np.asarray(xs), np.ones(len(xs))], axis=1)
    root_w = np.sqrt(np.asarray(weights))
    (a, b), *_ = np.linalg.lstsq(design * root_w[:, None], np.asarray(ys) * root_w, rcond=None)
    return NoiseProfile(a=float(max(a, 0.0)), b=float(max(b, 0.0)), source="estimate")
