"""The organisers' loop, the yardstick of ``python -m bench.benchmarks.harness``: what the ZTE 2022 demo code
did for each pair, written the simplest way, and nothing else (standalone: numpy, rawpy, scikit-image).

For each ``noisy/{i}_noise.dng`` of a competition-layout folder, with its ``ground truth/{i}_gt.dng``:

1. read both with rawpy (``raw_image_visible``);
2. the "noisy" method: normalise ``(raw - 1024) / (16383 - 1024)`` and clip to [0, 1] (float32), then write
   it back to uint16 the organisers' way, ``clip(x, 0, 1) * (16383 - 1024) + 1024`` truncated;
3. score with scikit-image, each call as the 2022 code made it: ``peak_signal_noise_ratio(gt, out,
   data_range=16383)``, ``structural_similarity(gt, out, data_range=16383)`` (2-D) and the same with
   ``channel_axis=-1`` (the 2022 ``multichannel=True``: column SSIM);
4. write the result as ``OUT/{i}.dng``: the noisy file's bytes with its pixel payload (the file's last
   ``H * W * 2`` bytes, where the organisers' ``write_back_dng`` expected it) replaced.

Usage: ``python bench/benchmarks/organisers_loop.py DATA OUT``; prints one JSON object
``{image id: [psnr, ssim, ssim_col]}`` on stdout.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import rawpy
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

BLACK, WHITE = 1024, 16383


def read_mosaic(path: Path) -> np.ndarray:
    """The ``(H, W)`` uint16 visible mosaic of a DNG, as rawpy decodes it."""
    with rawpy.imread(str(path)) as raw:
        return raw.raw_image_visible.copy()


def write_back_dng(source: Path, target: Path, mosaic: np.ndarray) -> None:
    """``source``'s bytes with the trailing pixel payload replaced by ``mosaic`` (``(H, W)`` uint16)."""
    data = source.read_bytes()
    payload = mosaic.astype("<u2").tobytes()
    target.write_bytes(data[:len(data) - len(payload)] + payload)


def main(data: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    scores = {}
    noisy_paths = sorted((data / "noisy").glob("*_noise.dng"), key=lambda p: int(p.name.split("_")[0]))
    for noisy_path in noisy_paths:
        image_id = re.match(r"(\d+)_noise", noisy_path.name).group(1)
        noisy = read_mosaic(noisy_path)
        gt = read_mosaic(data / "ground truth" / f"{image_id}_gt.dng")
        x = np.clip((noisy.astype(np.float32) - np.float32(BLACK)) / np.float32(WHITE - BLACK), 0.0, 1.0)
        result = (np.clip(x, 0.0, 1.0) * np.float32(WHITE - BLACK) + np.float32(BLACK)).astype(np.uint16)
        psnr = peak_signal_noise_ratio(gt, result, data_range=WHITE)
        ssim = structural_similarity(gt, result, data_range=WHITE)
        ssim_col = structural_similarity(gt, result, data_range=WHITE, channel_axis=-1)
        write_back_dng(noisy_path, out / f"{image_id}.dng", result)
        scores[image_id] = [float(psnr), float(ssim), float(ssim_col)]
    print(json.dumps(scores))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
