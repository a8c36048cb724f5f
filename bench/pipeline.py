"""One noisy DNG in, one denoised DNG out, the competition's way: the path shared by ``bench export`` and
the scripts it writes.

``bench export`` copies these functions (and everything they use) into the exported ``alg.py`` /
``network.py``, so the submission runs exactly the code the harness ran: the same reading, normalisation,
noise estimation, write-back and byte splice. They therefore import only third-party packages and other
``bench`` code that can be copied the same way (see ``bench.codegen``).

A *denoiser* here is a function ``denoise(packed, profile, cfa)``: ``packed`` the ``(h, w, 4)`` float32
normalised noisy image in [0, 1], ``profile`` its ``NoiseProfile``, ``cfa`` the colour of each plane
(e.g. "BGGR"); it returns the denoised ``(h, w, 4)`` float image in [0, 1].
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bench.datasets import NOISY_FILE_NAME, TEST_FILE_NAME
from bench.core.errors import BenchError
from bench.core.levels import LevelPolicy, Levels
from bench.core.noise import estimate_noise
from bench.core.rawio import read_dng, unpack, write_dng_splice



class MethodOutputError(Exception):
    """A method returned something that is not a valid denoised image."""


def check_output(out, expected_shape: tuple[int, ...]) -> np.ndarray:
    """Validate a method's return value: array of ``expected_shape``, floating, finite, within [0, 1].
    Returns it as float32."""
    if not isinstance(out, np.ndarray):
        raise MethodOutputError(f"returned {type(out).__name__}, expected a numpy array")
    if out.shape != expected_shape:
        raise MethodOutputError(f"returned shape {out.shape}, expected {expected_shape}")
    if not np.issubdtype(out.dtype, np.floating):
        raise MethodOutputError(f"returned dtype {out.dtype}, expected floating point")
    if not np.isfinite(out).all():
        raise MethodOutputError(f"returned {int((~np.isfinite(out)).sum())} NaN or infinite values")
    low, high = float(out.min()), float(out.max())
    if low < 0.0 or high > 1.0:
        raise MethodOutputError(f"returned values outside [0, 1] (min {low:.6g}, max {high:.6g})")
    return out.astype(np.float32, copy=False)


def packed_to_mosaic(out, expected_shape: tuple[int, ...], levels: Levels) -> np.ndarray:
    """A method's ``(h, w, 4)`` output -> the ``(2h, 2w)`` uint16 mosaic written back: checked, clipped to
    [0, 1], scaled to each plane's [black, white] of ``levels`` and truncated (``Levels.denormalize``)."""
    return unpack(levels.denormalize(check_output(out, expected_shape)))


def find_noisy_inputs(folder: Path) -> list[tuple[str, Path]]:
    """The noisy images of ``folder`` as ``(id, path)`` in numeric order of the id.

    Accepts ``noisy{i}.dng`` (the test layout) or ``{i}_noise.dng`` files in ``folder`` itself or, when it
    has one, in its ``noisy/`` subfolder (the training layout). BenchError when there are none, or when two
    files claim the same id.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BenchError(f"{folder}: input folder not found")
    if (folder / "noisy").is_dir():
        folder = folder / "noisy"
    found: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        for pattern in (TEST_FILE_NAME, NOISY_FILE_NAME):
            match = pattern.match(path.name)
            if match:
                index = int(match.group(1))
                if index in found:
                    raise BenchError(f"{path}: image {index} is also {found[index].name}")
                found[index] = path
    if not found:
        raise BenchError(f"{folder}: no noisy images (expected noisy{{i}}.dng or {{i}}_noise.dng files)")
    return [(str(index), found[index]) for index in sorted(found)]


def output_name(image_id: str) -> str:
    """The submission's file name for image ``image_id``: ``denoise{i}.dng``."""
    return f"denoise{image_id}.dng"


def denoise_file(noisy_path: Path, out_path: Path, denoise, levels: LevelPolicy) -> float:
    """Read ``noisy_path`` with the levels ``levels`` gives it (the competition's, or its own DNG tags),
    estimate its noise profile, denoise it with ``denoise`` (module docstring) and write the result into a
    byte copy of the noisy file at ``out_path`` (values in its [black, white], its tags kept).

    Returns the seconds the whole file took. Raises BenchError naming the file for unreadable input, and
    MethodOutputError when ``denoise`` returns something invalid.
    """
    started = time.perf_counter()
    raw = read_dng(noisy_path, levels)
    packed = raw.normalized_packed()
    profile = estimate_noise(packed, step=raw.levels.dn_step)
    out = denoise(packed, profile, raw.cfa)
    write_dng_splice(noisy_path, packed_to_mosaic(out, packed.shape, raw.levels), out_path)
    return time.perf_counter() - started


def script_main(argv: list[str], denoise, levels: LevelPolicy, description: str) -> int:
    """Command line of an exported script: ``INPUT_DIR OUTPUT_DIR``; writes ``OUTPUT_DIR/denoise{i}.dng``
    for every noisy image of ``INPUT_DIR`` (see ``find_noisy_inputs``). Errors print one line and give
    exit status 2."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("input_dir", type=Path, help="folder of noisy{i}.dng (or {i}_noise.dng) files")
    parser.add_argument("output_dir", type=Path, help="where denoise{i}.dng are written")
    args = parser.parse_args(argv)
    try:
        inputs = find_noisy_inputs(args.input_dir)
        for position, (image_id, path) in enumerate(inputs, start=1):
            seconds = denoise_file(path, args.output_dir / output_name(image_id), denoise, levels)
            print(f"[{position}/{len(inputs)}] {path.name} -> {output_name(image_id)}  {seconds:.1f} s", flush=True)
    except (BenchError, MethodOutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
