"""``bench speed``: time and peak memory of methods on one full-size synthetic frame.

The frame is a competition-size (3472 x 4624 by default) BGGR mosaic made by tiling the embedded set's
ground truths, with the organisers' noise at a mid-range profile. Each method runs in a fresh child
process (so one method's memory does not count against the next, and the peak resident memory of the
process and its children is that method's alone); the noise profile given to it is the true one, so the
estimator's time is not included (``bench noise`` times that).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.noise import NoiseProfile, add_noise

COMPETITION_SIZE = (3472, 4624)
SPEED_PROFILE = NoiseProfile(1e-3, 3e-5)


def full_size_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A ``(height, width)`` uint16 noisy BGGR mosaic tiled from the embedded ground truths."""
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
    return add_noise(mosaic, SPEED_PROFILE.a, SPEED_PROFILE.b, np.random.default_rng(seed), 1024, 16383)


def measure_in_child(method: str, params: dict, frame_path: Path) -> dict:
    """Run ``method`` once on the saved frame in a child process; returns its JSON report."""
    code = (
        "import json, resource, sys, time, numpy as np\n"
        "from bench.rawio import normalize, pack\n"
        "from bench.speed import SPEED_PROFILE\n"
        "from methods.base import NoisyRaw\n"
        "from methods.registry import create_method\n"
        "if __name__ == '__main__':\n"
        "    mosaic = np.load(sys.argv[1])\n"
        "    packed = np.clip(normalize(pack(mosaic), 1024, 16383), 0, 1)\n"
        "    method = create_method(sys.argv[2], json.loads(sys.argv[3]))\n"
        "    raw = NoisyRaw(packed[None], 'BGGR', lambda: SPEED_PROFILE, 'speed')\n"
        "    started = time.perf_counter()\n"
        "    out = method.denoise(raw)\n"
        "    seconds = time.perf_counter() - started\n"
        "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "    print(json.dumps({'seconds': seconds, 'peak_gb': (own + children) / 1024 ** 2,\n"
        "                      'shape': list(out.shape)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(frame_path), method, json.dumps(params)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed_table(methods: list[str], params: dict[str, dict], height: int, width: int,
                log=print) -> list[dict]:
    """Measure every method; returns one row per method."""
    import os

    frame = full_size_frame(height, width)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        frame_path = Path(folder) / "frame.npy"
        np.save(frame_path, frame)
        for name in methods:
            report = measure_in_child(name, params.get(name, {}), frame_path)
            row = {"method": name, "height": height, "width": width, "cores": os.cpu_count(), **report}
            rows.append(row)
            if "error" in report:
                log(f"{name}: failed: {report['error']}")
            else:
                log(f"{name}: {report['seconds']:.1f} s, peak memory {report['peak_gb']:.2f} GB")
    return rows
