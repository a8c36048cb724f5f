"""The Bayer-aware self-ensemble of the learned methods: every transformed copy is BGGR, every transform is
undone exactly, and colours are never mixed up."""

from __future__ import annotations

import numpy as np
import pytest

from methods.toolkit.ensemble import ENSEMBLE_COUNTS as COUNTS, TRANSFORMS, ensemble_average as self_ensemble, forward, inverse

# colour codes of a BGGR cell: B, G, G, R (a transpose swaps the two greens, which stay green, as in training)
BGGR_CODES = np.array([[0, 1], [1, 2]])


def colour_codes(height: int, width: int) -> np.ndarray:
    return np.tile(BGGR_CODES, (height // 2, width // 2))


def colour_gain(mosaic: np.ndarray) -> np.ndarray:
    """A stand-in 'denoiser' that treats each colour differently: it multiplies a BGGR mosaic's B, G, R
    samples by 1, 2, 3. Fed a mosaic of the wrong phase, it scales samples by the wrong colour's gain."""
    return mosaic * (1.0 + colour_codes(*mosaic.shape))


@pytest.mark.parametrize("flags", TRANSFORMS)
def test_every_transformed_copy_is_bggr_and_keeps_each_samples_colour(flags):
    codes = colour_codes(8, 12).astype(np.float64)
    moved = forward(codes, *flags)
    assert np.array_equal(moved, colour_codes(*moved.shape))  # BGGR everywhere, so colours kept


@pytest.mark.parametrize("flags", TRANSFORMS)
def test_each_transform_is_undone_exactly(flags):
    mosaic = np.random.default_rng(1).random((10, 14)).astype(np.float32)
    assert np.array_equal(inverse(forward(mosaic, *flags), *flags), mosaic)


@pytest.mark.parametrize("count", COUNTS)
def test_ensemble_of_a_colour_dependent_denoiser_is_that_denoiser(count):
    mosaic = np.random.default_rng(2).random((16, 20)).astype(np.float32)
    out = self_ensemble(mosaic, colour_gain, count)
    np.testing.assert_allclose(out, colour_gain(mosaic), rtol=1e-6)


def test_ensemble_averages_the_transformed_outputs():
    """A 'denoiser' that outputs its input's column index is averaged over identity, transpose, row flip and
    column flip: original (r, c) is column c, column r, column c and column 6 - c of the flipped copy (padded
    by 2, flipped, one dropped: index 6 - c), so the mean is (c + r + 6) / 4."""
    mosaic = np.zeros((4, 6), dtype=np.float32)
    out = self_ensemble(mosaic, lambda m: np.broadcast_to(np.arange(m.shape[1], dtype=np.float64), m.shape), 4)
    rows, cols = np.mgrid[0:4, 0:6]
    np.testing.assert_allclose(out, (cols + rows + 6) / 4)


def test_unknown_count_is_refused():
    with pytest.raises(ValueError, match="one of"):
        self_ensemble(np.zeros((4, 4), np.float32), lambda m: m, 3)


def test_learned_method_with_self_ensemble_runs_on_any_bayer_layout():
    pytest.importorskip("torch")
    from tests.test_learned import _tiny
    from methods.toolkit.learned import network_denoise
    from bench.core.noise_model import NoiseProfile

    net = _tiny("nafnet")
    packed = np.random.default_rng(3).random((24, 20, 4)).astype(np.float32)
    single = network_denoise(net, packed, lambda: NoiseProfile(1e-3, 1e-5), 0, 0, "cpu", False, cfa="GRBG")
    averaged = network_denoise(net, packed, lambda: NoiseProfile(1e-3, 1e-5), 0, 0, "cpu", False, cfa="GRBG",
                               self_ensemble=8)
    assert averaged.shape == single.shape == packed.shape
    assert np.isfinite(averaged).all() and not np.array_equal(averaged, single)
