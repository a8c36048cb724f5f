"""Tests for the organisers' noise generator (bench.core.noise.add_noise) and NoiseProfile.

Model, in the normalised domain on the packed image: ``noisy = x + N(0, sqrt(a*x + b))``, clipped to
[0, 1] and truncated back to uint16. Truncation adds an error uniform on (-1, 0] DN: a mean bias of
-0.5 DN and a variance of 1/12 DN^2, i.e. -0.5/15359 and (1/15359)^2/12 in normalised units.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.noise_model import NoiseProfile, add_noise

from bench.core.rawio import normalize

BLACK, WHITE = 1024, 16383
SCALE = WHITE - BLACK  # 15359
TRUNCATION_BIAS = -0.5 / SCALE
TRUNCATION_VARIANCE = 1.0 / (12.0 * SCALE**2)


def _flat(level: float, shape=(512, 512)) -> tuple[np.ndarray, float]:
    """A flat uint16 mosaic at the integer raw value nearest normalised ``level``, and its exact level."""
    raw = BLACK + int(round(level * SCALE))
    mosaic = np.full(shape, raw, dtype=np.uint16)
    return mosaic, (raw - BLACK) / SCALE


def _residual(noisy: np.ndarray, x: float) -> np.ndarray:
    return normalize(noisy, BLACK, WHITE).astype(np.float64) - x


def _random_clean(seed: int, shape=(64, 96)) -> np.ndarray:
    return np.random.default_rng(seed).integers(BLACK, WHITE + 1, size=shape, dtype=np.uint16)


def test_add_noise_is_deterministic_for_a_fixed_seed():
    clean = _random_clean(1)
    first = add_noise(clean, 1e-3, 1e-4, np.random.default_rng(123), BLACK, WHITE)
    second = add_noise(clean, 1e-3, 1e-4, np.random.default_rng(123), BLACK, WHITE)
    np.testing.assert_array_equal(first, second)


def test_add_noise_differs_between_seeds():
    clean = _random_clean(2)
    first = add_noise(clean, 1e-3, 1e-4, np.random.default_rng(1), BLACK, WHITE)
    second = add_noise(clean, 1e-3, 1e-4, np.random.default_rng(2), BLACK, WHITE)
    assert np.mean(first != second) > 0.9


def test_add_noise_does_not_modify_its_input():
    clean = _random_clean(3)
    copy = clean.copy()
    add_noise(clean, 1e-2, 1e-3, np.random.default_rng(0), BLACK, WHITE)
    np.testing.assert_array_equal(clean, copy)


@pytest.mark.parametrize("a, b", [(1e-4, 1e-6), (1e-2, 1e-3), (0.5, 0.1)])
def test_add_noise_output_is_uint16_same_shape_within_black_and_white(a, b):
    clean = _random_clean(4)
    noisy = add_noise(clean, a, b, np.random.default_rng(5), BLACK, WHITE)
    assert noisy.dtype == np.uint16
    assert noisy.shape == clean.shape
    assert noisy.min() >= BLACK
    assert noisy.max() <= WHITE
    assert not np.array_equal(noisy, clean)


@pytest.mark.parametrize(
    "level, a, b",
    [
        (0.2, 1e-4, 1e-6),
        (0.5, 1e-4, 1e-6),
        (0.2, 1e-3, 1e-4),
        (0.5, 3e-3, 1e-5),
        (0.3, 1e-2, 1e-3),
        (0.5, 1e-2, 1e-3),
    ],
)
def test_add_noise_variance_matches_a_x_plus_b(level, a, b):
    """On a flat mosaic far (> 4 sigma) from 0 and 1, var(noisy - x) = a*x + b (+ truncation's 1/12 DN^2)."""
    clean, x = _flat(level)
    expected_variance = a * x + b
    sigma = np.sqrt(expected_variance)
    assert x - 4 * sigma > 0 and x + 4 * sigma < 1  # precondition: clipping is negligible
    residual = _residual(add_noise(clean, a, b, np.random.default_rng(7), BLACK, WHITE), x)
    # 262144 samples: the variance estimate's relative standard error is sqrt(2 / N) ~ 0.3 %
    assert residual.var() == pytest.approx(expected_variance + TRUNCATION_VARIANCE, rel=0.03)
    # zero-mean noise: only the truncation bias remains, within 5 standard errors of the mean
    assert abs(residual.mean() - TRUNCATION_BIAS) < 5 * sigma / np.sqrt(residual.size)


def test_add_noise_truncates_tiny_noise_instead_of_rounding():
    """With sigma ~ 0.77 DN the truncation is visible: mean -0.5 DN, variance b + 1/12 DN^2 (14 % more than b)."""
    clean, x = _flat(0.5)
    b = 2.5e-9
    residual = _residual(add_noise(clean, 0.0, b, np.random.default_rng(8), BLACK, WHITE), x)
    standard_error = np.sqrt(b / residual.size)
    assert abs(residual.mean() - TRUNCATION_BIAS) < 5 * standard_error  # rounding would give mean 0
    assert residual.var() == pytest.approx(b + TRUNCATION_VARIANCE, rel=0.02)
    assert residual.var() > 1.08 * b


def test_add_noise_zero_variance_gives_back_the_clean_mosaic():
    clean = _random_clean(9)
    noisy = add_noise(clean, 0.0, 0.0, np.random.default_rng(0), BLACK, WHITE)
    np.testing.assert_array_equal(noisy, clean)


def test_add_noise_level_follows_each_pixel_through_packing():
    """Each CFA phase at its own level gets its own variance: the noise is applied to the right pixels."""
    levels = (0.1, 0.3, 0.5, 0.7)  # planes (even,even), (even,odd), (odd,even), (odd,odd)
    a, b = 5e-3, 1e-4
    clean = np.empty((512, 512), dtype=np.uint16)
    exact = []
    for (r, c), level in zip(((0, 0), (0, 1), (1, 0), (1, 1)), levels):
        raw = BLACK + int(round(level * SCALE))
        clean[r::2, c::2] = raw
        exact.append((raw - BLACK) / SCALE)
    noisy = add_noise(clean, a, b, np.random.default_rng(10), BLACK, WHITE)
    for (r, c), x in zip(((0, 0), (0, 1), (1, 0), (1, 1)), exact):
        residual = _residual(noisy[r::2, c::2], x)
        assert residual.var() == pytest.approx(a * x + b, rel=0.05), (r, c)


def test_add_noise_clips_at_white_without_wrapping():
    clean, _ = _flat(0.98, shape=(256, 256))
    noisy = add_noise(clean, 1e-2, 1e-3, np.random.default_rng(11), BLACK, WHITE)
    assert noisy.max() <= WHITE
    assert np.mean(noisy == WHITE) > 0.3  # about 40 % of draws land above 1 and are clipped to white
    assert noisy.min() > BLACK + 0.25 * SCALE  # no overflow wrap-around to small values (7 sigma)


def test_add_noise_clips_at_black_without_wrapping():
    clean, _ = _flat(0.0, shape=(256, 256))
    noisy = add_noise(clean, 1e-2, 1e-3, np.random.default_rng(12), BLACK, WHITE)
    assert noisy.min() == BLACK
    assert 0.4 < np.mean(noisy == BLACK) < 0.6  # half the draws are negative
    assert noisy.max() < BLACK + 0.5 * SCALE


def test_add_noise_honours_other_black_and_white_levels():
    black, white = 64, 1023
    clean = np.full((256, 256), 64 + 480, dtype=np.uint16)
    x = 480 / 959
    a, b = 1e-3, 1e-4
    noisy = add_noise(clean, a, b, np.random.default_rng(13), black, white)
    assert noisy.min() >= black and noisy.max() <= white
    residual = normalize(noisy, black, white).astype(np.float64) - x
    assert residual.var() == pytest.approx(a * x + b + 1 / (12 * 959**2), rel=0.05)


@pytest.mark.parametrize("a, b", [(1e-4, 1e-6), (1e-2, 1e-3), (3e-3, 2e-5)])
def test_noise_profile_std_is_sqrt_a_x_plus_b(a, b):
    x = np.linspace(0.0, 1.0, 11).reshape(1, 11)
    std = NoiseProfile(a, b).std(x)
    assert std.shape == x.shape
    np.testing.assert_allclose(std, np.sqrt(a * x + b), rtol=1e-12)


def test_noise_profile_std_of_negative_variance_is_zero():
    std = NoiseProfile(1e-3, -5e-4).std(np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(std, [0.0, 0.0, np.sqrt(5e-4)], rtol=1e-12)


def test_noise_profile_defaults_to_oracle_source():
    assert NoiseProfile(1e-3, 1e-4).source == "oracle"
    assert NoiseProfile(1e-3, 1e-4, "estimate").source == "estimate"
