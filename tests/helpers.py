"""Small synthetic DNG data for tests (written to temporary folders only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.datasets import GT_DIR, NOISY_DIR, write_noise_profiles
from bench.core.levels import Levels, normalize
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.rawio import write_dng_standalone


def smooth_clean_mosaic(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, textured clean ``(height, width)`` uint16 mosaic in [1024, 16383] (black level 1024)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    phase = rng.uniform(0, 2 * np.pi, 3)
    level = 0.35 + 0.2 * np.sin(6 * xx + phase[0]) * np.cos(4 * yy + phase[1]) + 0.1 * np.sin(15 * (xx + yy) + phase[2])
    return (np.clip(level, 0, 1) * 15359 + 1024).astype(np.uint16)


def write_pair_folder(root: Path, count: int = 3, height: int = 64, width: int = 96,
                      a: float = 2e-3, b: float = 1e-4, cfa: str = "BGGR", black_level=1024,
                      white_level: int = 16383) -> Path:
    """Write ``count`` competition-layout pairs (and noise_profile.csv) under ``root``; return ``root``.
    ``cfa``, ``black_level`` (one, or four per packed plane) and ``white_level`` are the files' tags; the
    pixels are made in those levels (the same normalised images as with the competition's)."""
    (root / GT_DIR).mkdir(parents=True)
    (root / NOISY_DIR).mkdir()
    profiles = {}
    levels = Levels.of(black_level, white_level)
    for index in range(count):
        clean = smooth_clean_mosaic(height, width, seed=index)
        if levels != Levels.of(1024, 16383):
            clean = levels.denormalize(normalize(clean, 1024, 16383))
        noisy = add_noise(clean, a, b, np.random.default_rng(100 + index), levels.black_level, levels.white)
        write_dng_standalone(clean, root / GT_DIR / f"{index}_gt.dng", cfa, levels.black_level, levels.white)
        write_dng_standalone(noisy, root / NOISY_DIR / f"{index}_noise.dng", cfa, levels.black_level, levels.white)
        profiles[str(index)] = NoiseProfile(a, b)
    write_noise_profiles(root / "noise_profile.csv", profiles)
    return root


def register_for_test(monkeypatch, name: str, cls) -> str:
    """Register method class ``cls`` as ``name`` for one test (monkeypatch undoes it); returns ``name``."""
    from methods import registry

    monkeypatch.setitem(registry._REGISTRY, name, cls)
    monkeypatch.setattr(cls, "name", name)
    return name


def box_blur3(packed: np.ndarray) -> np.ndarray:
    """3x3 box filter of each plane of an ``(h, w, 4)`` image, edges replicated; same shape and range."""
    x = np.pad(packed, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w, _ = packed.shape
    return sum(x[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
