"""Tests for bench.core.metrics, cross-checked against direct scikit-image calls (PSNR bit for bit, SSIMs to 1e-9:
the suite computes them itself, see tests/test_metrics_exact.py) and the written-out formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.core import metrics

WHITE = 16383


def _random_pair(seed: int, shape=(64, 96), noise=400.0):
    """Random uint16 ground truth in [1024, 16383] and a noisy version of it."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(1024, WHITE + 1, size=shape, dtype=np.uint16)
    out = np.clip(gt + rng.normal(0.0, noise, size=shape), 1024, WHITE).astype(np.uint16)
    return gt, out


def _smooth_pair(seed: int, shape=(64, 96), noise=300.0):
    """A structured image (gradients plus a texture) and a noisy version: SSIM well inside (0, 1)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    clean = 3000 + 60 * rows + 40 * cols + 1500 * np.sin(rows / 5.0) * np.cos(cols / 7.0)
    gt = np.clip(clean, 1024, WHITE).astype(np.uint16)
    out = np.clip(clean + rng.normal(0.0, noise, size=shape), 1024, WHITE).astype(np.uint16)
    return gt, out


PAIRS = [_random_pair(1), _random_pair(2, shape=(32, 40), noise=2000.0), _smooth_pair(3), _smooth_pair(4, noise=50.0)]
PAIR_IDS = ["random", "random-heavy", "smooth", "smooth-light"]


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_psnr_equals_skimage_with_fixed_data_range(pair):
    gt, out = pair
    assert metrics.psnr(gt, out, data_range=16383) == peak_signal_noise_ratio(gt, out, data_range=16383)


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_psnr_equals_hand_formula(pair):
    gt, out = pair
    mse = np.mean((gt.astype(np.float64) - out.astype(np.float64)) ** 2)
    expected = 10.0 * math.log10(16383.0**2 / mse)
    assert metrics.psnr(gt, out, data_range=16383) == pytest.approx(expected, rel=1e-12)


def test_psnr_data_range_is_16383_even_for_a_dim_image():
    """data_range is the fixed white level, never the image's own range or the dtype's (65535)."""
    gt = np.full((16, 16), 2000, dtype=np.uint16)
    out = gt.copy()
    out[0, 0] = 2010
    mse = 100.0 / 256.0
    assert metrics.psnr(gt, out, data_range=16383) == pytest.approx(10 * math.log10(16383.0**2 / mse), rel=1e-12)


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_ssim_equals_skimage_2d(pair):
    gt, out = pair
    assert abs(metrics.ssim(gt, out, data_range=16383) - structural_similarity(gt, out, data_range=16383)) < 1e-9


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_ssim_col_equals_skimage_channel_axis(pair):
    gt, out = pair
    expected = structural_similarity(gt, out, data_range=16383, channel_axis=-1)
    assert abs(metrics.ssim_col(gt, out, data_range=16383) - expected) < 1e-9


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_ssim_col_is_mean_of_per_column_1d_ssims(pair):
    gt, out = pair
    per_column = [structural_similarity(gt[:, j], out[:, j], data_range=16383) for j in range(gt.shape[1])]
    assert metrics.ssim_col(gt, out, data_range=16383) == pytest.approx(float(np.mean(per_column)), rel=1e-12)


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_ssim_col_differs_from_2d_ssim(pair):
    gt, out = pair
    assert abs(metrics.ssim_col(gt, out, data_range=16383) - metrics.ssim(gt, out, data_range=16383)) > 1e-4


def test_ssim_is_one_for_identical_images():
    gt, _ = _smooth_pair(5)
    assert metrics.ssim(gt, gt, data_range=16383) == pytest.approx(1.0)
    assert metrics.ssim_col(gt, gt, data_range=16383) == pytest.approx(1.0)


def test_metrics_return_python_floats():
    gt, out = PAIRS[0]
    for value in (metrics.psnr(gt, out, data_range=16383), metrics.ssim(gt, out, data_range=16383), metrics.ssim_col(gt, out, data_range=16383)):
        assert type(value) is float


@pytest.mark.parametrize(
    "psnr_db, ssim_value, expected",
    [
        (30.0, 0.8, 0.0),  # both terms exactly at their thresholds
        (29.0, 0.7, 0.0),  # both below: clipped to 0, never negative
        (20.0, 0.0, 0.0),
        (60.0, 1.0, 100.0),
        (45.0, 0.8, 40.0),  # 0.8 * 15 / 30 * 100
        (30.0, 0.9, 10.0),  # 0.2 * 0.1 / 0.2 * 100
        (25.0, 0.95, 15.0),  # PSNR term clipped, SSIM term counts
        (36.0, 0.5, 16.0),  # SSIM term clipped, PSNR term counts: 0.8 * 6 / 30 * 100
    ],
)
def test_score_hand_computed_values(psnr_db, ssim_value, expected):
    assert metrics.score(psnr_db, ssim_value) == pytest.approx(expected, abs=1e-9)


def test_score_generic_case_matches_written_out_formula():
    psnr_db, ssim_value = 37.123, 0.9345
    expected = (0.8 * (psnr_db - 30) / 30 + 0.2 * (ssim_value - 0.8) / 0.2) * 100
    assert metrics.score(psnr_db, ssim_value) == pytest.approx(expected, rel=1e-12)
    # and the design's rule of thumb: 1 dB PSNR = 8/3 points, 0.01 SSIM = 1 point
    assert metrics.score(psnr_db + 1, ssim_value) - metrics.score(psnr_db, ssim_value) == pytest.approx(80 / 30)
    assert metrics.score(psnr_db, ssim_value + 0.01) - metrics.score(psnr_db, ssim_value) == pytest.approx(1.0)


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_score_mosaic_returns_consistent_numbers(pair):
    gt, out = pair
    scores = metrics.score_mosaic(gt, out, data_range=16383)
    assert scores.psnr == peak_signal_noise_ratio(gt, out, data_range=16383)
    assert abs(scores.ssim - structural_similarity(gt, out, data_range=16383)) < 1e-9
    assert abs(scores.ssim_col - structural_similarity(gt, out, data_range=16383, channel_axis=-1)) < 1e-9
    assert scores.score == metrics.score(scores.psnr, scores.ssim)


def test_score_mosaic_score_uses_2d_ssim_not_column_ssim():
    gt, out = _smooth_pair(6, noise=30.0)
    scores = metrics.score_mosaic(gt, out, data_range=16383)
    # preconditions: both SSIMs count in the score and they differ, so the two candidate scores differ
    assert scores.ssim > 0.8 and scores.ssim_col > 0.8
    assert abs(scores.ssim - scores.ssim_col) > 1e-4
    expected = (0.8 * max(scores.psnr - 30, 0) / 30 + 0.2 * max(scores.ssim - 0.8, 0) / 0.2) * 100
    assert scores.score == pytest.approx(expected, rel=1e-12)
    assert scores.score != pytest.approx(metrics.score(scores.psnr, scores.ssim_col), abs=1e-3)


@pytest.mark.parametrize("function", [metrics.psnr, metrics.ssim, metrics.ssim_col, metrics.score_mosaic])
@pytest.mark.parametrize(
    "shapes",
    [((64, 96), (64, 94)), ((64, 96), (96, 64)), ((8, 8, 2), (8, 8, 2)), ((64,), (64,))],
    ids=["narrower", "transposed", "3d", "1d"],
)
def test_metrics_reject_shape_mismatch_or_non_2d(function, shapes):
    gt = np.full(shapes[0], 2000, dtype=np.uint16)
    out = np.full(shapes[1], 2000, dtype=np.uint16)
    with pytest.raises(ValueError):
        function(gt, out, data_range=16383)


def test_data_range_is_required_everywhere():
    """No metric defaults to the competition's white level: a caller for another sensor cannot forget it."""
    import inspect

    for function in (metrics.psnr, metrics.ssim, metrics.ssim_col, metrics.score_mosaic):
        assert inspect.signature(function).parameters["data_range"].default is inspect.Parameter.empty
