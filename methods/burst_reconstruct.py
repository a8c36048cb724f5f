"""Burst reconstruction: the full-resolution scene fitted to the Bayer samples of every frame, then BM3D.

Warping a noisy frame onto the reference goes through a demosaic (:func:`methods.toolkit.align.warp_mosaic`),
and on sharp detail each Bayer plane is aliased, so the warp invents what lies between its samples: on the
detailed scenes (``bench.detailed_scenes``) that error exceeds the noise on half of them (README, *Bursts*),
and :mod:`methods.burst_merge` must fall back to single-frame BM3D there. A camera that moves by sub-pixel
amounts samples the scene at new positions in every frame, so together the frames determine the scene between
the samples (multi-frame demosaicking, the idea behind the Handheld Multi-Frame Super-Resolution of Wronski
et al. 2019). This method never demosaics a noisy frame to move it:

1. **Motion.** Each frame's camera motion relative to frame 0 is one translation and rotation
   (:class:`~methods.toolkit.fourier_motion.FrameMotion`), first fitted (least squares, trimmed) to the tile
   alignment's displacement field (:func:`methods.toolkit.align.burst_fields`).
2. **Reconstruction.** The scene ``x`` is ``(H, W, 3)`` linear RGB on frame 0's sensor grid. Frame k is
   modelled as ``mosaic(clip(move(x, motion_k)))``, the band-limited motion of
   :mod:`methods.toolkit.fourier_motion`. ``x`` starts as the demosaic of frame 0 and descends on the sum of
   squared differences to every frame's samples: preconditioned steepest descent (step direction scaled by
   ``1 / (N * share of the colour's samples)``) with an exact line search, so it is safe for any motion, static
   included; samples the clip makes flat (the model saturated at 0 or 1) do not pull, and ``x`` stays in
   [0, 1]. Few steps are taken (``iterations`` per stage, three stages): stopping early is what keeps the
   frequencies that the frames sample poorly from amplifying noise.
3. **Motion refined against the reconstruction.** Before each stage, every frame's three motion parameters
   take one or two Gauss-Newton steps that fit ``mosaic(move(x, motion))`` to the frame; the first on both
   sides blurred (Gaussian, sigma 2 then 1 sensor pixels) because the first ``x`` is only a demosaic. Frame 0
   is fitted too and its motion subtracted from all, since ``x`` can drift by a fraction of a pixel as a whole.
   On detailed scene 7 the tile alignment's fit errs by 0.2 px; after refinement by under 0.01 px.
4. **Check and spatial stage.** ``mosaic(x)`` on frame 0's grid is checked against frame 0 in windows
   (:func:`methods.burst_mean.fallback_weight`; ``fallback_tolerance``), so that where the one-motion model does
   not hold (content that moved on its own, a lens's distortion) the result falls back; BM3D then denoises it
   with the noise profile scaled by ``residual_factor``, and the windows the check flagged take frame 0's own
   single-frame BM3D in proportion.

Where the run's profile is blind it is first re-estimated from the burst (:mod:`methods.toolkit.burst_noise`).
Cost: each descent step moves the ``(H, W, 3)`` scene forwards and back once per frame (Fourier shifts of
the whole image); a 512 x 768 burst of 8 frames takes about 85 s on one core (the detailed table), a 16 MP
one about 40 times that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.demosaic import demosaic, mosaic_rgb
from bench.core.noise_model import NoiseProfile
from bench.core.rawio import pack, unpack
from methods.base import Method, NoisyRaw, at_least, param
from methods.bm3d import BM3D
from methods.burst_mean import BLIND_NOISE_CHOICES, BLIND_NOISE_DOC, FALLBACK_TOLERANCE_DOC, fallback_weight
from methods.registry import register_method
from methods.toolkit.align import DEFAULT_SEARCH, DEFAULT_TILE, burst_fields
from methods.toolkit.burst_spatial import bm3d_with_fallback
from methods.toolkit.fourier_motion import FrameMotion, move_content

#: Blur (sensor pixels) and Gauss-Newton steps of the motion refinement before each reconstruction stage.
MOTION_STAGES = ((2.0, 2), (1.0, 1), (0.0, 1))
#: Finite-difference steps of (dy, dx) in sensor pixels and rotation in degrees for the motion's Jacobian.
MOTION_DELTAS = (0.01, 0.01, 0.002)
#: The first motion fit keeps the displacements within 1 sensor pixel plus what a rotation of this many degrees
#: spreads over the image of the field's median (content that moved on its own lies further out, or is few).
MEDIAN_BAND_ROTATION = 0.2
#: Largest change of a translation (sensor pixels) or rotation (degrees) one Gauss-Newton step may make.
MOTION_STEP_LIMIT = (1.0, 1.0, 0.2)


@register_method("burst_reconstruct")
@dataclass
class BurstReconstruct(Method):
    """Fit the full-resolution scene to every frame's Bayer samples under one camera motion per frame, then BM3D."""

    kind = "burst"
    requires = {"cv2": "opencv-python-headless", "scipy": "scipy", "bm3d": "bm3d"}
    iterations: int = param(3, "descent steps of the reconstruction per stage (three stages)", low=1, high=8,
                            valid=at_least(1))
    residual_factor: float = param(0.5, "noise variance of the reconstruction relative to frame 0's, as given to "
                                        "BM3D", low=0.1, high=1.0, valid=at_least(0.01))
    fallback_window: int = param(7, "side of the windows (packed pixels) in which the reconstruction is checked "
                                    "against the reference's noise", valid=at_least(1))
    fallback_tolerance: float = param(1.5, FALLBACK_TOLERANCE_DOC, low=1.0, high=4.0, valid=at_least(0))
    blind_noise: str = param("burst", BLIND_NOISE_DOC, choices=BLIND_NOISE_CHOICES)
    tile: int = param(DEFAULT_TILE, "alignment tile side, packed pixels", valid=at_least(1))
    search: int = param(DEFAULT_SEARCH, "alignment search radius per pyramid level, packed pixels (0 = no "
                                        "search, sub-pixel refinement only)", valid=at_least(0))

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        from methods.toolkit.burst_noise import profile_of_burst  # scipy: not at import time

        if len(raw.frames) == 1:
            return BM3D().denoise(raw)
        fields = burst_fields(np.asarray(raw.frames, dtype=np.float32), tile=self.tile, search=self.search)
        profile = profile_of_burst(raw, fields) if self.blind_noise == "burst" else raw.noise
        return self.reconstruct_with_fields(raw, fields, profile)

    def reconstruct_with_fields(self, raw: NoisyRaw, fields: np.ndarray, profile: NoiseProfile) -> np.ndarray:
        """Steps 1-4 of the module docstring with the ``(N, h, w, 2)`` tile alignment of each frame onto frame 0
        (``burst_fields``) and the noise profile to work with (:mod:`methods.burst_merge` passes its own)
        -> ``(h, w, 4)`` float32 in [0, 1]. Needs at least two frames."""
        frames = np.asarray(raw.frames, dtype=np.float32)
        motions = [FrameMotion(0.0, 0.0, 0.0)] + [motion_of_field(field) for field in fields[1:]]
        scene, _ = reconstruct(frames, raw.cfa, motions, self.iterations)
        reference = frames[0]
        merged = pack(mosaic_rgb(scene, raw.cfa)).astype(np.float32)
        difference = merged - reference
        weight = None
        if self.fallback_tolerance > 0:
            # unbiased, the reconstruction differs from frame 0 by frame 0's noise plus its own
            weight = fallback_weight(difference, reference, profile, 1.0 + self.residual_factor,
                                     self.fallback_window, self.fallback_tolerance)
            merged = reference + weight * difference
        merged = np.clip(merged, 0.0, 1.0).astype(np.float32)
        return bm3d_with_fallback(merged, raw, profile, self.residual_factor, BM3D.sigma_scale, weight)


def motion_of_field(field: np.ndarray) -> FrameMotion:
    """The translation and rotation (about the sensor image's centre) that best fit an ``(h, w, 2)``
    packed-pixel displacement field (``frame[y + d] ~ reference[y]``, ``burst_fields``): linear least
    squares for small angles over the displacements near the median (``MEDIAN_BAND_ROTATION``), refitted twice without
    the points that miss by over three times the median misfit (content that moved on its own)."""
    height, width = field.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    # sensor coordinates of each packed pixel's 2x2 cell centre, relative to the image centre
    sensor_y = (2 * ys + 0.5 - (2 * height - 1) / 2.0).ravel()
    sensor_x = (2 * xs + 0.5 - (2 * width - 1) / 2.0).ravel()
    ones, zeros = np.ones_like(sensor_y), np.zeros_like(sensor_y)
    # a rotation by +theta moves (y, x) by about (-sin(theta) * x, sin(theta) * y)
    design = np.concatenate([np.stack([ones, zeros, -sensor_x], axis=-1), np.stack([zeros, ones, sensor_y], axis=-1)])
    target = np.concatenate([2.0 * field[..., 0].ravel(), 2.0 * field[..., 1].ravel()])
    half = len(sensor_y)
    band = 1.0 + np.sin(np.deg2rad(MEDIAN_BAND_ROTATION)) * float(np.hypot(height, width))  # half-diagonal in sensor px
    keep = np.concatenate([np.abs(target[:half] - np.median(target[:half])) <= band,
                           np.abs(target[half:] - np.median(target[half:])) <= band])
    for _ in range(3):
        coefficients, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        misfit = np.abs(target - design @ coefficients)
        keep = misfit <= max(0.05, 3.0 * float(np.median(misfit)))
    dy, dx, sine = coefficients
    return FrameMotion(float(dy), float(dx), float(np.rad2deg(np.arcsin(np.clip(sine, -1.0, 1.0)))))


def colour_masks(height: int, width: int, cfa: str) -> np.ndarray:
    """``(height, width, 3)`` float32: 1 where the mosaic samples that colour (R, G, B), else 0."""
    return np.stack([mosaic_rgb(np.broadcast_to(np.eye(3)[c], (height, width, 3)).copy(), cfa) for c in range(3)],
                    axis=-1).astype(np.float32)


@dataclass
class _Model:
    """The forward model of step 2: frame k = ``mosaic(move(x, motions[k]))``; frame 0 does not move."""

    masks: np.ndarray  # (H, W, 3) float32
    motions: list[FrameMotion]

    def forward(self, scene: np.ndarray, k: int, motion: FrameMotion | None = None) -> np.ndarray:
        motion = self.motions[k] if motion is None else motion
        moved = scene if k == 0 and motion == FrameMotion(0.0, 0.0, 0.0) else move_content(scene, motion)
        return (moved * self.masks).sum(axis=-1)

    def adjoint(self, residual: np.ndarray, k: int) -> np.ndarray:
        spread = residual[..., None] * self.masks
        return spread if k == 0 else move_content(spread, self.motions[k], inverse=True)


def reconstruct(frames: np.ndarray, cfa: str, motions: list[FrameMotion], iterations: int
                ) -> tuple[np.ndarray, list[FrameMotion]]:
    """Steps 2-3 of the module docstring. frames: ``(N, h, w, 4)`` float32 packed in [0, 1], frame 0 the
    reference; motions: each frame's first motion (frame 0's is zero). Returns the ``(2h, 2w, 3)`` float32
    scene in [0, 1] on frame 0's grid and the refined motions."""
    mosaics = np.stack([unpack(f).astype(np.float32) for f in frames])
    height, width = mosaics.shape[1:]
    model = _Model(colour_masks(height, width, cfa), list(motions))
    scene = np.clip(demosaic(mosaics[0], cfa), 0.0, 1.0).astype(np.float32)
    for blur, steps in MOTION_STAGES:
        for _ in range(steps):
            model.motions = refine_motions(scene, mosaics, model, blur)
        scene = descend(scene, mosaics, model, iterations)
    return scene, model.motions


def descend(scene: np.ndarray, mosaics: np.ndarray, model: _Model, iterations: int) -> np.ndarray:
    """``iterations`` preconditioned steepest-descent steps with exact line search on
    ``sum_k |live_k * (forward_k(x) - mosaic_k)|^2``, ``live_k`` the samples whose prediction is inside (0, 1)
    (outside, the clip makes the model flat); then ``x`` clipped to [0, 1]. ``(H, W, 3)`` float32."""
    count = len(mosaics)
    precondition = (1.0 / (count * model.masks.mean(axis=(0, 1)))).astype(np.float32)
    predictions = [model.forward(scene, k) for k in range(count)]
    for _ in range(iterations):
        live = [(p > 0.0) & (p < 1.0) for p in predictions]
        gradient = sum(model.adjoint((predictions[k] - mosaics[k]) * live[k], k) for k in range(count))
        direction = gradient * precondition
        changes = [model.forward(direction, k) * live[k] for k in range(count)]
        curvature = sum(float((c.astype(np.float64) ** 2).sum()) for c in changes)
        if curvature <= 0.0:
            break
        step = float((gradient.astype(np.float64) * direction).sum()) / curvature
        scene = scene - np.float32(step) * direction
        predictions = [p - np.float32(step) * c for p, c in zip(predictions, changes)]
    return np.clip(scene, 0.0, 1.0)


def refine_motions(scene: np.ndarray, mosaics: np.ndarray, model: _Model, blur: float) -> list[FrameMotion]:
    """One Gauss-Newton step per frame on its (dy, dx, rotation), comparing ``forward_k(x)`` with the frame,
    both blurred by a Gaussian of ``blur`` sensor pixels (0: none); frame 0's own fitted motion is then
    subtracted from every frame's (the scene's drift as a whole). Finite-difference Jacobian."""
    from scipy.ndimage import gaussian_filter

    def smooth(image: np.ndarray) -> np.ndarray:
        return gaussian_filter(image, blur) if blur > 0 else image

    fitted = []
    for k, motion in enumerate(model.motions):
        current = (motion.dy, motion.dx, motion.rotation)
        base = model.forward(scene, k, motion)
        residual = smooth(mosaics[k] - base).ravel().astype(np.float64)
        columns = []
        for j, delta in enumerate(MOTION_DELTAS):
            nudged = list(current)
            nudged[j] += delta
            columns.append(smooth((model.forward(scene, k, FrameMotion(*nudged)) - base) / delta).ravel())
        jacobian = np.stack(columns, axis=-1).astype(np.float64)
        update, *_ = np.linalg.lstsq(jacobian.T @ jacobian, jacobian.T @ residual, rcond=None)
        update = np.clip(update, -np.array(MOTION_STEP_LIMIT), MOTION_STEP_LIMIT)
        fitted.append(np.array(current) + update)
    drift = fitted[0]
    return [FrameMotion(0.0, 0.0, 0.0)] + [FrameMotion(*(m - drift)) for m in fitted[1:]]
