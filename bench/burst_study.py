"""``python -m bench.burst_study``: where burst methods lose detail when the camera moves, stage by stage.

Each setting makes 8-frame bursts of the same scenes and scores the burst methods (PSNR, dB, mean over the
images, competition scoring, true noise profile so that only motion differs):

* ``static``: frames 1..N-1 are the ground truth itself with new noise (the ideal: +10*log10(N) for a mean);
* ``cells``: whole-CFA-cell motion (each frame shifted by -2, 0 or 2 sensor pixels in y and x, no
  rotation): synthesis needs no resampling at all; merged with the estimated alignment (``estimated``) or
  with the true motion (``true``: each frame shifted back exactly, again without resampling);
* ``subpixel``: the default camera motion (``bench.burst``: up to 2 px, 0.1 degree), synthesised with cubic
  resampling (``cubic``, the former synthesis) or band-limited Fourier motion (``fourier``, the current one),
  merged with the estimated alignment or with the true motion field (``true``: each frame warped by the
  methods' own warp, at the true displacement).

The differences between rows split the loss: synthesis (cubic against fourier), alignment error (estimated
against true), the warp's own resampling (cells true against static). Scenes: the embedded set, or detailed
scenes from a folder of clean photographs (``--clean-dir``), unprocessed without the embedded set's lens
blur (``bench.detailed_scenes``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.burst import BurstSpec, FrameMotion, frame_motion, move_image, move_image_cubic
from bench.core.demosaic import mosaic_rgb
from bench.core.levels import Levels
from bench.core.metrics import psnr
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, pack_normalized
from bench.pipeline import packed_to_mosaic
from methods.base import NoisyRaw

LEVELS = Levels.of(COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
SETTINGS = ("static", "cells estimated", "cells true", "subpixel cubic estimated", "subpixel fourier estimated",
            "subpixel fourier true")


@dataclass(frozen=True)
class Scene:
    """A clean scene: ``linear`` ``(H, W, 3)`` float64 in [0, 1], its BGGR ground truth ``gt`` ``(H, W)``
    uint16 at the competition's levels, the true noise ``profile`` and an ``image_id``."""

    image_id: str
    linear: np.ndarray
    gt: np.ndarray
    profile: NoiseProfile


def embedded_scenes() -> list[Scene]:
    """The embedded set's 15 scenes with their true profiles."""
    from bench.datasets import load_item
    from bench.embedded import embedded_dataset

    dataset = embedded_dataset(log=lambda message: print(message, file=sys.stderr))
    return [Scene(item.image_id, dataset.clean_linear(item.image_id), load_item(dataset, item).gt.mosaic,
                  dataset.true_noise[item.image_id]) for item in dataset.items]


def cell_motion(spec: BurstSpec, image_id: str, frame: int) -> tuple[int, int]:
    """A seeded whole-cell shift ``(dy, dx)`` in sensor pixels, each -2, 0 or 2 (frame 0: none)."""
    if frame == 0:
        return 0, 0
    rng = np.random.default_rng([spec.seed, frame, 99, sum(map(ord, image_id))])
    return int(2 * rng.integers(-1, 2)), int(2 * rng.integers(-1, 2))


def shift_exact(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``out[y, x] = image[y - dy, x - dx]`` for integer shifts, edges reflected (no resampling)."""
    margin = max(abs(dy), abs(dx))
    if margin == 0:
        return image.copy()
    padding = [(margin, margin), (margin, margin)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, padding, mode="reflect")
    height, width = image.shape[:2]
    return np.ascontiguousarray(padded[margin - dy:margin - dy + height, margin - dx:margin - dx + width])


def true_field(motion: FrameMotion, packed_shape: tuple[int, int]) -> np.ndarray:
    """The ``(h, w, 2)`` packed-pixel displacement with ``frame[y + dy, x + dx] = reference[y, x]`` for the
    camera motion ``motion`` (OpenCV's rotation about the sensor image's centre, then the shift)."""
    import cv2

    height, width = packed_shape
    centre = ((2 * width - 1) / 2.0, (2 * height - 1) / 2.0)
    matrix = cv2.getRotationMatrix2D(centre, motion.rotation, 1.0)
    matrix[:, 2] += (motion.dx, motion.dy)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    sensor_x, sensor_y = 2 * xs + 0.5, 2 * ys + 0.5  # the centre of each 2x2 cell in sensor pixels
    moved_x = matrix[0, 0] * sensor_x + matrix[0, 1] * sensor_y + matrix[0, 2]
    moved_y = matrix[1, 0] * sensor_x + matrix[1, 1] * sensor_y + matrix[1, 2]
    return np.stack([(moved_y - sensor_y) / 2, (moved_x - sensor_x) / 2], axis=-1).astype(np.float32)


def burst_frames(scene: Scene, setting: str, spec: BurstSpec) -> tuple[np.ndarray, np.ndarray]:
    """The noisy ``(N, h, w, 4)`` packed burst of ``scene`` for ``setting`` and its true displacement
    field onto frame 0, ``(N, h, w, 2)`` packed pixels (what ``burst_fields`` estimates)."""
    profile = scene.profile
    mosaics, fields = [], []
    packed_shape = (scene.gt.shape[0] // 2, scene.gt.shape[1] // 2)
    for k in range(spec.frames):
        rng = np.random.default_rng([spec.seed, k, 5, sum(map(ord, scene.image_id))])
        if k == 0 or setting == "static":
            clean, field = scene.gt, np.zeros((*packed_shape, 2), dtype=np.float32)
        elif setting.startswith("cells"):
            dy, dx = cell_motion(spec, scene.image_id, k)
            clean = shift_exact(scene.gt, dy, dx)
            field = np.broadcast_to(np.array([dy / 2, dx / 2], dtype=np.float32), (*packed_shape, 2))
        else:
            move = move_image_cubic if "cubic" in setting else move_image
            motion = frame_motion(spec, scene.image_id, k)
            clean = LEVELS.denormalize(mosaic_rgb(move(scene.linear, motion), "BGGR"))
            field = true_field(motion, packed_shape)
        mosaics.append(add_noise(clean, profile.a, profile.b, rng, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL))
        fields.append(field)
    frames = np.stack([pack_normalized(m, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL) for m in mosaics])
    return frames, np.stack(fields)


def scored(out: np.ndarray, scene: Scene) -> float:
    """PSNR (dB) of an ``(h, w, 4)`` output against the scene's ground truth, written back as the harness does."""
    mosaic = packed_to_mosaic(out, (scene.gt.shape[0] // 2, scene.gt.shape[1] // 2, 4), LEVELS)
    return psnr(scene.gt, mosaic, data_range=LEVELS.white)


#: The columns: (method, resampling) pairs.
VARIANTS = (("burst_mean", "warp"), ("burst_mean", "integer"), ("burst_merge", "warp"), ("burst_merge", "integer"),
            ("burst_merge", "phase"))


def study(scenes: list[Scene], spec: BurstSpec, settings: tuple[str, ...], log=print) -> dict[str, dict[str, float]]:
    """Mean PSNR per setting and variant (``noisy`` and ``bm3d`` are frame 0 alone, the same in every row)."""
    from methods.toolkit.align import burst_fields
    from methods.registry import create_method

    bm3d = create_method("bm3d", {})
    variants = {f"{name} {resample}": create_method(name, {"resample": resample}) for name, resample in VARIANTS}
    table: dict[str, dict[str, list[float]]] = {}
    for scene in scenes:
        started = time.perf_counter()
        for setting in settings:
            frames, truth = burst_frames(scene, setting, spec)
            raw = NoisyRaw(frames, "BGGR", lambda profile=scene.profile: profile, scene.image_id)
            fields = truth if setting.endswith("true") else burst_fields(frames)
            row = table.setdefault(setting, {})
            for label, method in variants.items():
                combine = method.mean_with_fields if label.startswith("burst_mean") else method.merge_with_fields
                row.setdefault(label, []).append(scored(combine(raw, fields), scene))
            if setting == settings[0]:
                single = NoisyRaw(frames[:1], "BGGR", lambda profile=scene.profile: profile, scene.image_id)
                row.setdefault("noisy", []).append(scored(frames[0], scene))
                row.setdefault("bm3d", []).append(scored(bm3d.denoise(single), scene))
        log(f"scene {scene.image_id}: {time.perf_counter() - started:.0f} s")
    return {setting: {name: float(np.mean(values)) for name, values in row.items()} for setting, row in table.items()}


def markdown(table: dict[str, dict[str, float]], spec: BurstSpec, what: str) -> str:
    first = next(iter(table.values()))
    labels = [f"{name} {resample}" for name, resample in VARIANTS]
    lines = [f"{what}, {spec.frames} frames, true noise profile; mean PSNR in dB (noisy frame 0: "
             f"{first['noisy']:.2f}, single-frame bm3d: {first['bm3d']:.2f})", "",
             "| setting | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for setting, row in table.items():
        lines.append(f"| {setting} | " + " | ".join(f"{row[label]:.2f}" for label in labels) + " |")
    return "\n".join(lines)


#: Frames of each scene moved and warped back by ``warp_fidelity``; interior margin left out (packed pixels).
FIDELITY_FRAMES = (1, 2, 3)
FIDELITY_MARGIN = 8


def warp_fidelity(scenes: list[Scene], spec: BurstSpec) -> list[dict[str, float]]:
    """How exactly the burst methods' warp brings a *noise-free* moved frame back onto the reference, per scene.

    Frames ``FIDELITY_FRAMES`` of each scene are moved by their camera motion (band-limited, as synthetic
    bursts are), mosaicked, and warped back with the true displacement by ``warp_mosaic`` (demosaic, cubic
    resampling, mosaic again: what the burst methods do) and, for comparison, by the same cubic resampling of
    the moved scene's full RGB (no demosaic). Each is scored against the reference's mosaic (PSNR, range 1,
    interior only), next to the PSNR that the scene's own noise gives frame 0: where a warp's PSNR is below
    that, its error exceeds the noise and the frame cannot be averaged in."""
    import cv2

    from bench.core.rawio import pack
    from methods.toolkit.align import warp, warp_mosaic

    rows = []
    inside = (slice(FIDELITY_MARGIN, -FIDELITY_MARGIN), slice(FIDELITY_MARGIN, -FIDELITY_MARGIN))
    for scene in scenes:
        reference = pack(mosaic_rgb(scene.linear, "BGGR"))
        height, width = reference.shape[:2]
        errors = {"demosaic warp": [], "RGB warp": []}
        for k in FIDELITY_FRAMES:
            motion = frame_motion(spec, scene.image_id, k)
            moved_rgb = move_image(scene.linear, motion).astype(np.float32)
            field = true_field(motion, (height, width))
            back = warp_mosaic(pack(mosaic_rgb(moved_rgb, "BGGR")).astype(np.float32), field, "BGGR")
            full_field = 2.0 * cv2.resize(field, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
            back_rgb = pack(mosaic_rgb(warp(moved_rgb, full_field), "BGGR"))
            errors["demosaic warp"].append(np.mean((back[inside] - reference[inside]) ** 2))
            errors["RGB warp"].append(np.mean((back_rgb[inside] - reference[inside]) ** 2))
        noise = float(np.mean(scene.profile.a * np.clip(reference, 0.0, 1.0) + scene.profile.b))
        rows.append({"scene": scene.image_id, "noise": -10 * np.log10(noise),
                     **{name: -10 * np.log10(float(np.mean(values))) for name, values in errors.items()}})
    return rows


def fidelity_markdown(rows: list[dict[str, float]], what: str) -> str:
    lines = [f"{what}: noise-free frames {', '.join(map(str, FIDELITY_FRAMES))} moved and warped back with the true "
             "motion; PSNR (dB, range 1) against the reference, beside the PSNR of the scene's own noise", "",
             "| scene | noise | demosaic warp (the methods') | cubic warp of the true RGB |", "|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['scene']} | {row['noise']:.2f} | {row['demosaic warp']:.2f} | {row['RGB warp']:.2f} |")
    mean = {key: float(np.mean([row[key] for row in rows])) for key in ("noise", "demosaic warp", "RGB warp")}
    lines.append(f"| mean | {mean['noise']:.2f} | {mean['demosaic warp']:.2f} | {mean['RGB warp']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst_study", description=__doc__.split("\n")[0])
    parser.add_argument("--clean-dir", type=Path, action="append", default=[],
                        help="folder of clean photographs for detailed scenes (default: the embedded set)")
    parser.add_argument("--count", type=int, default=10, help="detailed scenes to build (default 10)")
    parser.add_argument("--pick", default="", help="comma-separated scene ids to use (default: all)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of the rows")
    parser.add_argument("--warp-fidelity", action="store_true",
                        help="instead of the study: how exactly the warp brings noise-free moved frames back")
    args = parser.parse_args(argv)
    spec = BurstSpec(args.frames)
    if args.clean_dir:
        from bench.detailed_scenes import detailed_scenes

        scenes = [Scene(s.image_id, s.linear, s.gt, s.profile) for s in detailed_scenes(args.clean_dir, args.count)]
        what = f"{len(scenes)} detailed scenes from {', '.join(map(str, args.clean_dir))}"
    else:
        scenes, what = embedded_scenes(), "the embedded set"
    if args.pick:
        wanted = [p.strip() for p in args.pick.split(",")]
        scenes = [scene for scene in scenes if scene.image_id in wanted]
    if args.warp_fidelity:
        print(fidelity_markdown(warp_fidelity(scenes, spec), what))
        return 0
    settings = tuple(s.strip() for s in args.settings.split(","))
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting {unknown[0]!r}; the settings are: {', '.join(SETTINGS)}")
    table = study(scenes, spec, settings, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(markdown(table, spec, what))
    return 0


if __name__ == "__main__":
    sys.exit(main())
