"""Signal-dependent RAW noise: the organisers' generator and a blind estimator of its profile.

Everything here works in the competition's normalised domain on packed images
(``(h, w, 4)`` float values in [0, 1], see ``bench.core.rawio``), where the noise model is
``var(x) = a * x + b`` with ``a`` in [1e-4, 1e-2] and ``b`` in [1e-6, 1e-3].
"""

from __future__ import annotations

import numpy as np

from bench.core.noise_estimation import DEFAULT_BLOCK, estimate_profile
from bench.core.profile import A_RANGE, B_RANGE, NoiseProfile
from bench.core.rawio import (COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, denormalize, normalize, pack,
                              unpack)

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
