"""The variance-stabilising transform (methods.toolkit.vst): unit noise std, unbiased inverse, round trips, Gaussian path,
the float64 path bit for bit the written-out formulas (BM3D's scores rest on it) and the float32 path close to it.

Levels are kept at least 4 noise std away from 0 and 1: the organisers' generator clips there, which the
transform does not model.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss

from methods.toolkit import vst
from bench.core.noise_model import NoiseProfile

# Corners of the competition's range a in [1e-4, 1e-2], b in [1e-6, 1e-3], and a point in the middle.
PROFILES = [NoiseProfile(1e-4, 1e-6), NoiseProfile(1e-4, 1e-3), NoiseProfile(1e-2, 1e-6),
            NoiseProfile(1e-2, 1e-3), NoiseProfile(1e-3, 3e-5)]
CANDIDATE_LEVELS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _levels_away_from_clipping(profile: NoiseProfile) -> list[float]:
    levels = [x for x in CANDIDATE_LEVELS if x - 4 * profile.std(x) > 0 and x + 4 * profile.std(x) < 1]
    assert len(levels) >= 2, f"too few test levels for {profile}"
    return levels


def _expected_forward(x: float, profile: NoiseProfile) -> float:
    """E[forward(z)] for z ~ N(x, a*x + b), by 80-point Gauss-Hermite quadrature (exact to far below the
    biases compared here, and free of sampling noise)."""
    nodes, weights = hermegauss(80)
    return float(np.sum(vst.forward(x + profile.std(x) * nodes, profile) * weights) / np.sum(weights))


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"a={p.a:g},b={p.b:g}")
def test_forward_gives_unit_noise_std(profile):
    rng = np.random.default_rng(11)
    for x in _levels_away_from_clipping(profile):
        z = x + rng.standard_normal(200_000) * profile.std(x)
        std = float(vst.forward(z, profile).std())
        assert abs(std - 1.0) < 0.04, f"level {x}: stabilised std {std:.4f}"


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"a={p.a:g},b={p.b:g}")
def test_unbiased_inverse_removes_most_of_the_bias(profile):
    for x in _levels_away_from_clipping(profile):
        expected = _expected_forward(x, profile)
        unbiased_error = float(vst.inverse_unbiased(expected, profile)) - x
        algebraic_error = float(vst.inverse_algebraic(expected, profile)) - x
        assert abs(unbiased_error) < 0.1 * abs(algebraic_error), f"level {x}"
        assert abs(unbiased_error) < 0.005 * profile.std(x), f"level {x}"


@pytest.mark.parametrize("profile", PROFILES + [NoiseProfile(0.0, 1e-4)], ids=lambda p: f"a={p.a:g},b={p.b:g}")
def test_forward_then_algebraic_inverse_is_the_identity(profile):
    z = np.linspace(0.0, 1.0, 1001)
    back = vst.inverse_algebraic(vst.forward(z, profile), profile)
    np.testing.assert_allclose(back, z, rtol=0, atol=1e-12)
    assert vst.forward(z.astype(np.float32), profile).dtype == np.float64


def test_negligible_gain_is_plain_gaussian_scaling():
    profile = NoiseProfile(a=0.0, b=4e-4)
    z = np.array([-0.1, 0.0, 0.3, 1.0])
    np.testing.assert_allclose(vst.forward(z, profile), z / 0.02)
    d = np.array([-3.0, 0.0, 15.0, 50.0])
    np.testing.assert_allclose(vst.inverse_unbiased(d, profile), d * 0.02)
    np.testing.assert_allclose(vst.inverse_algebraic(d, profile), d * 0.02)
    rng = np.random.default_rng(5)
    for x in (0.1, 0.5):
        z = x + rng.standard_normal(100_000) * 0.02
        assert abs(float(vst.forward(z, profile).std()) - 1.0) < 0.02


def test_inverse_unbiased_never_goes_below_zero():
    profile = NoiseProfile(1e-2, 1e-3)
    d = np.linspace(-5.0, 5.0, 101)
    assert (vst.inverse_unbiased(d, profile) >= 0).all()


def test_profile_without_variance_is_rejected():
    with pytest.raises(ValueError, match="no positive variance"):
        vst.forward(np.zeros(3), NoiseProfile(0.0, 0.0))
    with pytest.raises(ValueError, match="no positive variance"):
        vst.inverse_unbiased(np.zeros(3), NoiseProfile(-1e-3, 1e-4))


def test_denoise_stabilised_hands_over_unit_noise_and_returns_float32_in_range():
    profile = NoiseProfile(2e-3, 1e-4)
    rng = np.random.default_rng(2)
    clean = np.full((64, 64, 4), 0.3)
    noisy = np.clip(clean + rng.standard_normal(clean.shape) * profile.std(clean), 0, 1).astype(np.float32)
    seen = {}

    def flatten(stabilised: np.ndarray) -> np.ndarray:
        seen["dtype"], seen["shape"], seen["std"] = stabilised.dtype, stabilised.shape, float(stabilised.std())
        return np.full_like(stabilised, stabilised.mean())

    out = vst.denoise_stabilised(noisy, profile, flatten)
    assert seen["dtype"] == np.float64 and seen["shape"] == (64, 64, 4)
    assert abs(seen["std"] - 1.0) < 0.03
    assert out.dtype == np.float32 and out.shape == noisy.shape
    # The mean of the stabilised image, inverted without bias, gives back the clean level.
    assert abs(float(out.mean()) - 0.3) < 2e-3


def _written_out_forward(z: np.ndarray, profile: NoiseProfile) -> np.ndarray:
    """The GAT as the module docstring writes it, in float64, out of place."""
    z = np.asarray(z, dtype=np.float64)
    return 2.0 * np.sqrt(np.maximum(z / profile.a + 0.375 + profile.b / profile.a**2, 0.0))


def _written_out_inverse(d: np.ndarray, profile: NoiseProfile) -> np.ndarray:
    """The closed-form unbiased inverse, in float64, out of place."""
    d = np.asarray(d, dtype=np.float64)
    floor = 2.0 * np.sqrt(0.375)
    safe = np.maximum(d, floor)
    value = (0.25 * safe**2 + 0.25 * np.sqrt(1.5) / safe - 1.375 / safe**2 + 0.625 * np.sqrt(1.5) / safe**3
             - 0.125 - profile.b / profile.a**2)
    return profile.a * np.where(d > floor, np.maximum(value, 0.0), 0.0)


def _mixed_values(seed: int) -> np.ndarray:
    """Float32 values in [-0.05, 1.05] (over two blocks and a partial one) and the edge cases 0, -1, 1."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(-0.05, 1.05, 2 * vst.BLOCK_ELEMENTS + 4093)
    return np.concatenate([values, [0.0, -1.0, 1.0]]).astype(np.float32)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: f"a={p.a:g},b={p.b:g}")
def test_float64_path_is_the_written_out_formula_bit_for_bit(profile):
    z = _mixed_values(3)
    stabilised = vst.forward(z, profile)
    np.testing.assert_array_equal(stabilised.view(np.int64), _written_out_forward(z, profile).view(np.int64))
    d = np.concatenate([stabilised, np.linspace(-1.0, 5.0, 997), [2.0 * np.sqrt(0.375)]])
    np.testing.assert_array_equal(vst.inverse_unbiased(d, profile), _written_out_inverse(d, profile))


@pytest.mark.parametrize("profile", PROFILES + [NoiseProfile(0.0, 1e-4)], ids=lambda p: f"a={p.a:g},b={p.b:g}")
def test_float32_path_stays_within_float32_precision_of_float64(profile):
    z = _mixed_values(4)
    exact = vst.forward(z, profile)
    single = vst.forward(z, profile, np.float32)
    assert single.dtype == np.float32 and single.shape == z.shape
    # relative float32 rounding, and near a zero signal (where the square root is steep) 1e-4 noise std
    np.testing.assert_allclose(single, exact, rtol=2e-6, atol=1e-4)
    back = vst.inverse_unbiased(exact.astype(np.float32), profile, np.float32)
    assert back.dtype == np.float32
    # a hundredth of one DN of the competition's 15359-level range, or, where b/a**2 is large and float32's
    # stabilised values are coarser, a ten-thousandth of the smallest noise std (sqrt(b))
    tolerance = max(1e-2 / 15359, 1e-4 * np.sqrt(profile.b))
    np.testing.assert_allclose(back, vst.inverse_unbiased(exact, profile), rtol=0, atol=tolerance)


def test_any_shape_and_layout_is_transformed_elementwise():
    profile = PROFILES[-1]
    image = np.random.default_rng(6).uniform(0, 1, (37, 29, 4))
    strided = image[:, ::2, 1:3]  # not contiguous
    np.testing.assert_array_equal(vst.forward(strided, profile), _written_out_forward(strided, profile))
    assert vst.forward(0.25, profile).shape == () and float(vst.forward(0.25, profile)) == float(
        _written_out_forward(0.25, profile))


def test_denoise_stabilised_in_float32_hands_over_and_returns_float32():
    profile = NoiseProfile(2e-3, 1e-4)
    noisy = np.random.default_rng(8).uniform(0.2, 0.4, (16, 24, 4)).astype(np.float32)
    seen = {}

    def record(stabilised: np.ndarray) -> np.ndarray:
        seen["dtype"] = stabilised.dtype
        return stabilised

    out = vst.denoise_stabilised(noisy, profile, record, dtype=np.float32)
    assert seen["dtype"] == np.float32 and out.dtype == np.float32 and out.shape == noisy.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_other_dtypes_are_refused():
    with pytest.raises(ValueError, match="float32 or float64"):
        vst.forward(np.zeros(3), PROFILES[0], np.float16)
    with pytest.raises(ValueError, match="float32 or float64"):
        vst.inverse_unbiased(np.zeros(3), PROFILES[0], np.int32)
