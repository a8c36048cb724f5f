"""The noise model ``var(x) = a * x + b`` in the normalised domain: its parameters and the organisers'
generator. Numpy only, so that methods, bursts and listings use it without the estimator's scipy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.rawio import denormalize, normalize, pack, unpack

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


def add_noise(
    clean_mosaic: np.ndarray, a: float, b: float, rng: np.random.Generator, black_level, white_level: int
) -> np.ndarray:
    """The organisers' generator: ``noisy = x + N(0, sqrt(a*x + b))`` on the normalised packed image,
    clipped to [0, 1] and truncated back to uint16.

    clean_mosaic: ``(H, W)`` uint16 with black level; black_level one level or four, one per packed plane
    (so ``a``, ``b`` are in the normalised units of these levels). Returns the noisy ``(H, W)`` uint16 mosaic.
    """
    x = normalize(pack(clean_mosaic), black_level, white_level).astype(np.float64)
    sigma = np.sqrt(np.maximum(a * x + b, 0.0))
    noisy = x + rng.standard_normal(x.shape) * sigma
    return unpack(denormalize(noisy, black_level, white_level))
