"""``python -m bench.benchmarks.bm3d_profiles``: BM3D profile settings, seconds per megapixel against PSNR.

Each setting is a set of ``bm3d`` method parameters (the package profile's block sizes, steps, search windows,
matched blocks, the Wiener stage; ``methods/bm3d.py``) on top of the defaults (the package's standard
profile). Every setting denoises every image of the embedded set and of each real-raw pair folder
(``--data``, e.g. made by ``bench raw-pairs``) in this process, ``workers=1`` (one tile: these images are
under 512 packed pixels a side), with the true noise profile (``--noise oracle``, the default) so that only
the profile differs. For each image the settings run one after another, standard first, so load that drifts
over the run weighs on all of them alike.

Per setting it prints the mean PSNR on each set, its difference from the standard profile, the CPU seconds of
the denoise call per megapixel of mosaic (both sets together) and that figure over the standard profile's on
the same images in the same run (CPU seconds: BM3D is single-threaded here, and CPU time drifts much less than
wall time on a shared machine; wall seconds are kept in the CSV). Then the Pareto front (no other setting as
fast and at least as good on both sets) and the chosen setting: the fastest within ``--tolerance`` dB (0.05) of
the standard profile on every set. ``--csv`` keeps the per-image rows; ``--table CSV [CSV ...]`` prints the
table of saved rows again without running anything (the rows of several runs together: a setting's seconds
are compared with those of the standard profile in its own run).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

#: Candidate settings, by name: bm3d method parameters over the defaults. Coarse (one field or one package
#: profile at a time) first, then combinations of the fields that cost least.
SETTINGS: dict[str, dict] = {
    "standard": {},
    "fast (package low-complexity)": {"speed": "fast"},
    "steps 4": {"step_ht": 4, "step_wiener": 4},
    "steps 5": {"step_ht": 5, "step_wiener": 5},
    "steps 6": {"step_ht": 6, "step_wiener": 6},
    "HT blocks 8": {"max_3d_size_ht": 8},
    "Wiener blocks 16": {"max_3d_size_wiener": 16},
    "windows 25": {"search_window_ht": 25, "search_window_wiener": 25},
    "windows 19": {"search_window_ht": 19, "search_window_wiener": 19},
    "Wiener 11x11 blocks step 6": {"bs_wiener": 11, "step_wiener": 6},
    "no Wiener stage": {"wiener": False},
    "HT step 5 / Wiener step 4": {"step_ht": 5, "step_wiener": 4},
    "HT step 4 / Wiener step 5": {"step_ht": 4, "step_wiener": 5},
    "HT step 6 / Wiener step 4": {"step_ht": 6, "step_wiener": 4},
    "HT step 4 / Wiener step 6": {"step_ht": 4, "step_wiener": 6},
}
STANDARD = "standard"
#: Allowed loss of mean PSNR on each set, dB.
TOLERANCE_DB = 0.05
CSV_COLUMNS = ("run", "set", "image", "setting", "params", "psnr", "score", "cpu_seconds", "wall_seconds",
               "megapixels")


@dataclass(frozen=True)
class Summary:
    """One setting over all images: mean PSNR (dB) per set, CPU seconds per megapixel of mosaic over all
    images, and its CPU seconds over the standard profile's on the same images."""

    setting: str
    params: dict
    psnr: dict[str, float]
    seconds_per_mp: float
    ratio: float


def load_sets(data: list[Path], noise: str, limit: int, log: Callable[[str], None]) -> dict[str, list]:
    """Set name -> ``[(image_id, NoisyRaw, gt mosaic (H, W) uint16, Levels)]``: the embedded set and each
    pair folder of ``data``, the first ``limit`` images of each (0: all), noise profiles under ``noise``."""
    from bench.datasets import open_dataset
    from bench.embedded import embedded_dataset
    from bench.evaluation import load_inputs, make_noisy_raw, noise_for

    datasets = [("embedded", embedded_dataset(log=log))] + [(folder.name, open_dataset(folder)) for folder in data]
    sets = {}
    for name, dataset in datasets:
        items = dataset.items[:limit] if limit else dataset.items
        images = []
        for item in items:
            inputs = load_inputs(dataset, item, None)
            raw = make_noisy_raw(inputs, dataset, noise_for(inputs, dataset, noise))
            images.append((item.image_id, raw, inputs.pair.gt.mosaic, inputs.pair.noisy.levels))
        sets[name] = images
        log(f"{name}: {len(images)} images, {sum(gt.size for _, _, gt, _ in images) / 1e6:.2f} MP")
    return sets


def measure(sets: dict[str, list], settings: dict[str, dict], log: Callable[[str], None],
            rows_out: Callable[[dict], None]) -> list[dict]:
    """Run every setting (``"standard"`` first) on every image, image by image; returns (and passes each to
    ``rows_out`` as it comes) one row per setting and image, with the ``CSV_COLUMNS``."""
    from bench.evaluation import score_output, timed_denoise
    from methods.registry import create_method

    run = time.strftime("%Y%m%d-%H%M%S")
    ordered = {STANDARD: SETTINGS[STANDARD], **settings}
    methods = {name: create_method("bm3d", {**params, "workers": 1})
               for name, params in ordered.items()}
    rows = []
    for set_name, images in sets.items():
        for image_id, raw, gt, levels in images:
            for name, method in methods.items():
                cpu_started = time.process_time()
                out, wall = timed_denoise(method, raw)
                cpu = time.process_time() - cpu_started
                scores, _ = score_output(out, gt, levels)
                row = {"run": run, "set": set_name, "image": image_id, "setting": name,
                       "params": json.dumps(ordered[name], sort_keys=True), "psnr": scores.psnr,
                       "score": scores.score, "cpu_seconds": cpu, "wall_seconds": wall,
                       "megapixels": gt.size / 1e6}
                rows.append(row)
                rows_out(row)
                log(f"{set_name} {image_id} {name}: {scores.psnr:.3f} dB, {cpu:.2f} s CPU, {wall:.2f} s wall")
    return rows


def summarise(rows: list[dict]) -> list[Summary]:
    """Per setting (in the order first seen), over the images every setting ran on (all of them, unless the
    rows stop part-way through a run). Each row's CPU seconds are compared with the standard profile's on
    the same image in the same run (rows of several runs: each run measured the standard profile too)."""
    names = list(dict.fromkeys(row["setting"] for row in rows))
    if STANDARD not in names:
        raise ValueError("the rows hold no standard-profile results to compare with")
    images_of = {name: {(row["set"], row["image"]) for row in rows if row["setting"] == name} for name in names}
    common = set.intersection(*images_of.values())
    standard = {(row.get("run", ""), row["set"], row["image"]): row for row in rows if row["setting"] == STANDARD}
    summaries = []
    for name in names:
        mine = [row for row in rows if row["setting"] == name and (row["set"], row["image"]) in common]
        psnr = {}
        for set_name in dict.fromkeys(row["set"] for row in mine):
            psnr[set_name] = float(np.mean([float(row["psnr"]) for row in mine if row["set"] == set_name]))
        cpu = sum(float(row["cpu_seconds"]) for row in mine)
        standard_cpu = sum(float(standard[(row.get("run", ""), row["set"], row["image"])]["cpu_seconds"])
                           for row in mine)
        megapixels = sum(float(row["megapixels"]) for row in mine)
        summaries.append(Summary(name, json.loads(mine[0]["params"]), psnr, cpu / megapixels, cpu / standard_cpu))
    return summaries


def differences(summary: Summary, standard: Summary) -> dict[str, float]:
    """Set name -> ``summary``'s mean PSNR minus the standard profile's, dB."""
    return {set_name: summary.psnr[set_name] - standard.psnr[set_name] for set_name in standard.psnr}


def pareto_front(summaries: list[Summary]) -> list[Summary]:
    """The settings no other setting dominates (as fast or faster and at least as high a mean PSNR on every
    set, strictly better in one of these), fastest first."""
    def dominates(a: Summary, b: Summary) -> bool:
        no_worse = a.ratio <= b.ratio and all(a.psnr[s] >= b.psnr[s] for s in b.psnr)
        better = a.ratio < b.ratio or any(a.psnr[s] > b.psnr[s] for s in b.psnr)
        return no_worse and better

    front = [b for b in summaries if not any(dominates(a, b) for a in summaries if a is not b)]
    return sorted(front, key=lambda summary: summary.ratio)


def chosen(summaries: list[Summary], tolerance: float = TOLERANCE_DB) -> Summary:
    """The fastest setting within ``tolerance`` dB of the standard profile's mean PSNR on every set."""
    standard = next(summary for summary in summaries if summary.setting == STANDARD)
    within = [summary for summary in summaries
              if all(difference >= -tolerance for difference in differences(summary, standard).values())]
    return min(within, key=lambda summary: summary.ratio)


def markdown_table(summaries: list[Summary], tolerance: float = TOLERANCE_DB) -> str:
    """The table the README shows: every setting, fastest first, with its front membership."""
    standard = next(summary for summary in summaries if summary.setting == STANDARD)
    front = {summary.setting for summary in pareto_front(summaries)}
    pick = chosen(summaries, tolerance).setting
    set_names = list(standard.psnr)
    header = ("| setting | parameters | s / MP (CPU) | vs standard | "
              + " | ".join(f"PSNR {name}" for name in set_names) + " | "
              + " | ".join(f"Δ {name}" for name in set_names) + " | front |")
    lines = [header, "|---|---|---:|---:|" + "---:|" * (2 * len(set_names)) + "---|"]
    for summary in sorted(summaries, key=lambda summary: summary.ratio):
        delta = differences(summary, standard)
        params = ", ".join(f"{key}={value}" for key, value in summary.params.items()) or "(defaults)"
        mark = ("**chosen**" if summary.setting == pick else "yes") if summary.setting in front else ""
        lines.append(f"| {summary.setting} | {params} | {summary.seconds_per_mp:.1f} | {summary.ratio:.2f}× | "
                     + " | ".join(f"{summary.psnr[name]:.3f}" for name in set_names) + " | "
                     + " | ".join(f"{delta[name]:+.3f}" for name in set_names) + f" | {mark} |")
    return "\n".join(lines)


def read_rows(paths: list[Path]) -> list[dict]:
    """The rows of saved CSV files (``--csv``), in order."""
    rows = []
    for path in paths:
        with path.open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.bm3d_profiles",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, action="append", default=[],
                        help="a pair folder with true noise profiles, e.g. from bench raw-pairs (repeatable)")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated setting names (default: all): {', '.join(SETTINGS)}")
    parser.add_argument("--noise", choices=("oracle", "estimate"), default="oracle")
    parser.add_argument("--limit", type=int, default=0, help="first N images of each set (default 0: all)")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE_DB, help="dB (default 0.05)")
    parser.add_argument("--csv", type=Path, help="write the per-image rows here")
    parser.add_argument("--table", type=Path, nargs="+", help="print the table of saved --csv rows and stop")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.table:
        rows = read_rows(args.table)
    else:
        names = [name.strip() for name in args.settings.split(",") if name.strip()]
        unknown = [name for name in names if name not in SETTINGS]
        if unknown:
            parser.error(f"unknown settings {unknown}; known: {list(SETTINGS)}")
        sets = load_sets(args.data, args.noise, args.limit, log)
        handle = writer = None
        if args.csv:
            handle = args.csv.open("w", newline="")
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()

        def keep(row: dict) -> None:
            if writer is not None:
                writer.writerow(row)
                handle.flush()

        try:
            rows = measure(sets, {name: SETTINGS[name] for name in names}, log, keep)
        finally:
            if handle is not None:
                handle.close()
    summaries = summarise(rows)
    print(markdown_table(summaries, args.tolerance))
    pick = chosen(summaries, args.tolerance)
    print(f"\nchosen (fastest within {args.tolerance} dB of standard on every set): {pick.setting}, "
          f"{pick.ratio:.2f}x the standard profile's CPU seconds; params: {json.dumps({'bm3d': pick.params})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
