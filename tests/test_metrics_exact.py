"""bench.core.metrics computes PSNR, 2-D SSIM and column SSIM itself (numpy window sums, no scikit-image
call); these tests hold it equal to scikit-image, called directly, to 1e-9 on random, realistic, odd-sized
and constant mosaics and at several data ranges."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.core import metrics

TOLERANCE = 1e-9
BLACK, WHITE = 1024, 16383


def reference(gt: np.ndarray, out: np.ndarray, data_range: int) -> tuple[float, float, float]:
    """(PSNR capped as the suite caps it, 2-D SSIM, column SSIM), each from one scikit-image call."""
    if np.array_equal(gt, out):
        psnr = metrics.PSNR_CAP_DB
    else:
        psnr = min(float(peak_signal_noise_ratio(gt, out, data_range=data_range)), metrics.PSNR_CAP_DB)
    return (psnr, float(structural_similarity(gt, out, data_range=data_range)),
            float(structural_similarity(gt, out, data_range=data_range, channel_axis=-1)))


def assert_equal_to_skimage(gt: np.ndarray, out: np.ndarray, data_range: int) -> None:
    expected_psnr, expected_ssim, expected_col = reference(gt, out, data_range)
    assert abs(metrics.psnr(gt, out, data_range) - expected_psnr) <= TOLERANCE
    assert abs(metrics.ssim(gt, out, data_range) - expected_ssim) <= TOLERANCE
    assert abs(metrics.ssim_col(gt, out, data_range) - expected_col) <= TOLERANCE
    together = metrics.score_mosaic(gt, out, data_range)
    assert abs(together.psnr - expected_psnr) <= TOLERANCE
    assert abs(together.ssim - expected_ssim) <= TOLERANCE
    assert abs(together.ssim_col - expected_col) <= TOLERANCE
    assert together.score == metrics.score(together.psnr, together.ssim)


def random_pair(shape: tuple[int, int], low: int, high: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniform uint16 mosaics with values in [low, high]."""
    rng = np.random.default_rng(seed)
    return (rng.integers(low, high + 1, size=shape).astype(np.uint16),
            rng.integers(low, high + 1, size=shape).astype(np.uint16))


def realistic_pair(shape: tuple[int, int], noise: float, seed: int, black: int = BLACK,
                   white: int = WHITE) -> tuple[np.ndarray, np.ndarray]:
    """A smooth gradient with texture spanning black to white (clipped at both ends, so flat black and
    saturated areas occur) and that image plus Gaussian noise of std ``noise`` DN, both uint16."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    level = -0.1 + 1.2 * cols + 0.15 * np.sin(9 * rows) * np.cos(7 * cols) + 0.05 * np.sin(40 * (rows + cols))
    clean = black + np.clip(level, 0.0, 1.0) * (white - black)
    gt = np.round(clean).astype(np.uint16)
    out = np.clip(np.round(clean + rng.normal(0.0, noise, size=shape)), black, white).astype(np.uint16)
    return gt, out


@pytest.mark.parametrize("shape", [(64, 96), (97, 61), (300, 257)])
@pytest.mark.parametrize("low, high, data_range", [(BLACK, WHITE, WHITE), (0, 65535, 65535)],
                         ids=["competition-range", "full-uint16"])
def test_random_mosaics_equal_skimage(shape, low, high, data_range):
    gt, out = random_pair(shape, low, high, seed=shape[0])
    assert_equal_to_skimage(gt, out, data_range)


@pytest.mark.parametrize("noise", [3.0, 60.0, 900.0])
def test_realistic_mosaics_near_black_and_white_equal_skimage(noise):
    gt, out = realistic_pair((240, 320), noise, seed=int(noise))
    assert gt.min() == BLACK and gt.max() == WHITE  # precondition: both ends of the range are present
    assert_equal_to_skimage(gt, out, WHITE)


@pytest.mark.parametrize("shape", [(33, 47), (7, 9), (9, 7), (7, 7), (8, 200), (200, 8), (23, 4624)])
def test_odd_sizes_equal_skimage(shape):
    gt, out = realistic_pair(shape, 200.0, seed=shape[1])
    assert_equal_to_skimage(gt, out, WHITE)


@pytest.mark.parametrize("width", [1, 3, 6])
def test_column_ssim_of_mosaics_narrower_than_the_window_equals_skimage(width):
    """Column SSIM needs only 7 rows (each column is one 1-D signal); 2-D SSIM refuses, as scikit-image does."""
    gt, out = random_pair((40, width), BLACK, WHITE, seed=width)
    expected = structural_similarity(gt, out, data_range=WHITE, channel_axis=-1)
    assert abs(metrics.ssim_col(gt, out, WHITE) - expected) <= TOLERANCE
    with pytest.raises(ValueError):
        structural_similarity(gt, out, data_range=WHITE)
    with pytest.raises(ValueError, match="at least 7 rows and columns"):
        metrics.ssim(gt, out, WHITE)
    with pytest.raises(ValueError):
        metrics.score_mosaic(gt, out, WHITE)


@pytest.mark.parametrize("shape", [(6, 40), (3, 3)])
def test_mosaics_shorter_than_the_window_are_refused_like_skimage(shape):
    gt, out = random_pair(shape, BLACK, WHITE, seed=1)
    with pytest.raises(ValueError):
        structural_similarity(gt, out, data_range=WHITE, channel_axis=-1)
    for function in (metrics.ssim, metrics.ssim_col, metrics.score_mosaic):
        with pytest.raises(ValueError, match="at least 7 rows"):
            function(gt, out, WHITE)


@pytest.mark.parametrize("value", [BLACK, 5000, WHITE])
def test_identical_constant_mosaics_equal_skimage(value):
    gt = np.full((40, 56), value, dtype=np.uint16)
    assert_equal_to_skimage(gt, gt.copy(), WHITE)
    assert metrics.psnr(gt, gt.copy(), WHITE) == metrics.PSNR_CAP_DB
    assert metrics.ssim(gt, gt.copy(), WHITE) == 1.0 and metrics.ssim_col(gt, gt.copy(), WHITE) == 1.0


def test_constant_against_noisy_equals_skimage_both_ways():
    flat = np.full((50, 70), 3000, dtype=np.uint16)
    noisy = (flat + np.random.default_rng(7).integers(-400, 400, size=flat.shape)).astype(np.uint16)
    assert_equal_to_skimage(flat, noisy, WHITE)
    assert_equal_to_skimage(noisy, flat, WHITE)


def test_two_different_constants_equal_skimage():
    assert_equal_to_skimage(np.full((30, 30), 2000, np.uint16), np.full((30, 30), 2100, np.uint16), WHITE)


@pytest.mark.parametrize("black, white", [(64, 1023), (256, 4095), (0, 65535), (512, 15000)])
def test_other_data_ranges_equal_skimage(black, white):
    gt, out = realistic_pair((90, 120), noise=(white - black) / 300, seed=white, black=black, white=white)
    assert_equal_to_skimage(gt, out, white)


def test_data_range_enters_like_skimage():
    """One pair scored at two data ranges: both values differ, and each equals scikit-image's."""
    gt, out = realistic_pair((60, 80), 400.0, seed=3)
    assert abs(metrics.ssim(gt, out, WHITE) - metrics.ssim(gt, out, 65535)) > 1e-4
    assert_equal_to_skimage(gt, out, 65535)


def test_a_near_perfect_result_stays_below_the_cap_and_equals_skimage():
    gt, _ = realistic_pair((64, 64), 0.0, seed=0)
    out = gt.copy()
    out[10, 10] += 1  # mean squared error 1/4096: 120 dB, above the cap
    assert metrics.psnr(gt, out, WHITE) == metrics.PSNR_CAP_DB
    out = (gt.astype(np.int64) + np.random.default_rng(0).integers(-2, 3, gt.shape)).astype(np.uint16)
    assert metrics.psnr(gt, out, WHITE) < metrics.PSNR_CAP_DB
    assert_equal_to_skimage(gt, out, WHITE)
