"""Competition metrics, computed on full unpacked uint16 mosaics (black level included).

Definitions (the ZTE 2022 protocol; README, *Scoring protocol*):

* ``psnr``  = ``skimage.metrics.peak_signal_noise_ratio(gt, out, data_range=16383)``
* ``ssim``  = ``skimage.metrics.structural_similarity(gt, out, data_range=16383)``: plain 2-D SSIM
  (7x7 uniform window), the value current scikit-image gives for the 2022 call.
* ``ssim_col`` = the same call with ``channel_axis=-1``: the mean of 1-D SSIMs down each column, which is
  what the 2022 code's ``multichannel=True`` computed on scikit-image <= 0.19.
* ``score`` = ``(0.8 * max(psnr - 30, 0) / 30 + 0.2 * max(ssim - 0.8, 0) / 0.2) * 100``, from the 2-D SSIM.

``data_range`` (the white level, 16383 for the competition) is a required argument of every function: it is
never guessed from the data, and never defaulted to the competition's.

PSNR is capped at ``PSNR_CAP_DB`` = 100 dB: an output equal to its ground truth (mean squared error 0,
PSNR infinite) counts as 100 dB, and its Score is computed from that capped value, so one perfect image
never makes a mean PSNR or Score infinite. Real results are far below the cap (100 dB at a data range of
16383 is a mean squared error of 0.027 DN^2), so their values are exactly scikit-image's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Highest PSNR reported, in dB (see the module docstring).
PSNR_CAP_DB = 100.0


def _check_pair(gt: np.ndarray, out: np.ndarray) -> None:
    if gt.shape != out.shape or gt.ndim != 2:
        raise ValueError(f"metrics need two (H, W) mosaics of one shape, got {gt.shape} and {out.shape}")


def psnr(gt: np.ndarray, out: np.ndarray, data_range: int) -> float:
    """PSNR in dB of ``out`` against ``gt``: ``(H, W)`` integer mosaics; at most ``PSNR_CAP_DB`` (an
    identical pair gives exactly the cap, never infinity)."""
    from skimage.metrics import peak_signal_noise_ratio

    _check_pair(gt, out)
    if np.array_equal(gt, out):
        return PSNR_CAP_DB
    return min(float(peak_signal_noise_ratio(gt, out, data_range=data_range)), PSNR_CAP_DB)


def ssim(gt: np.ndarray, out: np.ndarray, data_range: int) -> float:
    """2-D SSIM of ``out`` against ``gt`` (scikit-image defaults: 7x7 uniform window)."""
    from skimage.metrics import structural_similarity

    _check_pair(gt, out)
    return float(structural_similarity(gt, out, data_range=data_range))


def ssim_col(gt: np.ndarray, out: np.ndarray, data_range: int) -> float:
    """Column-wise SSIM: the 2022 ``multichannel=True`` value (mean of the 1-D SSIM of every column)."""
    from skimage.metrics import structural_similarity

    _check_pair(gt, out)
    return float(structural_similarity(gt, out, data_range=data_range, channel_axis=-1))


def score(psnr_db: float, ssim_value: float) -> float:
    """Competition Score in points from PSNR in dB and SSIM: 0 at or below 30 dB and SSIM 0.8, 100 at
    60 dB and SSIM 1; not capped (the competition's formula), so it exceeds 100 above 60 dB."""
    return (0.8 * max(psnr_db - 30.0, 0.0) / 30.0 + 0.2 * max(ssim_value - 0.8, 0.0) / 0.2) * 100.0


@dataclass(frozen=True)
class ImageScores:
    psnr: float
    ssim: float
    ssim_col: float
    score: float


def score_mosaic(gt: np.ndarray, out: np.ndarray, data_range: int) -> ImageScores:
    """All four metrics for one image: ``(H, W)`` uint16 ground truth and result."""
    p = psnr(gt, out, data_range)
    s = ssim(gt, out, data_range)
    return ImageScores(psnr=p, ssim=s, ssim_col=ssim_col(gt, out, data_range), score=score(p, s))
