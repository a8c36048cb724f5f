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
16383 is a mean squared error of 0.027 DN^2), so their values are scikit-image's.

How they are computed (numpy only, no scikit-image call): the same definitions as scikit-image's, reordered
for speed. PSNR: the sum of squared differences in float64, row block by row block (exact for integer
mosaics), over the pixel count, as scikit-image's float64 mean. SSIM (scikit-image's defaults: a 7-pixel
uniform window, K1 = 0.01, K2 = 0.03, sample covariances, i.e. normalised by N/(N-1) for N pixels in a window,
and the mean taken over the map without its (7-1)//2 = 3 border pixels on each side): the cropped map's
windows all lie inside the image, so no border rule (scikit-image's ``mode='reflect'``) is ever involved,
and each is computed from exact float64 window sums of x, y, x^2 + y^2 and x*y (integers, far below 2**53
for uint16 mosaics). The 1-D sums down the columns (window 7) give the column SSIM; their sums along the rows
give the 7x7 ones of the 2-D SSIM; strips of ``STRIP_ROWS`` output rows keep every intermediate array in the
CPU cache. ``tests/test_metrics_exact.py`` checks all three equal scikit-image to 1e-9 (absolute);
``python -m bench.benchmarks.scoring`` times both on a full-size frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Highest PSNR reported, in dB (see the module docstring).
PSNR_CAP_DB = 100.0
#: Side of SSIM's uniform window, in pixels (scikit-image's default).
SSIM_WINDOW = 7
#: scikit-image's SSIM constants: C1 = (K1 * data_range)**2, C2 = (K2 * data_range)**2.
SSIM_K1, SSIM_K2 = 0.01, 0.03
#: SSIM map rows computed at a time (about 0.8 MB per float64 array on a 4624-pixel-wide frame).
STRIP_ROWS = 16
#: Pixels per block of the PSNR's sum of squared differences (whole rows, at least one).
PSNR_BLOCK_PIXELS = 1 << 16


def _check_pair(gt: np.ndarray, out: np.ndarray) -> None:
    if gt.shape != out.shape or gt.ndim != 2:
        raise ValueError(f"metrics need two (H, W) mosaics of one shape, got {gt.shape} and {out.shape}")


def _check_window_fits(shape: tuple[int, int], plane: bool) -> None:
    """SSIM needs the window inside the image: ``SSIM_WINDOW`` rows, and as many columns for the 2-D SSIM."""
    too_small = shape[0] < SSIM_WINDOW or (plane and shape[1] < SSIM_WINDOW)
    if too_small:
        kind = "2-D SSIM" if plane else "column SSIM"
        raise ValueError(f"{kind} needs at least {SSIM_WINDOW} rows{' and columns' if plane else ''} "
                         f"(the window side), got a {shape[0]}x{shape[1]} mosaic")


def _squared_error_sum(gt: np.ndarray, out: np.ndarray) -> float:
    """Sum over all pixels of ``(gt - out)**2`` in float64 for two ``(H, W)`` arrays (exact for integer mosaics
    while the sum stays below 2**53: any 16-bit frame of up to 30 MP at data range 16383)."""
    rows = max(1, PSNR_BLOCK_PIXELS // max(gt.shape[1], 1))
    total = 0.0
    for top in range(0, gt.shape[0], rows):
        difference = gt[top:top + rows].astype(np.float64)
        difference -= out[top:top + rows]
        difference *= difference
        total += float(difference.sum())
    return total


def psnr(gt: np.ndarray, out: np.ndarray, data_range: int) -> float:
    """PSNR in dB of ``out`` against ``gt``: ``(H, W)`` integer mosaics; at most ``PSNR_CAP_DB`` (an
    identical pair gives exactly the cap, never infinity)."""
    _check_pair(gt, out)
    squared_error = _squared_error_sum(gt, out)
    if squared_error == 0.0:
        return PSNR_CAP_DB
    mean_squared_error = squared_error / gt.size
    return min(float(10.0 * np.log10(float(data_range) ** 2 / mean_squared_error)), PSNR_CAP_DB)


def _window_sums(values: np.ndarray, axis: int) -> np.ndarray:
    """Sums of ``SSIM_WINDOW`` consecutive elements along ``axis`` (0 or 1) of a 2-D float64 array, for every
    window that fits: the result is ``SSIM_WINDOW - 1`` shorter along ``axis``. Exact for integer values."""
    count = values.shape[axis] - SSIM_WINDOW + 1
    first = values[:count] if axis == 0 else values[:, :count]
    total = first.copy()
    for shift in range(1, SSIM_WINDOW):
        total += values[shift:shift + count] if axis == 0 else values[:, shift:shift + count]
    return total


def _ssim_map(sum_x: np.ndarray, sum_y: np.ndarray, sum_squares: np.ndarray, sum_xy: np.ndarray,
              pixels: int, data_range: float) -> np.ndarray:
    """SSIM of each window from its sums of x, y, x^2 + y^2 and x*y over ``pixels`` pixels (float64 arrays of
    one shape) -> float64 map of that shape, values in [-1, 1].

    scikit-image's formula: means ux = sum_x/N, sample variances vx = (N sum_xx - sum_x^2) / (N (N-1)) and
    covariance vxy alike, SSIM = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2)); here
    numerator and denominator are both multiplied by N^2 * N (N-1), which leaves sums only."""
    mean_scale = float(pixels * pixels)
    covariance_scale = float(pixels * (pixels - 1))
    c1 = (SSIM_K1 * data_range) ** 2 * mean_scale
    c2 = (SSIM_K2 * data_range) ** 2 * covariance_scale
    product = sum_x * sum_y
    squares_of_sums = sum_x * sum_x
    squares_of_sums += sum_y * sum_y
    covariance_term = sum_xy * float(pixels)
    covariance_term -= product
    covariance_term *= 2.0
    covariance_term += c2
    numerator = product * 2.0
    numerator += c1
    numerator *= covariance_term
    variance_term = sum_squares * float(pixels)
    variance_term -= squares_of_sums
    variance_term += c2
    squares_of_sums += c1
    squares_of_sums *= variance_term
    numerator /= squares_of_sums
    return numerator


def _structural_similarities(gt: np.ndarray, out: np.ndarray, data_range: float, plane: bool,
                             columns: bool) -> tuple[float, float]:
    """(2-D SSIM if ``plane`` else NaN, column SSIM if ``columns`` else NaN) of two ``(H, W)`` mosaics, as
    scikit-image computes them (module docstring); both from one pass over row strips."""
    height, width = gt.shape
    map_rows = height - SSIM_WINDOW + 1
    plane_total = 0.0
    column_totals = np.zeros(width, dtype=np.float64)
    for top in range(0, map_rows, STRIP_ROWS):
        stop = min(top + STRIP_ROWS, map_rows) + SSIM_WINDOW - 1
        x = gt[top:stop].astype(np.float64)
        y = out[top:stop].astype(np.float64)
        squares = x * x
        squares += y * y
        down_columns = [_window_sums(values, axis=0) for values in (x, y, squares, x * y)]
        if columns:
            column_totals += _ssim_map(*down_columns, SSIM_WINDOW, data_range).sum(axis=0)
        if plane:
            windows = [_window_sums(values, axis=1) for values in down_columns]
            plane_total += float(_ssim_map(*windows, SSIM_WINDOW * SSIM_WINDOW, data_range).sum())
    plane_mean = plane_total / (map_rows * (width - SSIM_WINDOW + 1)) if plane else float("nan")
    columns_mean = float(np.mean(column_totals / map_rows)) if columns else float("nan")
    return plane_mean, columns_mean


def ssim(gt: np.ndarray, out: np.ndarray, data_range: int) -> float:
    """2-D SSIM of ``out`` against ``gt``, ``(H, W)`` integer mosaics of at least 7x7 (scikit-image defaults:
    7x7 uniform window); in [-1, 1]."""
    _check_pair(gt, out)
    _check_window_fits(gt.shape, plane=True)
    return _structural_similarities(gt, out, float(data_range), plane=True, columns=False)[0]


def ssim_col(gt: np.ndarray, out: np.ndarray, data_range: int) -> float:
    """Column-wise SSIM: the 2022 ``multichannel=True`` value (mean of the 1-D SSIM of every column, window 7
    down the column), ``(H, W)`` integer mosaics with H >= 7; in [-1, 1]."""
    _check_pair(gt, out)
    _check_window_fits(gt.shape, plane=False)
    return _structural_similarities(gt, out, float(data_range), plane=False, columns=True)[1]


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
    """All four metrics for one image: ``(H, W)`` uint16 ground truth and result, at least 7x7."""
    _check_pair(gt, out)
    _check_window_fits(gt.shape, plane=True)
    p = psnr(gt, out, data_range)
    s, s_col = _structural_similarities(gt, out, float(data_range), plane=True, columns=True)
    return ImageScores(psnr=p, ssim=s, ssim_col=s_col, score=score(p, s))
