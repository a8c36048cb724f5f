"""The contract every registered method must meet, checked for each one on a small synthetic image:
shape, dtype, value range, determinism, no change to its input, and (for real denoisers) a PSNR gain."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.noise_model import NoiseProfile, add_noise

from bench.core.rawio import normalize, pack
from methods.base import NoisyRaw
from methods.registry import create_method, get_method_class, list_methods
from tests.helpers import smooth_clean_mosaic

PROFILE = NoiseProfile(a=4e-3, b=2e-4, source="oracle")


def _noisy_input(frames: int = 1) -> tuple[np.ndarray, NoisyRaw]:
    """A clean packed image and its noisy input; with ``frames`` > 1, a static burst of independent noise."""
    clean_mosaic = smooth_clean_mosaic(96, 128, seed=7)
    noisy = [np.clip(normalize(pack(add_noise(clean_mosaic, PROFILE.a, PROFILE.b, np.random.default_rng(3 + k),
                                              1024, 16383)), 1024, 16383), 0, 1) for k in range(frames)]
    clean = normalize(pack(clean_mosaic), 1024, 16383)
    return clean, NoisyRaw(np.stack(noisy), "BGGR", lambda: PROFILE, "synthetic")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("name", list_methods())
def test_method_contract(name):
    cls = get_method_class(name)
    reason = cls.unavailable_reason()
    if reason:
        pytest.skip(f"{name} cannot run here: {reason}")
    assert cls.describe(), f"{name} needs a docstring whose first line says what it does"
    for spec in cls.params():
        assert spec.doc, f"{name}.{spec.name} has no description"
    clean, raw = _noisy_input(frames=4 if cls.kind == "burst" else 1)
    before = raw.frames.copy()
    first = create_method(name).denoise(raw)
    second = create_method(name).denoise(raw)
    assert isinstance(first, np.ndarray) and first.shape == raw.packed.shape
    assert np.issubdtype(first.dtype, np.floating)
    assert np.isfinite(first).all() and first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(first, second), f"{name} is not deterministic"
    assert np.array_equal(raw.frames, before)
    if cls.kind != "reference":
        assert _psnr(first, clean) > _psnr(raw.packed, clean) + 0.5, f"{name} does not improve PSNR"


def test_input_frames_are_read_only():
    _, raw = _noisy_input()
    with pytest.raises(ValueError):
        raw.packed[0, 0, 0] = 0.5
