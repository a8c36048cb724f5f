"""Full-size noisy / ground-truth DNG pairs in the competition layout, for the benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.core.rawio import write_dng_standalone
from bench.datasets import GT_DIR, NOISY_DIR
from bench.speed import COMPETITION_SIZE, add_speed_noise, full_size_clean


def write_full_size_pairs(root: Path, count: int, size: tuple[int, int] = COMPETITION_SIZE) -> Path:
    """Write ``count`` pairs ``ground truth/{i}_gt.dng`` + ``noisy/{i}_noise.dng`` (``size`` = (H, W) sensor
    pixels, BGGR, black 1024, white 16383, uint16) under ``root``; each pair's scene is the tiled embedded
    ground truth shifted by a whole number of CFA cells, with its own noise. Returns ``root``."""
    (root / GT_DIR).mkdir(parents=True, exist_ok=True)
    (root / NOISY_DIR).mkdir(exist_ok=True)
    clean = full_size_clean(*size)
    for index in range(count):
        gt = np.roll(clean, (64 * index, 96 * index), axis=(0, 1))  # even shifts keep the BGGR phase
        write_dng_standalone(gt, root / GT_DIR / f"{index}_gt.dng")
        write_dng_standalone(add_speed_noise(gt, seed=index), root / NOISY_DIR / f"{index}_noise.dng")
    return root
