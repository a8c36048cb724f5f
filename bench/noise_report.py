"""The competition's final-round task: estimate every image's noise profile and score the estimates.

``bench noise --data DIR [--csv FILE]`` is built on the two functions here.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import pandas as pd

from bench.datasets import Dataset
from bench.core.levels import black_text
from bench.core.noise import estimate_noise
from bench.core.noise_model import NoiseProfile
from bench.core.rawio import read_dng


def final_round_score(estimates: dict[str, NoiseProfile], truths: dict[str, NoiseProfile]) -> float:
    """The final-round score ``100 - 100 * mean(0.5*min(|â-a|/a, 1) + 0.5*min(|b̂-b|/b, 1))``.

    The mean runs over the images in ``estimates`` (keys are image ids); each needs a profile in
    ``truths``. Returns a float in [0, 100]; 100 means every estimate is exact.
    Raises ValueError when ``estimates`` is empty or an image has no true profile.
    """
    if not estimates:
        raise ValueError("no estimates to score")
    missing = [image_id for image_id in estimates if image_id not in truths]
    if missing:
        raise ValueError(f"no true noise profile for image {missing[0]!r}")
    losses = []
    for image_id, estimate in estimates.items():
        truth = truths[image_id]
        a_error = min(abs(estimate.a - truth.a) / truth.a, 1.0)
        b_error = min(abs(estimate.b - truth.b) / truth.b, 1.0)
        losses.append(0.5 * a_error + 0.5 * b_error)
    return float(100.0 - 100.0 * np.mean(losses))


def estimate_dataset(dataset: Dataset, log: Callable[[str], None]) -> pd.DataFrame:
    """Estimate the noise profile of every noisy image of ``dataset``, in dataset order, each in the
    normalised units of its own levels (``dataset.levels`` gives them: x = (raw - black) / (white - black),
    one DN of that range as the estimator's step).

    Returns a DataFrame with columns image (id, str), a, b (floats), black (the file's black level, one or
    four per plane as text, e.g. ``1024``), white (int) and seconds (time spent estimating that image,
    file reading excluded). ``log`` gets one progress line per image, and a warning line for a file
    normalised with other levels than its tags give. Only the noisy files are read; one that cannot be read
    raises BenchError (from ``bench.core.rawio.read_dng``).
    """
    rows = []
    total = len(dataset.items)
    for position, item in enumerate(dataset.items, start=1):
        noisy = read_dng(item.noisy_path, dataset.levels)
        note = dataset.levels.tag_note(item.noisy_path, noisy.levels, *noisy.tags)
        if note:
            log(f"warning: {note}")
        packed = noisy.normalized_packed()
        start = time.perf_counter()
        profile = estimate_noise(packed, step=noisy.levels.dn_step)
        seconds = time.perf_counter() - start
        rows.append({"image": item.image_id, "a": profile.a, "b": profile.b, "black": black_text(noisy.levels.black),
                     "white": noisy.levels.white, "seconds": seconds})
        log(f"[{position}/{total}] image {item.image_id}: a={profile.a:.4g} b={profile.b:.4g} ({seconds:.2f} s)")
    return pd.DataFrame(rows, columns=["image", "a", "b", "black", "white", "seconds"])
