"""Detailed burst scenes from clean photographs: the embedded set's recipe without its lens blur.

The embedded set blurs every linear image (sigma 1 px) to hide the photographs' grain, which also makes it
easy for bursts: there is little detail for motion to destroy. These scenes keep the detail. From a folder
of clean sRGB photographs, ``count`` are taken evenly spaced in name order; each is cropped at its centre to
at most ``CROP`` (even sides), unprocessed to linear camera RGB (``bench.embedded.unprocess``, seeded by the
scene's number), mosaicked to BGGR at the competition's levels, and given the five noise groups in turn.

``write_detailed_set`` writes them as a folder ``bench run --data`` reads, with the linear scenes in
``linear/{i}_linear.npy`` so that synthetic bursts move the scene itself (``bench.datasets``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.core.errors import BenchError
from bench.core.levels import denormalize
from bench.core.noise_model import NoiseProfile
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL
from bench.real_raw import NOISE_GROUPS

#: Largest crop (rows, columns) of each photograph.
CROP = (512, 768)
SEED = 19


@dataclass(frozen=True)
class DetailedScene:
    """``linear``: ``(H, W, 3)`` float64 in [0, 1]; ``gt``: its ``(H, W)`` uint16 BGGR mosaic at the
    competition's levels; ``profile``: the noise group's true (a, b); ``source``: the photograph."""

    image_id: str
    linear: np.ndarray
    gt: np.ndarray
    profile: NoiseProfile
    source: Path


def detailed_scenes(folders: list[Path], count: int) -> list[DetailedScene]:
    """``count`` scenes from the photographs under ``folders`` (module docstring); BenchError when there
    are fewer photographs than ``count``."""
    from bench.embedded import mosaic_bggr, unprocess
    from bench.training_data import list_images, read_rgb

    paths = list_images(folders)
    if len(paths) < count or count < 1:
        raise BenchError(f"{', '.join(map(str, folders))}: {len(paths)} photographs, {count} scenes asked for")
    chosen = [paths[round(k * (len(paths) - 1) / max(count - 1, 1))] for k in range(count)]
    scenes = []
    for index, path in enumerate(chosen):
        image = read_rgb(path)
        height, width = (min(CROP[0], image.shape[0]) // 2 * 2, min(CROP[1], image.shape[1]) // 2 * 2)
        top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
        crop = image[top:top + height, left:left + width].astype(np.float64) / 255.0
        linear, _ = unprocess(crop, np.random.default_rng([SEED, index]))
        gt = denormalize(mosaic_bggr(linear), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
        profile = NoiseProfile(*NOISE_GROUPS[index % len(NOISE_GROUPS)])
        scenes.append(DetailedScene(str(index), linear, gt, profile, path))
    return scenes


#: Where a pair folder keeps the linear scenes its ground truths were mosaicked from.
LINEAR_DIR = "linear"


def write_detailed_set(scenes: list[DetailedScene], out: Path, seed: int = SEED) -> None:
    """Write ``scenes`` as a pair folder (``ground truth/``, ``noisy/`` with the organisers' generator,
    ``noise_profile.csv``) plus ``linear/{i}_linear.npy`` (float32 ``(H, W, 3)``) and ``recipe.json``;
    BenchError when ``out`` already holds images."""
    import json

    from bench.core.noise_model import add_noise
    from bench.core.rawio import write_dng_standalone
    from bench.datasets import GT_DIR, NOISE_PROFILE_FILE, NOISY_DIR, write_noise_profiles

    out = Path(out)
    if (out / GT_DIR).exists() or (out / NOISY_DIR).exists():
        raise BenchError(f"{out}: already holds a pair folder; give an empty or new --out")
    for folder in (GT_DIR, NOISY_DIR, LINEAR_DIR):
        (out / folder).mkdir(parents=True)
    for scene in scenes:
        noisy = add_noise(scene.gt, scene.profile.a, scene.profile.b,
                          np.random.default_rng([seed, int(scene.image_id), 1]),
                          COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
        write_dng_standalone(scene.gt, out / GT_DIR / f"{scene.image_id}_gt.dng")
        write_dng_standalone(noisy, out / NOISY_DIR / f"{scene.image_id}_noise.dng")
        np.save(out / LINEAR_DIR / f"{scene.image_id}_linear.npy", scene.linear.astype(np.float32))
    write_noise_profiles(out / NOISE_PROFILE_FILE, {scene.image_id: scene.profile for scene in scenes})
    recipe = [{"image": s.image_id, "source": s.source.name, "shape": list(s.gt.shape), "a": s.profile.a,
               "b": s.profile.b} for s in scenes]
    (out / "recipe.json").write_text(json.dumps({"seed": seed, "crop": list(CROP), "images": recipe}, indent=1))


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench.detailed_scenes",
                                     description="write detailed burst scenes as a pair folder")
    parser.add_argument("--clean-dir", type=Path, action="append", required=True, help="folder of photographs")
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        write_detailed_set(detailed_scenes(args.clean_dir, args.count), args.out)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.count} detailed scenes to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
