"""Blind noise profile of a burst, from the differences between the aligned frames and frame 0.

A blind profile estimated from frame 0 alone (``bench.core.noise``) needs flat tiles, and a detailed scene
has few: on the detailed scenes (``bench.detailed_scenes``) it was up to 5x too high in ``a`` and 14x in
``b``. A burst carries the same scene several times, so the difference between an aligned frame and the
reference is mostly noise even where the scene is textured: what is left of the texture is the alignment's
error, small next to the texture itself.

Per frame k >= 1, the estimator takes ``D_k = aligned_k - frame_0`` and computes the same tile statistics
as the single-frame estimator (``bench.core.noise_estimation.tile_statistics``): the tile levels from frame
0, the residual and texture energies from ``D_k``. The noise of ``D_k`` is frame 0's plus the aligned
frame's, and the alignment's warp filters the latter (a demosaic and a cubic resampling average
neighbouring samples), so each energy is divided by ``1 + g``, where ``g`` is the energy that the same warp
gives unit white noise (measured by warping one white-noise image per frame, per plane, with the frame's
own displacement field). Averaged over the frames, these statistics go through the single-frame
estimator's flat-tile selection and clipping-aware fit (``profile_from_statistics``) unchanged.

Measured on the 10 detailed scenes (8 frames, default motion; ratios to the true ``a`` / ``b``): frame 0
alone 0.40-5.26 / 0.28-14.4, the burst 0.87-1.62 / 0.92-2.30; on the embedded set the two are within
0.67-1.26 of the truth (README, *Bursts*).
"""

from __future__ import annotations

import numpy as np

from bench.core.noise_estimation import DEFAULT_BLOCK, TileStatistics, profile_from_statistics, tile_statistics
from bench.core.noise_model import A_RANGE, B_RANGE, NoiseProfile
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL
from methods.toolkit.align import warp_mosaic

#: One DN of the competition's range, used when a frame's own grid of values cannot be read off it.
COMPETITION_DN = 1.0 / (COMPETITION_WHITE_LEVEL - COMPETITION_BLACK_LEVEL)
#: Seed of the white-noise images that measure each warp's gain (the estimate is deterministic).
GAIN_SEED = 0
_ENERGIES = ("residual", "fine_texture", "coarse_texture")


def dn_step(frame: np.ndarray) -> float:
    """One DN of an ``(h, w, 4)`` normalised frame: the smallest gap between distinct values of its first
    plane (stored values are whole DN); the competition's 1/15359 when the plane has a single value."""
    values = np.unique(np.asarray(frame[..., 0], dtype=np.float64))
    gaps = np.diff(values)
    return float(gaps.min()) if len(gaps) else COMPETITION_DN


def burst_noise_profile(frames: np.ndarray, aligned: np.ndarray, fields: np.ndarray, cfa: str,
                        block: int = DEFAULT_BLOCK) -> NoiseProfile:
    """The blind ``NoiseProfile`` (source "estimate") of a burst (see the module docstring).

    frames: ``(N, h, w, 4)`` float32 in [0, 1], frame 0 the reference, N >= 2. aligned: ``(N, h, w, 4)``,
    frame k warped onto frame 0 by ``warp_mosaic(frames[k], fields[k], cfa)`` (``aligned[0]`` unused).
    fields: ``(N, h, w, 2)`` packed-pixel displacements (``methods.toolkit.align.burst_fields``).
    Returns ``a`` in ``A_RANGE``, ``b`` in ``B_RANGE``. Deterministic.
    """
    reference = np.asarray(frames[0], dtype=np.float64)
    planes = reference.shape[-1]
    rng = np.random.default_rng(GAIN_SEED)
    energies: dict[str, list[np.ndarray]] = {name: [] for name in _ENERGIES}
    for k in range(1, len(frames)):
        unit = rng.standard_normal(reference.shape).astype(np.float32)
        gains = tile_statistics(warp_mosaic(unit, fields[k], cfa), block)
        differences = tile_statistics(np.asarray(aligned[k], dtype=np.float64) - reference, block)
        tiles = len(gains.level) // planes
        for name in _ENERGIES:
            plane_gain = getattr(gains, name).reshape(planes, tiles).mean(axis=1)
            energies[name].append(getattr(differences, name) / np.repeat(1.0 + plane_gain, tiles))
    stats = TileStatistics(tile_statistics(reference, block).level,
                           *(np.mean(energies[name], axis=0) for name in _ENERGIES))
    a, b = profile_from_statistics(stats, block=block, step=dn_step(frames[0]), a_range=A_RANGE, b_range=B_RANGE)
    return NoiseProfile(a=a, b=b, source="estimate")


def profile_of_burst(raw, fields: np.ndarray, warped: np.ndarray | None = None) -> NoiseProfile:
    """The profile a burst method works with: the run's own (``raw.noise``) where it is the true one or the
    burst is one frame; where it is blind (source "estimate"), :func:`burst_noise_profile` of the burst.
    raw: a ``methods.base.NoisyRaw``. fields: ``(N, h, w, 2)`` as for ``burst_noise_profile``. warped: the
    frames already warped onto frame 0 by ``warp_mosaic`` (``(N, h, w, 4)``), or None to warp them here."""
    profile = raw.noise
    if profile.source != "estimate" or len(raw.frames) < 2:
        return profile
    if warped is None:
        warped = np.stack([raw.frames[0]] + [warp_mosaic(f, d, raw.cfa) for f, d in zip(raw.frames[1:], fields[1:])])
    return burst_noise_profile(raw.frames, warped, fields, raw.cfa)
