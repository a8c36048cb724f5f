"""Bursts: N noisy frames of one scene, frame 0 the reference, ground truth = the clean reference frame.

Synthetic bursts (``bench run --burst N``) are made from any paired dataset:

* frame 0 is the dataset's own noisy image, so single-frame methods score exactly as in a normal run;
* frame k >= 1 is the ground truth moved by a small random camera motion (translation up to
  ``max_shift`` sensor pixels in x and y, rotation up to ``max_rotation`` degrees about the centre),
  applied to the clean linear RGB image before mosaicking again. The linear image is the one the ground
  truth was made from where the dataset knows it (the embedded set, or a folder's ``linear/`` scenes),
  else a gradient-corrected demosaic of the ground truth; then the organisers' noise generator with the
  image's noise profile (the dataset's true one where known, else the one estimated from frame 0).

The motion is band-limited (``methods.toolkit.fourier_motion.move_image``): translations are phase ramps of
the Fourier transform along each axis and the rotation is three shears, each a per-line Fourier shift
(Unser, Thevenaz & Yaroslavsky 1995), on the image extended by reflection and tapered to its mean so that
its periodic extension has no edge. So a moved frame is the scene moved, not a low-passed copy of it (cubic
interpolation, used before, attenuates the highest frequencies and made frames 1..N-1 softer than frame 0). Measured fidelity: a
photograph moved by (-0.7, 1.3) px and 0.1 degree and moved back equals the original to an RMS of 1.6e-3 of
the range 16 px inside the border, against 1.1e-2 with cubic resampling (``tests/test_burst.py``); whole-CFA-cell translations (even
shifts, no rotation) are exact, so they need no resampling at all.

With ``max_shift = max_rotation = 0`` the frames are the ground truth itself with independent noise.
Everything is seeded by (``seed``, image id, frame number), so a burst does not depend on which other images
or methods are in the run.

Real bursts load from the paired layout plus a ``burst/`` folder (see ``bench.datasets``)::

    DIR/ground truth/{i}_gt.dng     the clean reference frame
    DIR/noisy/{i}_noise.dng         noisy frame 0 (the reference)
    DIR/burst/{i}_noise_{k}.dng     noisy frames k = 1, 2, ... of the same scene
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from bench.core.demosaic import demosaic, mosaic_rgb
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.levels import Levels
from bench.core.rawio import pack_normalized, unpack
from methods.toolkit.fourier_motion import FrameMotion, move_image

DEFAULT_SEED = 8
DEFAULT_MAX_SHIFT = 2.0
DEFAULT_MAX_ROTATION = 0.1

@dataclass(frozen=True)
class BurstSpec:
    """How to make (or how many real frames to load for) an N-frame burst."""

    frames: int
    max_shift: float = DEFAULT_MAX_SHIFT
    max_rotation: float = DEFAULT_MAX_ROTATION
    seed: int = DEFAULT_SEED

    def __post_init__(self):
        if self.frames < 1:
            raise ValueError(f"a burst needs at least 1 frame, got {self.frames}")
        if self.max_shift < 0 or self.max_rotation < 0:
            raise ValueError("burst motion limits must be >= 0")

    @property
    def static(self) -> bool:
        return self.max_shift == 0 and self.max_rotation == 0


def frame_motion(spec: BurstSpec, image_id: str, frame: int) -> FrameMotion:
    """The seeded random motion of ``frame`` (>= 1) of ``image_id``'s burst (zero for frame 0)."""
    if frame == 0 or spec.static:
        return FrameMotion(0.0, 0.0, 0.0)
    rng = _rng(spec, image_id, frame, stream=0)
    dy, dx = rng.uniform(-spec.max_shift, spec.max_shift, size=2)
    rotation = rng.uniform(-spec.max_rotation, spec.max_rotation)
    return FrameMotion(float(dy), float(dx), float(rotation))


def synthesize_burst(spec: BurstSpec, image_id: str, noisy_mosaic: np.ndarray, gt_mosaic: np.ndarray, cfa: str,
                     profile: NoiseProfile, levels: Levels, clean_rgb: np.ndarray | None = None) -> np.ndarray:
    """The ``(N, H, W)`` uint16 noisy mosaics of a synthetic burst; frame 0 is ``noisy_mosaic`` itself.

    noisy_mosaic, gt_mosaic: ``(H, W)`` uint16 with black level. cfa: colours in ``PLANE_OFFSETS`` order.
    profile: the noise of the generator (normalised domain). levels: the image's levels (black per plane,
    white), which the frames are made in. clean_rgb: the ``(H, W, 3)`` linear RGB in [0, 1] that the ground
    truth was mosaicked from, where the dataset knows it; moved frames are then mosaicked from it exactly
    like the ground truth (``Levels.denormalize``). Otherwise the ground truth is demosaicked, and moved
    frames are rounded to the nearest level.
    """
    frames = [noisy_mosaic]
    rgb = clean_rgb
    for k in range(1, spec.frames):
        motion = frame_motion(spec, image_id, k)
        if spec.static:
            clean = gt_mosaic
        elif clean_rgb is not None:
            clean = levels.denormalize(mosaic_rgb(move_image(clean_rgb, motion), cfa))
        else:
            if rgb is None:
                rgb = demosaic(levels.normalize(gt_mosaic), cfa)
            moved = move_image(rgb, motion)
            # rounded, not truncated like a denoiser's output: a clean frame should carry no -0.5 DN bias
            clean = _rounded_mosaic(mosaic_rgb(moved, cfa), levels)
        rng = _rng(spec, image_id, k, stream=1)
        frames.append(add_noise(clean, profile.a, profile.b, rng, levels.black_level, levels.white))
    return np.stack(frames)


def move_image_cubic(rgb: np.ndarray, motion: FrameMotion) -> np.ndarray:
    """The former synthesis, kept for ``bench.burst_study``'s comparison: cubic resampling (OpenCV, edges
    reflected) of ``(H, W, 3)`` RGB by ``motion``, clipped to [0, 1]."""
    import cv2

    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), motion.rotation, 1.0)
    matrix[:, 2] += (motion.dx, motion.dy)
    moved = np.empty_like(rgb)
    for channel in range(3):
        moved[..., channel] = cv2.warpAffine(rgb[..., channel], matrix, (width, height), flags=cv2.INTER_CUBIC,
                                             borderMode=cv2.BORDER_REFLECT_101)
    return np.clip(moved, 0.0, 1.0)


def _rounded_mosaic(x: np.ndarray, levels: Levels) -> np.ndarray:
    """A normalised ``(H, W)`` mosaic scaled to ``levels`` (each CFA phase its own black) and rounded."""
    if levels.uniform:
        black = levels.black[0]
        return np.rint(np.clip(x, 0.0, 1.0) * (levels.white - black) + black).astype(np.uint16)
    black = unpack(np.broadcast_to(np.asarray(levels.black, dtype=np.float64), (*[s // 2 for s in x.shape], 4)))
    return np.rint(np.clip(x, 0.0, 1.0) * (levels.white - black) + black).astype(np.uint16)


def packed_frames(mosaics: np.ndarray, levels: Levels) -> np.ndarray:
    """``(N, H, W)`` uint16 mosaics -> ``(N, H/2, W/2, 4)`` float32 packed frames in [0, 1], normalised with
    ``levels``."""
    return np.stack([pack_normalized(m, levels.black_level, levels.white) for m in mosaics])


def _rng(spec: BurstSpec, image_id: str, frame: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([spec.seed, zlib.crc32(image_id.encode()), frame, stream])

