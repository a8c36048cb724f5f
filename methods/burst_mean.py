"""Burst averaging: align every frame to frame 0, then a robust per-pixel mean.

Alignment is :func:`methods.toolkit.align.align_burst` (coarse-to-fine tiles on the Bayer-downsampled image,
sub-pixel refinement, dense cubic warp). A pixel of an aligned frame joins the mean only where the 3x3
local mean of its difference to the reference is within ``rejection`` standard deviations of what noise
alone would give (the noise profile at the reference's local mean), so misaligned edges and moving content
fall back to the reference instead of ghosting. With static frames nearly every pixel is kept and the
noise variance drops by the number of frames.

The 3x3 test misses errors that are fine-grained: a demosaic warp of sharp detail errs by a pattern that
changes sign from pixel to pixel, so its 3x3 mean is small while each pixel is off by several noise std, and on
detailed scenes (``bench.detailed_scenes``) the mean fell up to 10 dB below the noisy reference. So the result
then passes a second, noise-driven test against the reference (:func:`fall_back_to_reference`): in every
``fallback_window`` x ``fallback_window`` window of a plane, the mean square of (result - reference) is what
the reference's own noise predicts if the result is unbiased; the excess over ``fallback_tolerance`` times
that is taken as the result's squared bias there, and the result is pulled towards the reference by the
weight that minimises the expected squared error (continuously: 1 where there is no excess). With static
frames or good alignment the excess is nearly nowhere and the result hardly changes. The defaults (window 15,
tolerance 1.25) were chosen on detailed scenes made from other photographs (``CBSD68``, ``CSun_Hays80``) than
those the README's table uses, and on the embedded set with and without motion (README, *Bursts*); windows
of 11 did 0.05 dB better on those detailed scenes but left static embedded bursts 0.104 dB short of the ideal
gain 10*log10(N) (the target is 0.1), because a smaller window flags more windows of pure noise.

Where the run's profile is blind, it is first re-estimated from the burst
(:mod:`methods.toolkit.burst_noise`): a profile estimated from frame 0 alone can be many times too high on
detailed content, which would let real disagreement pass as noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from methods.toolkit.align import DEFAULT_SEARCH, DEFAULT_TILE, burst_fields, warp_mosaic
from methods.base import Method, NoisyRaw, at_least, param
from methods.registry import register_method


#: The meaning of ``blind_noise`` and ``fallback_tolerance``, parameters of both burst methods.
BLIND_NOISE_DOC = ("where the run's noise profile is blind (estimated from frame 0 alone), re-estimate it from the "
                   "differences between the aligned frames and frame 0 (burst) or keep it (reference); a true "
                   "profile is always kept")
BLIND_NOISE_CHOICES = ("burst", "reference")
FALLBACK_TOLERANCE_DOC = ("a window's mean square difference to the reference beyond this many times what noise "
                          "predicts is taken as bias and pulls it towards the reference (0 = no check)")


@register_method("burst_mean")
@dataclass
class BurstMean(Method):
    """Align the burst to frame 0 (coarse-to-fine tiles, sub-pixel), then a noise-aware robust mean."""

    kind = "burst"
    requires = {"cv2": "opencv-python-headless", "scipy": "scipy"}
    rejection: float = param(3.0, "a frame's pixel is left out where its 3x3 mean difference to the reference "
                                  "exceeds this many noise std of that difference (0 = the reference only)",
                               low=1.5, high=8.0, valid=at_least(0))
    tile: int = param(DEFAULT_TILE, "alignment tile side, packed pixels", valid=at_least(1))
    search: int = param(DEFAULT_SEARCH, "alignment search radius per pyramid level, packed pixels (0 = no "
                                        "search, sub-pixel refinement only)", valid=at_least(0))

    resample: str = param("warp", "how frames are brought onto the reference: warped through a demosaic "
                                  "(warp), or each pixel taken at its whole-CFA-cell displacement (integer, "
                                  "no resampling)", choices=("warp", "integer"))
    fallback_window: int = param(15, "side of the windows (packed pixels) in which the result is checked against "
                                     "the reference's noise", valid=at_least(1))
    fallback_tolerance: float = param(1.25, FALLBACK_TOLERANCE_DOC, low=1.0, high=4.0, valid=at_least(0))
    blind_noise: str = param("burst", BLIND_NOISE_DOC, choices=BLIND_NOISE_CHOICES)

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        if len(raw.frames) == 1:
            return raw.packed.copy()
        return self.mean_with_fields(raw, burst_fields(raw.frames, tile=self.tile, search=self.search))

    def mean_with_fields(self, raw: NoisyRaw, fields: np.ndarray) -> np.ndarray:
        """The robust mean of the frames brought onto frame 0 by ``fields`` (``(N, h, w, 2)``, as
        ``burst_fields`` estimates them in ``denoise``; ``bench.burst_study`` also passes the true motion)
        -> ``(h, w, 4)`` float32 in [0, 1]."""
        from methods.toolkit.burst_noise import profile_of_burst  # scipy: not at import time

        frames = np.asarray(raw.frames)
        if self.resample == "warp":
            moved = [warp_mosaic(f, d, raw.cfa) for f, d in zip(frames[1:], fields[1:])]
        else:
            moved = [take_whole_cells(f, d) for f, d in zip(frames[1:], fields[1:])]
        aligned = np.stack([frames[0]] + moved)
        profile = raw.noise
        if self.blind_noise == "burst":
            profile = profile_of_burst(raw, fields, aligned if self.resample == "warp" else None)
        weights = agreement_weights(aligned, profile.a, profile.b, self.rejection)
        merged = (weights * aligned).sum(axis=0) / weights.sum(axis=0)
        if self.fallback_tolerance > 0:
            # an unbiased mean of N frames differs from frame 0 by noise of variance (1 - 1/N) of frame 0's
            merged = fall_back_to_reference(merged, frames[0], profile, 1.0 - 1.0 / len(frames),
                                            self.fallback_window, self.fallback_tolerance)
        return np.clip(merged, 0.0, 1.0).astype(np.float32)


def fall_back_to_reference(estimate: np.ndarray, reference: np.ndarray, profile, expected_ratio: float,
                           window: int, tolerance: float) -> np.ndarray:
    """Pull an ``(h, w, 4)`` burst estimate towards the ``(h, w, 4)`` noisy reference where the two disagree by
    more than noise. ``expected_ratio``: the variance of (estimate - reference), relative to the reference's
    noise variance ``a * x + b`` (``profile``), if the estimate is unbiased (``1 - 1/N`` for a mean of N frames).
    Per plane, in ``window`` x ``window`` box means: with ``v`` the mean square difference and ``e =
    expected_ratio * (a * x + b)``, the result is ``reference + w * (estimate - reference)`` with
    ``w = e / (e + max(v - tolerance * e, 0))``. With the estimate's squared bias ``v - e`` (a window's excess
    over noise), ``e / v`` is the weight that minimises the expected squared error; ``tolerance`` > 1 leaves
    the excess that a window of pure noise shows by chance (``v`` is a mean of ``window**2`` squares) as
    noise, and the weight falls continuously from 1 as the excess grows. Returns ``(h, w, 4)`` float32."""
    reference = np.ascontiguousarray(reference, dtype=np.float32)
    difference = np.asarray(estimate, dtype=np.float32) - reference
    weight = fallback_weight(difference, reference, profile, expected_ratio, window, tolerance)
    return (reference + weight * difference).astype(np.float32)


def fallback_weight(difference: np.ndarray, reference: np.ndarray, profile, expected_ratio: float, window: int,
                    tolerance: float) -> np.ndarray:
    """The ``(h, w, 4)`` float32 weight ``w`` of :func:`fall_back_to_reference` (1: keep the estimate, towards
    0: the reference), from ``difference`` = estimate - reference and the reference, both ``(h, w, 4)``."""
    import cv2

    reference = np.ascontiguousarray(reference, dtype=np.float32)
    difference = np.ascontiguousarray(difference, dtype=np.float32)
    level = cv2.blur(reference, (window, window), borderType=cv2.BORDER_REFLECT)
    expected = expected_ratio * (profile.a * np.clip(level, 0.0, 1.0) + profile.b)
    observed = cv2.blur(difference * difference, (window, window), borderType=cv2.BORDER_REFLECT)
    # a profile estimated from one noisy frame can be several times too high on detailed content (texture
    # taken for noise), which would let real disagreement pass as noise. Where most windows agree, their
    # typical ratio observed / expected is 1 with the true profile, so a median under 1 scales the profile
    # down; a median over 1 (most windows disagreeing) never scales it up.
    expected *= min(1.0, float(np.median(observed / np.maximum(expected, 1e-20))))
    weight = expected / np.maximum(expected + np.maximum(observed - tolerance * expected, 0.0), 1e-20)
    return weight.astype(np.float32)


def take_whole_cells(frame: np.ndarray, field: np.ndarray) -> np.ndarray:
    """``out[y, x] = frame[y + rint(dy), x + rint(dx)]`` (edges clamped) for an ``(h, w, 4)`` frame and an
    ``(h, w, 2)`` packed-pixel displacement: whole CFA cells, no resampling. float32."""
    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width]
    rows = np.clip(ys + np.rint(field[..., 0]).astype(np.int64), 0, height - 1)
    cols = np.clip(xs + np.rint(field[..., 1]).astype(np.int64), 0, width - 1)
    return np.asarray(frame, dtype=np.float32)[rows, cols]


def agreement_weights(aligned: np.ndarray, a: float, b: float, rejection: float) -> np.ndarray:
    """``(N, h, w, 4)`` aligned frames -> ``(N, h, w, 4)`` float32 weights, 1 where a frame agrees with
    frame 0 within ``rejection`` noise std (3x3 local means, per plane), else 0; frame 0 always 1."""
    from scipy.ndimage import uniform_filter

    reference = aligned[0]
    local_reference = uniform_filter(reference, size=(3, 3, 1), mode="reflect")
    variance = a * np.maximum(local_reference, 0.0) + b
    # the 3x3 mean of the difference of two independent frames has variance 2 * variance / 9
    limit = rejection * np.sqrt(2.0 * variance / 9.0)
    weights = np.ones(aligned.shape, dtype=np.float32)
    for k in range(1, len(aligned)):
        difference = uniform_filter(aligned[k] - reference, size=(3, 3, 1), mode="reflect")
        weights[k] = np.abs(difference) <= limit
    return weights
