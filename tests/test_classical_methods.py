"""Method-specific checks of the classical denoisers (bilateral, nlm, bm3d), beyond the shared contract in
test_methods_contract.py: they use the noise profile, their parameters matter, NLM takes OpenCV's 16-bit
path, BM3D's tiling and worker processes do not change its result."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bench.core.noise_model import NoiseProfile, add_noise

from bench.core.rawio import normalize, pack
from methods import bm3d as bm3d_module
from methods import nlm as nlm_module
from methods.base import NoisyRaw
from methods.registry import create_method, get_method_class
from tests.helpers import smooth_clean_mosaic

CLASSICAL = ["bilateral", "nlm", "bm3d"]
PROFILE = NoiseProfile(a=4e-3, b=2e-4)
# For each method, a weak and a strong setting of its main strength parameter.
WEAK_AND_STRONG = {"bilateral": ("sigma_color", 1.0, 4.0), "nlm": ("h", 1.0, 3.0),
                   "bm3d": ("sigma_scale", 0.7, 1.4)}


def _skip_if_unavailable(name: str) -> None:
    reason = get_method_class(name).unavailable_reason()
    if reason:
        pytest.skip(f"{name} cannot run here: {reason}")


def _clean_and_noisy(profile: NoiseProfile = PROFILE, height: int = 96, width: int = 128):
    """Packed clean and noisy ``(height/2, width/2, 4)`` float32 images."""
    mosaic = smooth_clean_mosaic(height, width, seed=4)
    noisy = add_noise(mosaic, profile.a, profile.b, np.random.default_rng(8), 1024, 16383)
    clean = normalize(pack(mosaic), 1024, 16383)
    return clean, np.clip(normalize(pack(noisy), 1024, 16383), 0, 1)


def _raw(noisy: np.ndarray, profile: NoiseProfile) -> NoisyRaw:
    return NoisyRaw(noisy[None], "BGGR", lambda: profile, "synthetic")


def _roughness(image: np.ndarray) -> float:
    """Mean absolute horizontal difference within each plane: lower is smoother."""
    return float(np.abs(np.diff(image.astype(np.float64), axis=1)).mean())


@pytest.mark.parametrize("name", CLASSICAL)
def test_stronger_setting_smooths_more(name):
    _skip_if_unavailable(name)
    parameter, weak, strong = WEAK_AND_STRONG[name]
    _, noisy = _clean_and_noisy()
    raw = _raw(noisy, PROFILE)
    weak_out = create_method(name, {parameter: weak}).denoise(raw)
    strong_out = create_method(name, {parameter: strong}).denoise(raw)
    assert not np.array_equal(weak_out, strong_out)
    assert _roughness(strong_out) < _roughness(weak_out) < _roughness(noisy)


@pytest.mark.parametrize("name", CLASSICAL)
def test_uses_the_noise_profile(name):
    """The same input said to carry a quarter, the same or four times its noise variance: the more noise the
    method is told about, the more it takes away."""
    _skip_if_unavailable(name)
    _, noisy = _clean_and_noisy()

    def removed(variance_factor: float) -> float:
        told = NoiseProfile(a=variance_factor * PROFILE.a, b=variance_factor * PROFILE.b)
        out = create_method(name).denoise(_raw(noisy, told))
        return float(np.sqrt(np.mean((out.astype(np.float64) - noisy) ** 2)))

    quarter, same, four_times = removed(0.25), removed(1.0), removed(4.0)
    assert quarter < 0.7 * same and same < four_times


@pytest.mark.parametrize("name", CLASSICAL)
def test_reports_missing_package_without_importing_it(name, monkeypatch):
    cls = get_method_class(name)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda module, *args: None if module in ("cv2", "bm3d") else real_find_spec(module, *args))
    reason = cls.unavailable_reason()
    assert reason and "not installed" in reason and "\n" not in reason


@pytest.mark.parametrize("name", ["bilateral", "nlm"])
def test_window_parameters_change_the_output(name):
    _skip_if_unavailable(name)
    parameter, small, large = {"bilateral": ("diameter", 3, 11), "nlm": ("search_window", 7, 21)}[name]
    _, noisy = _clean_and_noisy()
    raw = _raw(noisy, PROFILE)
    assert not np.array_equal(create_method(name, {parameter: small}).denoise(raw),
                              create_method(name, {parameter: large}).denoise(raw))


def test_nlm_uses_opencv_16bit_l1_path(monkeypatch):
    _skip_if_unavailable("nlm")
    import cv2

    calls = []
    real = cv2.fastNlMeansDenoising

    def recording(src, h, **kwargs):
        calls.append({"dtype": src.dtype, "shape": src.shape, "min": int(src.min()), "max": int(src.max()),
                      "h": list(h), **kwargs})
        return real(src, h, **kwargs)

    monkeypatch.setattr(cv2, "fastNlMeansDenoising", recording)
    _, noisy = _clean_and_noisy()
    method = create_method("nlm", {"h": 2.0, "template_window": 4, "search_window": 15})
    method.denoise(_raw(noisy, PROFILE))
    assert len(calls) == 1
    call = calls[0]
    assert call["dtype"] == np.uint16 and call["shape"] == noisy.shape  # one 4-plane 16-bit image
    assert call["normType"] == cv2.NORM_L1
    assert call["templateWindowSize"] == 5 and call["searchWindowSize"] == 15  # even size rounded up
    assert call["h"] == [pytest.approx(2.0 * nlm_module.LEVELS_PER_NOISE_STD)]
    assert call["min"] == nlm_module.MARGIN_16BIT


def test_nlm_fits_a_wide_stabilised_range_into_16_bits(monkeypatch):
    """With no signal-dependent part and a tiny b, the stabilised image spans thousands of noise stds: the
    16-bit scale shrinks so that nothing is clipped, h shrinks with it, and the noise is still removed."""
    _skip_if_unavailable("nlm")
    import cv2

    calls = []
    real = cv2.fastNlMeansDenoising

    def recording(src, h, **kwargs):
        calls.append((int(src.min()), int(src.max()), list(h)))
        return real(src, h, **kwargs)

    monkeypatch.setattr(cv2, "fastNlMeansDenoising", recording)
    profile = NoiseProfile(a=0.0, b=1e-8)  # noise std 1e-4: a 0.4 step is 4000 noise stds
    clean = np.full((48, 64, 4), 0.5)
    clean[:, 32:] = 0.9
    noisy = clean + np.random.default_rng(1).standard_normal(clean.shape) * 1e-4
    out = create_method("nlm").denoise(_raw(noisy.astype(np.float32), profile))
    low, high, h = calls[0]
    assert low >= nlm_module.MARGIN_16BIT - 1 and high <= 65535 - nlm_module.MARGIN_16BIT + 1
    assert high - low > 60000 and h[0] < 0.6 * 1.7 * nlm_module.LEVELS_PER_NOISE_STD
    assert np.std(out[:, 4:28] - clean[:, 4:28]) < 0.5 * np.std(noisy[:, 4:28] - clean[:, 4:28])


def test_tile_grid_covers_the_image_once():
    for height, width, tile in [(96, 130, 32), (50, 40, 64), (17, 200, 0)]:
        tiles = bm3d_module.tile_grid(height, width, tile, margin=5)
        count = np.zeros((height, width), int)
        for t in tiles:
            count[t.core] += 1
            rows, cols = t.padded
            assert 0 <= rows.start and rows.stop <= height and 0 <= cols.start and cols.stop <= width
            padded = np.arange(height * width).reshape(height, width)[t.padded]
            np.testing.assert_array_equal(padded[t.core_in_padded],
                                          np.arange(height * width).reshape(height, width)[t.core])
            if tile:
                assert t.core[0].stop - t.core[0].start <= tile and t.core[1].stop - t.core[1].start <= tile
        assert (count == 1).all()


def test_bm3d_worker_processes_give_the_sequential_result_bit_for_bit():
    """Tiles denoised in two spawned worker processes == the same tiles in this process."""
    _skip_if_unavailable("bm3d")
    clean, noisy = _clean_and_noisy(height=64, width=96)  # packed 32 x 48: four 16 x 24 tiles
    raw = _raw(noisy, PROFILE)
    sequential = create_method("bm3d", {"tile_size": 24, "workers": 1}).denoise(raw)
    parallel = create_method("bm3d", {"tile_size": 24, "workers": 2}).denoise(raw)
    assert np.array_equal(sequential, parallel)
    # Tiling itself costs next to nothing in quality.
    whole = create_method("bm3d", {"tile_size": 0, "workers": 1}).denoise(raw)

    def mse(image):
        return float(np.mean((image.astype(np.float64) - clean) ** 2))

    assert mse(sequential) < 1.1 * mse(whole)


def test_bm3d_fast_profile_denoises_and_differs_from_the_standard_one():
    """speed="fast" (the package's low-complexity profile) still removes most of the noise, deterministically,
    and is a different computation from the standard profile."""
    _skip_if_unavailable("bm3d")
    clean, noisy = _clean_and_noisy(height=64, width=96)
    raw = _raw(noisy, PROFILE)
    fast = create_method("bm3d", {"speed": "fast", "workers": 1}).denoise(raw)
    standard = create_method("bm3d", {"workers": 1}).denoise(raw)
    assert np.array_equal(fast, create_method("bm3d", {"speed": "fast", "workers": 1}).denoise(raw))
    assert not np.array_equal(fast, standard)

    def mse(image):
        return float(np.mean((image.astype(np.float64) - clean) ** 2))

    assert mse(fast) < 0.5 * mse(raw.packed)


@pytest.mark.parametrize("name, module, dtype", [("bilateral", "methods.bilateral", np.float32),
                                                 ("nlm", "methods.nlm", np.float32),
                                                 ("bm3d", "methods.bm3d", np.float64)])
def test_stabilised_domain_dtype(name, module, dtype, monkeypatch):
    """The fast filters work in a float32 stabilised domain (float32 or 16-bit arithmetic inside anyway);
    BM3D stays in float64, so its scores do not change."""
    import importlib

    from methods.toolkit import vst

    _skip_if_unavailable(name)
    seen = []

    def recording(packed, profile, denoise_unit_noise, dtype=np.float64):
        seen.append(np.dtype(dtype))
        return vst.denoise_stabilised(packed, profile, denoise_unit_noise, dtype)

    monkeypatch.setattr(importlib.import_module(module), "denoise_stabilised", recording)
    _, noisy = _clean_and_noisy(height=64, width=64)
    params = {"tile_size": 0, "workers": 1} if name == "bm3d" else {}
    out = create_method(name, params).denoise(_raw(noisy, PROFILE))
    assert seen == [np.dtype(dtype)] and out.dtype == np.float32 and out.shape == noisy.shape
