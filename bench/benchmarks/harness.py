"""``python -m bench.benchmarks.harness``: the harness around the methods against the organisers' loop.

Writes ``--pairs`` full-size pairs (3472 x 4624 BGGR, black 1024, white 16383; ``bench.benchmarks.frames``)
to a temporary folder, then times, as whole processes (process start and imports included), alternately
``--repeats`` times each:

* the organisers' loop (``bench/benchmarks/organisers_loop.py``: rawpy read, scikit-image PSNR, 2-D SSIM
  and column SSIM, write back);
* ``python -m bench run --data DIR --methods noisy --workers 1 --save-outputs --out TMP`` with an empty
  result cache each time (what a first run does: read, hash, decode, score, write back, cache, tables),
  and with ``--compare-with CHECKOUT`` the same command in another checkout (an earlier commit, say).

Prints the median wall and CPU seconds of each and their ratios to the organisers' loop, how far each
run's scores are from the organisers' (equal to the last bit, or the largest difference), and checks that
every run wrote byte-identical DNGs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.benchmarks.frames import write_full_size_pairs
from bench.speed import COMPETITION_SIZE

REPO = Path(__file__).resolve().parent.parent.parent
ORGANISERS_LOOP = Path(__file__).resolve().with_name("organisers_loop.py")


def timed_process(command: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``command`` in ``cwd``; returns (wall seconds, CPU seconds of it and its children, its stdout).
    RuntimeError with the end of its stderr when it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} ... exited with {completed.returncode}:\n"
                           f"{completed.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, completed.stdout


def bench_run_command(data: Path, out: Path, methods: str = "noisy", workers: int = 1) -> list[str]:
    """``python -m bench run`` on ``data`` with ``methods`` and ``workers``, outputs saved under ``out``."""
    return [sys.executable, "-m", "bench", "run", "--data", str(data), "--methods", methods, "--workers",
            str(workers), "--save-outputs", "--out", str(out)]


def score_difference(organisers: dict, organisers_out: Path, run_root: Path, data_name: str) -> float:
    """The largest difference between the run's per_image.csv scores and the organisers' (0.0: equal to
    the last bit); AssertionError when the run's saved DNGs are not byte-identical to theirs."""
    run_dir = next((run_root / data_name).iterdir())
    rows = pd.read_csv(run_dir / "per_image.csv", dtype={"image": str}).set_index("image")
    largest = 0.0
    for image_id, values in organisers.items():
        ours = [float(rows.loc[image_id, column]) for column in ("psnr", "ssim", "ssim_col")]
        largest = max(largest, *(abs(a - b) for a, b in zip(ours, values)))
        saved = (run_dir / "outputs" / "noisy" / f"{image_id}.dng").read_bytes()
        assert saved == (organisers_out / f"{image_id}.dng").read_bytes(), f"image {image_id}: DNGs differ"
    return largest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.harness", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="full-size pairs (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each command (default 3)")
    parser.add_argument("--size", default="x".join(map(str, COMPETITION_SIZE)), help="HxW (default 3472x4624)")
    parser.add_argument("--compare-with", type=Path, metavar="CHECKOUT", action="append", default=[],
                        help="also time the bench run of another checkout of this repository (e.g. a git worktree "
                             "of an earlier commit), in the same alternation; repeatable")
    args = parser.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    checkouts = {"bench run": REPO, **{f"bench run ({path})": path.resolve() for path in args.compare_with}}
    differences: dict[str, float] = dict.fromkeys(checkouts, 0.0)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ["organisers' loop", *checkouts]}
    with tempfile.TemporaryDirectory(prefix="harness-bench-") as folder:
        root = Path(folder)
        data = write_full_size_pairs(root / "pairs", args.pairs, size)
        print(f"{args.pairs} pairs of {size[0]}x{size[1]} in {data}", file=sys.stderr)
        for repeat in range(args.repeats):
            organisers_out = root / f"organisers-{repeat}"
            wall, cpu, stdout = timed_process([sys.executable, str(ORGANISERS_LOOP), str(data), str(organisers_out)])
            times["organisers' loop"].append((wall, cpu))
            for k, (name, checkout) in enumerate(checkouts.items()):
                env = {**os.environ, "RAW_BENCH_RESULT_CACHE": str(root / f"cache-{repeat}-{k}")}
                run_root = root / f"run-{repeat}-{k}"
                wall, cpu, _ = timed_process(bench_run_command(data, run_root), checkout, env)
                times[name].append((wall, cpu))
                differences[name] = max(differences[name], score_difference(json.loads(stdout), organisers_out,
                                                                            run_root, data.name))
            print(f"repeat {repeat + 1}: " + ", ".join(f"{name} {runs[-1][0]:.2f} s" for name, runs in times.items()),
                  file=sys.stderr)
    print(f"{args.pairs} full-size pairs ({size[0]}x{size[1]}), {args.repeats} alternating runs each, process start "
          "included; every run's saved DNGs byte-identical to the organisers'")
    print(f"{'':34s} {'wall s':>8s} {'CPU s':>8s} {'wall ratio':>10s} {'CPU ratio':>9s}")
    organisers = [statistics.median(values) for values in zip(*times["organisers' loop"])]
    for name, runs in times.items():
        wall, cpu = (statistics.median(values) for values in zip(*runs))
        scores = "" if name not in differences else (
            "  scores equal to the last bit" if differences[name] == 0 else f"  scores within {differences[name]:.1e}")
        print(f"{name:34s} {wall:8.2f} {cpu:8.2f} {wall / organisers[0]:9.2f}x {cpu / organisers[1]:8.2f}x{scores}")
    print("(medians; ratios against the organisers' loop; CPU: user + system of the process and its children)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
