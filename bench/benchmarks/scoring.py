"""``python -m bench.benchmarks.scoring``: the suite's metrics (``bench.core.metrics``) against scikit-image's
three calls on one full-size frame, in this process.

The pair is two independent noisy draws of one competition-size frame (``bench.speed.full_size_frame``,
seeds 0 and 1: 3472 x 4624 uint16, black 1024, white 16383), scored with data_range 16383. Each call is
timed ``--repeats`` times, the two sides alternating, and the fastest kept. Prints each metric's seconds on
both sides, the seconds of scikit-image's three calls against those of ``score_mosaic`` (the call a run
makes, all three metrics in one pass), their ratio, and the largest absolute difference between the values.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import numpy as np

from bench.core import metrics
from bench.speed import COMPETITION_SIZE, full_size_frame

WHITE_LEVEL = 16383


def skimage_calls() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The three scikit-image calls of the scoring protocol (README, *Scoring protocol*), by metric name;
    each takes ``(gt, out)``, ``(H, W)`` uint16, and returns the metric (PSNR uncapped)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    return {
        "psnr": lambda gt, out: float(peak_signal_noise_ratio(gt, out, data_range=WHITE_LEVEL)),
        "ssim": lambda gt, out: float(structural_similarity(gt, out, data_range=WHITE_LEVEL)),
        "ssim_col": lambda gt, out: float(structural_similarity(gt, out, data_range=WHITE_LEVEL, channel_axis=-1)),
    }


def suite_calls() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """The suite's three metric functions, by the same names."""
    return {name: (lambda gt, out, function=getattr(metrics, name): function(gt, out, WHITE_LEVEL))
            for name in ("psnr", "ssim", "ssim_col")}


def timed(call: Callable[[], object]) -> tuple[object, float]:
    """``call()``'s result and the seconds it took."""
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def compare(gt: np.ndarray, out: np.ndarray, repeats: int) -> dict:
    """Fastest seconds of each call on both sides over ``repeats`` alternating rounds, and the values:
    ``{"skimage": {metric: s}, "suite": {metric: s, "score_mosaic": s}, "values": {side: {metric: value}}}``."""
    reference, ours = skimage_calls(), suite_calls()
    seconds: dict[str, dict[str, float]] = {"skimage": {}, "suite": {}}
    values: dict[str, dict[str, float]] = {"skimage": {}, "suite": {}}

    def keep(side: str, name: str, value: object, took: float) -> None:
        seconds[side][name] = min(seconds[side].get(name, float("inf")), took)
        if name in reference:
            values[side][name] = float(value)

    for _ in range(repeats):
        for name, call in reference.items():
            keep("skimage", name, *timed(lambda: call(gt, out)))
        for name, call in ours.items():
            keep("suite", name, *timed(lambda: call(gt, out)))
        together, took = timed(lambda: metrics.score_mosaic(gt, out, WHITE_LEVEL))
        keep("suite", "score_mosaic", together, took)
    return {"skimage": seconds["skimage"], "suite": seconds["suite"], "values": values}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.scoring", description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="x".join(map(str, COMPETITION_SIZE)), help="HxW (default 3472x4624)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each call, the fastest kept (default 3)")
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))
    gt, out = full_size_frame(height, width, seed=0), full_size_frame(height, width, seed=1)
    report = compare(gt, out, args.repeats)
    reference, ours, values = report["skimage"], report["suite"], report["values"]
    print(f"one {height}x{width} uint16 pair, data_range {WHITE_LEVEL}, fastest of {args.repeats} "
          f"alternating rounds, in one process")
    print(f"{'metric':<10} {'value':>20} {'scikit-image':>13} {'suite':>9} {'ratio':>7}")
    for name in reference:
        print(f"{name:<10} {values['suite'][name]:>20.15f} {reference[name]:>11.3f} s {ours[name]:>7.3f} s "
              f"{reference[name] / ours[name]:>6.1f}x")
    all_three = sum(reference.values())
    print(f"scikit-image's three calls {all_three:.3f} s; score_mosaic {ours['score_mosaic']:.3f} s; "
          f"ratio {all_three / ours['score_mosaic']:.1f}x")
    difference = max(abs(values["suite"][name] - values["skimage"][name]) for name in reference)
    print(f"largest absolute difference from scikit-image: {difference:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
