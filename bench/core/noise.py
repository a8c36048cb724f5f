"""The blind estimator of an image's noise profile (the model and the organisers' generator are in
``bench.core.noise_model``).

Everything here works in the competition's normalised domain on packed images
(``(h, w, 4)`` float values in [0, 1], see ``bench.core.rawio``), where the noise model is
``var(x) = a * x + b`` with ``a`` in [1e-4, 1e-2] and ``b`` in [1e-6, 1e-3].
"""

from __future__ import annotations

import numpy as np

from bench.core.noise_estimation import DEFAULT_BLOCK, estimate_profile
from bench.core.noise_model import A_RANGE, B_RANGE, NoiseProfile
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL

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
