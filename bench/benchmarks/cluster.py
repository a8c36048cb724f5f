"""``python -m bench.benchmarks.cluster``: one small table through the local executor and through Dask.

Runs ``bench run``'s table (``bench.runner.run_benchmark``, ``--fresh``, so every result is computed) of
``--methods`` on the first ``--limit`` images of the embedded set (or ``--data``), alternately ``--repeats``
times each way, after one untimed run of each (the embedded set's build, the Dask workers' first imports):

* ``--executor local --workers N``: N worker processes, started by each run (their start is in its time);
* ``--executor dask`` on a local cluster of N worker processes of one thread each (``distributed.LocalCluster``)
  that is already up, as a user's cluster is when ``bench run`` starts;
* the same with the cluster started and stopped inside the timing.

Prints the median wall times, the Dask overheads against the local executor, the table's seconds per image
of each method both ways (the figures a user reads) and whether both ways gave the same scores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.datasets import open_dataset
from bench.embedded import embedded_dataset
from bench.runner import RunConfig, run_benchmark

REPO = Path(__file__).resolve().parent.parent.parent
SCORE_COLUMNS = ["method", "image", "psnr", "ssim", "ssim_col", "score", "status"]


def timed_run(config: RunConfig) -> tuple[float, pd.DataFrame]:
    """Wall seconds of one ``run_benchmark(config)`` and its per_image table."""
    started = time.perf_counter()
    result = run_benchmark(config, log=lambda message: None)
    seconds = time.perf_counter() - started
    return seconds, pd.read_csv(result.run_dir / "per_image.csv")


def start_cluster(workers: int):
    """A local Dask cluster of ``workers`` one-thread worker processes that can import this package."""
    import distributed

    return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                                    env={"PYTHONPATH": str(REPO)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="noisy,bilateral,nlm",
                        help="comma-separated (default noisy,bilateral,nlm)")
    parser.add_argument("--data", type=Path, help="dataset folder (default: the embedded set)")
    parser.add_argument("--limit", type=int, default=8, help="images (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes and Dask workers (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each way (default 3)")
    args = parser.parse_args(argv)
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("error: this benchmark needs the distributed package (pip install distributed)", file=sys.stderr)
        return 2
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    dataset = (open_dataset(args.data) if args.data else embedded_dataset(log=log)).limited(args.limit)
    methods = args.methods.split(",")
    ways = ("local", "dask", "dask, cluster started in the run")
    times: dict[str, list[float]] = {way: [] for way in ways}
    tables: dict[str, list[pd.DataFrame]] = {way: [] for way in ways}
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as folder, start_cluster(args.workers) as cluster:
        os.environ["RAW_BENCH_RESULT_CACHE"] = str(Path(folder) / "cache")  # --fresh: stores, never reads

        def config(way: str, scheduler: str | None = None) -> RunConfig:
            return RunConfig(methods, dataset, out_root=Path(folder) / way, workers=args.workers, fresh=True,
                             executor="local" if scheduler is None else "dask", scheduler=scheduler)

        def run(way: str) -> tuple[float, pd.DataFrame]:
            if way == "local":
                return timed_run(config(way))
            if way == "dask":
                return timed_run(config(way, cluster.scheduler_address))
            started = time.perf_counter()
            with start_cluster(args.workers) as own:
                _, table = timed_run(config(way, own.scheduler_address))
            return time.perf_counter() - started, table

        run("local"), run("dask")  # untimed
        for repeat in range(args.repeats):
            for way in ways:
                seconds, table = run(way)
                times[way].append(seconds)
                tables[way].append(table)
            log(f"repeat {repeat + 1}: " + ", ".join(f"{way} {times[way][-1]:.2f} s" for way in ways))
    same = all(table[SCORE_COLUMNS].equals(tables["local"][0][SCORE_COLUMNS]) for way in ways for table in tables[way])
    medians = {way: statistics.median(times[way]) for way in ways}
    print(f"{len(methods)} methods ({args.methods}) x {len(dataset.items)} images of {dataset.name}, "
          f"{args.workers} workers, {args.repeats} alternating runs each way, every result computed")
    for way in ways:
        overhead = "" if way == "local" else f"   overhead {100 * (medians[way] / medians['local'] - 1):+6.1f} %"
        print(f"{way:34s} median {medians[way]:7.2f} s{overhead}")
    print("seconds per image as the tables show them (mean over the runs):")
    for name in methods:
        local_seconds, dask_seconds = (
            statistics.mean(float(table[table["method"] == name]["seconds"].mean()) for table in tables[way])
            for way in ("local", "dask"))
        ratio = f"{dask_seconds / local_seconds:.2f}x" if local_seconds > 0 else "-"
        print(f"  {name:12s} local {local_seconds:8.4f}  dask {dask_seconds:8.4f}  ({ratio})")
    print(f"tables {'identical' if same else 'DIFFERENT'} (scores of every run, every way)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
