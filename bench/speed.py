"""``bench speed``: time, megapixels per second and peak memory of methods on one full-size synthetic frame,
side by side with the library each wraps called directly.

The frame is a competition-size (3472 x 4624 by default) BGGR mosaic made by tiling the embedded set's
ground truths, with the organisers' noise at a mid-range profile. Each measurement runs in a fresh child
process (so one's memory does not count against the next, and the peak resident memory of the process and
its children is that measurement's alone); the noise profile given to a method is the true one, so the
estimator's time is not included (``bench noise`` times that).

For a method that wraps a library (bilateral and nlm: OpenCV; bm3d: the bm3d package), the same run also
times that library called directly on the same frame with the method's settings: one call on the 4-plane
image, no variance stabilisation, no tiling, the library's own threading. The ratio of the two, measured
minutes apart on the same machine, says what the wrapper costs or gains. Learned methods are timed on the
CPU and, when torch sees one, on CUDA (fp32 and fp16).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.core.noise_model import NoiseProfile, add_noise


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


#: Calls faster than this are timed three times and the fastest is kept (one call of a few seconds is at
#: the mercy of whatever else the machine does).
REPEAT_BELOW_SECONDS = 10.0
#: The library call each wrapping method makes, run directly by ``reference_denoise``.
REFERENCES = {"bilateral": "cv2.bilateralFilter", "nlm": "cv2.fastNlMeansDenoising", "bm3d": "bm3d.bm3d"}


def reference_denoise(name: str, params: dict, packed: np.ndarray) -> np.ndarray:
    """The library behind method ``name`` called directly, once, on the ``(h, w, 4)`` float32 packed frame
    with the method's settings (``params`` over its defaults) and the noise std of the speed profile at
    mid-grey; returns the ``(h, w, 4)`` result. What the method adds (stabilisation, tiling, processes) is
    left out on purpose: this is the baseline its speed is compared with."""
    from methods.registry import create_method

    settings = create_method(name, params).param_values()
    sigma = float(SPEED_PROFILE.std(np.float32(0.5)))
    if name == "bilateral":
        import cv2

        return np.stack([cv2.bilateralFilter(np.ascontiguousarray(packed[..., k]), settings["diameter"],
                                             settings["sigma_color"] * sigma, settings["sigma_space"])
                         for k in range(4)], axis=-1)
    if name == "nlm":
        import cv2

        levels = np.round(np.clip(packed, 0, 1) * 65535).astype(np.uint16)
        return cv2.fastNlMeansDenoising(levels, h=[settings["h"] * sigma * 65535],
                                        templateWindowSize=settings["template_window"] | 1,
                                        searchWindowSize=settings["search_window"] | 1, normType=cv2.NORM_L1)
    if name == "bm3d":
        import bm3d

        profile = bm3d.BM3DProfileLC() if settings["speed"] == "fast" else bm3d.BM3DProfile()
        return bm3d.bm3d(packed.astype(np.float64), sigma_psd=[settings["sigma_scale"] * sigma] * 4,
                         profile=profile, stage_arg=bm3d.BM3DStages.ALL_STAGES)
    raise ValueError(f"no reference call for method {name!r}")


def measure_in_child(method: str, params: dict, frame_path: Path, reference: bool = False) -> dict:
    """Run ``method`` (or, with ``reference``, its library called directly) on the saved frame in a child
    process, once, or three times when it takes under ``REPEAT_BELOW_SECONDS``; returns its JSON report:
    seconds (the fastest call), peak_gb."""
    code = (
        "import json, resource, sys, time, numpy as np\n"
        "from bench.core.rawio import normalize, pack\n"
        "from bench.speed import SPEED_PROFILE\n"
        "from methods.base import NoisyRaw\n"
        "from methods.registry import create_method\n"
        "if __name__ == '__main__':\n"
        "    mosaic = np.load(sys.argv[1])\n"
        "    packed = np.clip(normalize(pack(mosaic), 1024, 16383), 0, 1)\n"
        "    method = create_method(sys.argv[2], json.loads(sys.argv[3]))\n"
        "    raw = NoisyRaw(packed[None], 'BGGR', lambda: SPEED_PROFILE, 'speed')\n"
        "    from bench.speed import reference_denoise, REPEAT_BELOW_SECONDS\n"
        "    from bench.evaluation import timed_denoise\n"
        "    times = []\n"
        "    while not times or (len(times) < 3 and min(times) < REPEAT_BELOW_SECONDS):\n"
        "        if sys.argv[4] == 'reference':\n"
        "            started = time.perf_counter()\n"
        "            out = reference_denoise(sys.argv[2], json.loads(sys.argv[3]), packed)\n"
        "            seconds = time.perf_counter() - started\n"
        "        else:\n"
        "            out, seconds = timed_denoise(method, raw)\n"
        "        times.append(seconds)\n"
        "    seconds = min(times)\n"
        "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "    print(json.dumps({'seconds': seconds, 'peak_gb': (own + children) / 1024 ** 2,\n"
        "                      'shape': list(out.shape)}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(frame_path), method, json.dumps(params),
                             "reference" if reference else "method"], capture_output=True, text=True)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def speed_table(methods: list[str], params: dict[str, dict], height: int, width: int,
                log=print) -> list[dict]:
    """Measure every method (and, where it has one, its library called directly, in the row after it);
    returns one row per measurement: what ran, where, seconds, MP/s, peak memory, and for methods with a
    reference the ratio of their MP/s to the reference's."""
    from methods.registry import get_method_class

    from bench.executors import available_cores

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
        if name in REFERENCES:
            plan.append((f"{REFERENCES[name]} (direct)", name, own, True))
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
