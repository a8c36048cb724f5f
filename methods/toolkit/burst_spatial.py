"""The spatial stage shared by the burst methods that merge first and denoise after (:mod:`methods.burst_merge`,
:mod:`methods.burst_reconstruct`): BM3D of the merged image at its residual noise, with the windows that the check
against frame 0 rejected blended towards a fallback image."""

from __future__ import annotations

import numpy as np

from bench.core.noise_model import NoiseProfile
from methods.base import NoisyRaw
from methods.bm3d import BM3D


def bm3d_with_fallback(merged: np.ndarray, raw: NoisyRaw, profile: NoiseProfile, residual_factor: float,
                       sigma_scale: float, weight: np.ndarray | None,
                       fallback: np.ndarray | None = None) -> np.ndarray:
    """BM3D (``sigma_scale``) of the ``(h, w, 4)`` merged image at ``profile`` scaled by ``residual_factor``;
    where the check against frame 0 pulled the merge towards it (``weight`` ``(h, w, 4)`` < 1), the result is
    ``fallback + weight * (output - fallback)``. fallback: an ``(h, w, 4)`` denoised image in [0, 1] (another
    burst method's output), or None for frame 0 denoised on its own by BM3D (computed here only then). ``weight``
    None or 1 everywhere: BM3D's output as it is. Returns ``(h, w, 4)`` float32 in [0, 1]."""
    residual = NoiseProfile(profile.a * residual_factor, profile.b * residual_factor, profile.source)
    out = BM3D(sigma_scale=sigma_scale).denoise(NoisyRaw(merged[None], raw.cfa, lambda: residual, raw.image_id))
    if weight is None or float(weight.min()) >= 1.0:
        return out
    if fallback is None:
        fallback = BM3D().denoise(NoisyRaw(np.asarray(raw.frames)[:1], raw.cfa, lambda: profile, raw.image_id))
    return np.clip(fallback + weight * (out - fallback), 0.0, 1.0).astype(np.float32)
