"""``bench speed``: time, megapixels per second and peak memory of methods on one full-size synthetic frame,
side by side with the library each wraps called directly.

The frame is a competition-size (3472 x 4624 by default) BGGR mosaic made by tiling the embedded set's
ground truths, with the organisers' noise at a mid-range profile. Each measurement runs in a fresh child
process, ``python -m bench.speed`` (``main``, which calls ``measure``), so one's memory does not count
against the next and the peak resident memory of the process and its children is that measurement's alone.
A method is timed by ``bench.evaluation.timed_denoise``, the call ``bench run`` times; the noise profile it
is given is the true one, so the estimator's time is not included (``bench noise`` times that).

For a method that wraps a library (it names the call in ``wrapped_library``: bilateral and nlm, OpenCV;
bm3d, the bm3d package), the same run also times that library called directly on the same frame with the
method's settings, as the method's own ``library_call`` makes it: one call on the 4-plane image, no
variance stabilisation, no tiling, the library's own threading. The ratio of the two, measured minutes
apart on the same machine, says what the wrapper costs or gains. Learned methods are timed on the CPU and,
when torch sees one, on CUDA (fp32 and fp16).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from bench.core.errors import first_line
from bench.core.noise_model import NoiseProfile, add_noise
from bench.core.processes import THREAD_VARIABLES, available_cores, limit_threads
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, pack_normalized
from methods.base import Method, NoisyRaw
from methods.registry import create_method, get_method_class


COMPETITION_SIZE = (3472, 4624)
SPEED_PROFILE = NoiseProfile(1e-3, 3e-5)


def full_size_clean(height: int, width: int) -> np.ndarray:
    """A clean ``(height, width)`` uint16 BGGR mosaic in [1024, 16383], tiled from the embedded ground truths."""
    from bench.datasets import load_item
    from bench.embedded import embedded_dataset

    dataset = embedded_dataset(log=lambda message: print(message, file=sys.stderr))
    pieces = [load_item(dataset, item).gt.mosaic for item in dataset.items]
    mosaic = np.zeros((height, width), dtype=np.uint16)
    top, k = 0, 0
    while top < height:
        left, row_height = 0, 0
        while left < width:
            piece = pieces[k % len(pieces)]
            k += 1
            h, w = min(piece.shape[0], height - top), min(piece.shape[1], width - left)
            mosaic[top:top + h, left:left + w] = piece[:h, :w]
            left += w
            row_height = max(row_height, h)
        top += row_height
    return mosaic


def add_speed_noise(clean: np.ndarray, seed: int) -> np.ndarray:
    """``clean`` (``(H, W)`` uint16, competition levels) with the organisers' noise at ``SPEED_PROFILE``."""
    return add_noise(clean, SPEED_PROFILE.a, SPEED_PROFILE.b, np.random.default_rng(seed),
                     COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)


def full_size_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A ``(height, width)`` uint16 noisy BGGR mosaic tiled from the embedded ground truths."""
    return add_speed_noise(full_size_clean(height, width), seed)


#: Calls faster than this are timed three times and the fastest is kept (one call of a few seconds is at
#: the mercy of whatever else the machine does).
REPEAT_BELOW_SECONDS = 10.0


def fastest_call(call: Callable[[], tuple[np.ndarray, float]]) -> tuple[np.ndarray, float]:
    """Run ``call`` (-> output, seconds) once, or three times when it takes under ``REPEAT_BELOW_SECONDS``;
    returns the last output and the fewest seconds."""
    times: list[float] = []
    while not times or (len(times) < 3 and min(times) < REPEAT_BELOW_SECONDS):
        out, seconds = call()
        times.append(seconds)
    return out, min(times)


def timed_library_call(method: Method, packed: np.ndarray) -> tuple[np.ndarray, float]:
    """The library ``method`` wraps, called directly once (``Method.library_call``) on the ``(h, w, 4)``
    packed frame with the noise std of the speed profile at mid-grey, and the seconds it took."""
    sigma = float(SPEED_PROFILE.std(np.float32(0.5)))
    started = time.perf_counter()
    out = method.library_call(packed, sigma)
    return out, time.perf_counter() - started


def measure(frame_path: Path, method_name: str, params: dict, reference: bool = False) -> dict:
    """One measurement, in this process: ``method_name`` with ``params`` (or, with ``reference``, the library
    it wraps called directly) on the saved ``(H, W)`` uint16 frame, timed as ``fastest_call`` says; returns
    ``{"seconds": the fastest call, "peak_gb": peak resident memory of this process plus that of its
    largest child, "shape": the output's shape}``. Meant to run alone in a fresh process
    (``measure_in_child``), so that the peak is this measurement's."""
    from bench.evaluation import timed_denoise

    packed = pack_normalized(np.load(frame_path), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    method = create_method(method_name, params)
    if reference:
        out, seconds = fastest_call(lambda: timed_library_call(method, packed))
    else:
        raw = NoisyRaw(packed[None], "BGGR", lambda: SPEED_PROFILE, "speed")
        out, seconds = fastest_call(lambda: timed_denoise(method, raw))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": seconds, "peak_gb": (own + children) / 1024 ** 2, "shape": list(out.shape)}


def measure_in_child(method: str, params: dict, frame_path: Path, reference: bool = False,
                     threads: int | None = None) -> dict:
    """``measure`` in a fresh child process (``python -m bench.speed``, see ``main``); returns its report, or
    ``{"error": one line}`` when the measurement failed. threads: the child's share of the cores, given to it
    as a run's worker gets it (``bench.core.processes.limit_threads``); None: every core."""
    arguments = [str(frame_path), method, "--params", json.dumps(params)] + (["--reference"] if reference else [])
    return report_of_child("bench.speed", arguments, threads)


def report_of_child(module: str, arguments: list[str], threads: int | None) -> dict:
    """Run ``python -m module *arguments --result FILE`` with ``threads`` threads (``child_environment``) and
    return the JSON report the child wrote to FILE (``write_report``), or ``{"error": one line}``: the last
    line of its stderr, or its exit status."""
    with tempfile.TemporaryDirectory() as folder:
        result_path = Path(folder) / "result.json"
        command = [sys.executable, "-m", module, *arguments, "--result", str(result_path)]
        completed = subprocess.run(command, capture_output=True, text=True, env=child_environment(threads))
        if completed.returncode == 0 and result_path.is_file():
            return json.loads(result_path.read_text())
    lines = completed.stderr.strip().splitlines()
    return {"error": lines[-1] if lines else f"the measuring process exited with status {completed.returncode}"}


def write_report(result_path: Path, measurement: Callable[[], dict]) -> int:
    """The child side of ``report_of_child``: run ``measurement`` and write its report as JSON to
    ``result_path``; returns the exit status, 0, or 1 after printing the error's first line on stderr (its
    last line, which the parent reports)."""
    try:
        report = measurement()
    except Exception as exc:
        print(first_line(exc), file=sys.stderr)
        return 1
    result_path.write_text(json.dumps(report))
    return 0


def child_environment(threads: int | None) -> dict[str, str]:
    """This process's environment for a child with ``threads`` threads (the ``THREAD_VARIABLES`` a run's
    worker gets, which the child applies with ``limit_threads``), or unchanged for None."""
    if threads is None:
        return dict(os.environ)
    return {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}


def speed_table(methods: list[str], params: dict[str, dict], height: int, width: int,
                log=print) -> list[dict]:
    """Measure every method (and, where it has one, its library called directly, in the row after it);
    returns one row per measurement: what ran, where, seconds, MP/s, peak memory, and for methods with a
    reference the ratio of their MP/s to the reference's."""
    frame = full_size_frame(height, width)
    megapixels = height * width / 1e6
    plan: list[tuple[str, str, dict, bool]] = []  # (row label, method, params, reference?)
    for name in methods:
        own = params.get(name, {})
        if get_method_class(name).kind == "learned":
            plan.append((name, name, {**own, "device": "cpu"}, False))
            if _cuda_available():
                plan.append((f"{name} (cuda)", name, {**own, "device": "cuda"}, False))
                plan.append((f"{name} (cuda, fp16)", name, {**own, "device": "cuda", "half": True}, False))
        else:
            plan.append((name, name, own, False))
        library = get_method_class(name).wrapped_library
        if library is not None:
            plan.append((f"{library} (direct)", name, own, True))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        frame_path = Path(folder) / "frame.npy"
        np.save(frame_path, frame)
        for label, name, settings, reference in plan:
            report = measure_in_child(name, settings, frame_path, reference=reference)
            row = {"method": label, "height": height, "width": width, "cores": available_cores(), **report}
            if "error" in report:
                log(f"{label}: failed: {report['error']}")
            else:
                row["mp_per_second"] = megapixels / report["seconds"] if report["seconds"] > 0 else float("inf")
                log(f"{label}: {report['seconds']:.1f} s, {row['mp_per_second']:.3f} MP/s, "
                    f"peak memory {report['peak_gb']:.2f} GB")
                if reference and rows and rows[-1].get("mp_per_second") and rows[-1]["method"] == name:
                    rows[-1]["vs_direct"] = rows[-1]["mp_per_second"] / row["mp_per_second"]
            rows.append(row)
    return rows


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def main(argv: list[str] | None = None) -> int:
    """The child side of ``measure_in_child``: one ``measure``, its report written as JSON to ``--result``.
    On failure, the error's first line goes to stderr (its last line) and the exit status is 1."""
    parser = argparse.ArgumentParser(prog="python -m bench.speed",
                                     description="one bench speed measurement, in this process")
    parser.add_argument("frame", type=Path, help="the (H, W) uint16 frame, saved with numpy.save")
    parser.add_argument("method")
    parser.add_argument("--params", default="{}", help="the method's parameters as a JSON object")
    parser.add_argument("--reference", action="store_true", help="time the library it wraps, called directly")
    parser.add_argument("--result", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    if os.environ.get("RAW_BENCH_CORES", "").isdigit():  # a share of the cores, as a run's worker has
        limit_threads(available_cores())
    return write_report(args.result, lambda: measure(args.frame, args.method, json.loads(args.params),
                                                     reference=args.reference))


if __name__ == "__main__":
    sys.exit(main())
