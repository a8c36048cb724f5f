"""Parallel, cached and resumable runs: worker processes give the sequential tables, reruns take finished
results from the cache (also after kill -9), and a Dask cluster gives the same tables as a local run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from bench.datasets import open_dataset
from bench.executors import LocalProcessExecutor, WorkerDied, available_cores, make_executor
from bench.core.errors import BenchError
from bench.runner import RunConfig, run_benchmark
from methods.base import Method
from tests.helpers import box_blur3, register_for_test, write_pair_folder

REPO = Path(__file__).resolve().parent.parent
SCORE_COLUMNS = ["method", "image", "psnr", "ssim", "ssim_col", "score", "status"]


def quiet(message: str) -> None:
    pass


def scores(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "per_image.csv")[SCORE_COLUMNS]


def test_worker_processes_give_the_sequential_tables(pair_folder, tmp_path):
    dataset = open_dataset(pair_folder)
    names = ["noisy", "bilateral", "nlm", "dncnn"]
    one = run_benchmark(RunConfig(names, dataset, out_root=tmp_path / "a", workers=1, fresh=True), log=quiet)
    two = run_benchmark(RunConfig(names, dataset, out_root=tmp_path / "b", workers=2, fresh=True), log=quiet)
    pd.testing.assert_frame_equal(scores(one.run_dir), scores(two.run_dir))
    assert one.succeeded == two.succeeded == 12


def _thread_settings(_: object) -> tuple[str, int, int]:
    import cv2
    import torch

    return os.environ["OMP_NUM_THREADS"], torch.get_num_threads(), cv2.getNumThreads()


def test_workers_share_the_cores_out():
    before = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "RAW_BENCH_CORES")}
    executor = LocalProcessExecutor(2)
    try:
        results = [result for _, result in executor.run(_thread_settings, [0, 1])]
    finally:
        executor.close()
    share = max(1, available_cores() // 2)
    assert results == [(str(share), share, share)] * 2
    assert {name: os.environ.get(name) for name in before} == before  # this process keeps its own settings


@dataclass
class _Counting(Method):
    """3x3 box blur that counts its calls (in this process)."""

    kind = "classical"
    calls = []

    def denoise(self, raw):
        _Counting.calls.append(raw.image_id)
        return box_blur3(raw.packed)


def test_rerun_takes_finished_results_from_the_cache(monkeypatch, pair_folder, tmp_path):
    register_for_test(monkeypatch, "_counting", _Counting)
    _Counting.calls = []
    dataset = open_dataset(pair_folder)
    first = run_benchmark(RunConfig(["noisy", "_counting"], dataset, out_root=tmp_path), log=quiet)
    assert len(_Counting.calls) == 3 and first.cached == 0
    second = run_benchmark(RunConfig(["noisy", "_counting"], dataset, out_root=tmp_path), log=quiet)
    assert len(_Counting.calls) == 3 and second.cached == 6  # nothing recomputed
    pd.testing.assert_frame_equal(scores(first.run_dir), scores(second.run_dir))
    assert (first.run_dir / "noise.csv").read_text() == (second.run_dir / "noise.csv").read_text()
    fresh = run_benchmark(RunConfig(["noisy", "_counting"], dataset, out_root=tmp_path, fresh=True), log=quiet)
    assert len(_Counting.calls) == 6 and fresh.cached == 0


def test_cache_key_follows_parameters_and_file_content(monkeypatch, pair_folder, tmp_path):
    dataset = open_dataset(pair_folder)
    run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path), log=quiet)
    other_params = run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path,
                                           params={"bilateral": {"sigma_color": 3.0}}), log=quiet)
    assert other_params.cached == 0
    noisy = pair_folder / "noisy" / "1_noise.dng"
    data = bytearray(noisy.read_bytes())
    data[-1] ^= 1
    noisy.write_bytes(bytes(data))
    changed = run_benchmark(RunConfig(["bilateral"], open_dataset(pair_folder), out_root=tmp_path), log=quiet)
    assert changed.cached == 2  # images 0 and 2 unchanged
    oracle = run_benchmark(RunConfig(["bilateral"], open_dataset(pair_folder), out_root=tmp_path,
                                     noise_mode="oracle"), log=quiet)
    assert oracle.cached == 0


def test_saved_outputs_are_copied_from_the_cached_run(pair_folder, tmp_path):
    dataset = open_dataset(pair_folder)
    first = run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path, save_outputs=True), log=quiet)
    second = run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path, save_outputs=True), log=quiet)
    assert second.cached == 3
    for image in range(3):
        name = Path("outputs") / "bilateral" / f"{image}.dng"
        assert (first.run_dir / name).read_bytes() == (second.run_dir / name).read_bytes()
    for path in (first.run_dir / "outputs" / "bilateral").iterdir():
        path.unlink()
    third = run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path, save_outputs=True), log=quiet)
    assert third.cached == 0  # the files it would copy are gone: computed again
    assert sorted(p.name for p in (third.run_dir / "outputs" / "bilateral").iterdir()) == ["0.dng", "1.dng", "2.dng"]


def test_kill_9_mid_run_resumes_without_recomputing(tmp_path):
    """A CLI run killed with SIGKILL leaves whole cache entries; the rerun takes them and computes only the
    rest, and its table equals an uninterrupted run's."""
    data = write_pair_folder(tmp_path / "pairs", count=6)
    env = {**os.environ, "RAW_BENCH_RESULT_CACHE": str(tmp_path / "cache" / "results"), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "bench", "run", "--methods", "bm3d", "--data", str(data), "--workers", "1",
               "--out", str(tmp_path / "out")]
    entries = tmp_path / "cache" / "results" / "result"
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(entries.rglob("*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(list(entries.rglob("*.json")))
    assert 2 <= finished < 6, f"the run should have been killed part-way; {finished} results were cached"
    resumed = subprocess.run(command, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{finished} of 6 results taken from the cache" in resumed.stderr, resumed.stderr
    assert len(re.findall(r"\] image \d+ bm3d ", resumed.stderr)) == 6 - finished  # a line per computed result
    fresh = subprocess.run(command + ["--fresh", "--out", str(tmp_path / "fresh")], env=env, capture_output=True,
                           text=True)
    assert fresh.returncode == 0, fresh.stderr
    run_dirs = [next((tmp_path / out / "pairs").iterdir()) for out in ("fresh",)]
    resumed_dir = max((tmp_path / "out" / "pairs").iterdir())
    pd.testing.assert_frame_equal(scores(resumed_dir), scores(run_dirs[0]))


def test_dask_cluster_gives_the_local_tables(pair_folder, tmp_path):
    distributed = pytest.importorskip("distributed")
    dataset = open_dataset(pair_folder)
    names = ["noisy", "bilateral", "nlm"]
    local = run_benchmark(RunConfig(names, dataset, out_root=tmp_path / "local", fresh=True), log=quiet)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  env={"PYTHONPATH": str(REPO)}) as cluster:
        remote = run_benchmark(RunConfig(names, dataset, out_root=tmp_path / "dask", fresh=True, executor="dask",
                                         scheduler=cluster.scheduler_address), log=quiet)
    pd.testing.assert_frame_equal(scores(local.run_dir), scores(remote.run_dir))
    assert remote.succeeded == 9


def test_executor_errors_are_one_line():
    with pytest.raises(BenchError, match="needs --scheduler"):
        make_executor("dask", 1, None)
    with pytest.raises(BenchError, match="--workers must be at least 1"):
        make_executor("local", 0, None)


def test_progress_eta():
    from bench.tables import eta_text

    assert eta_text(10.0, 1, 4) == "  ETA 0m30s"
    assert eta_text(3600.0, 1, 3) == "  ETA 2h00m"
    assert eta_text(5.0, 4, 4) == ""


def _dies_on_one(task: int) -> int:
    if task == 1:
        os._exit(3)  # a worker killed mid-task (out of memory, a crash in a C extension)
    time.sleep(0.5)
    return task * 10


def test_a_dying_worker_becomes_failed_results_not_a_crash():
    executor = LocalProcessExecutor(2)
    try:
        results = dict(executor.run(_dies_on_one, [0, 1, 2]))
    finally:
        executor.close()
    assert isinstance(results[1], WorkerDied) and "exited with status 3" in str(results[1])
    assert results[0] == 0 and results[2] == 20  # only the task whose worker died is lost


def _two_results_dying_on_one(task: int):
    yield task * 10
    if task == 1:
        os._exit(3)  # dies after sending its first result
    yield task * 10 + 1


def test_a_task_sends_each_result_as_it_is_made_and_a_death_loses_only_the_rest():
    executor = LocalProcessExecutor(2)
    try:
        results = list(executor.run(_two_results_dying_on_one, [0, 1, 2]))
    finally:
        executor.close()
    by_task: dict[int, list] = {}
    for task, result in results:
        by_task.setdefault(task, []).append(result)
    assert by_task[0] == [0, 1] and by_task[2] == [20, 21]
    assert by_task[1][0] == 10 and len(by_task[1]) == 2 and isinstance(by_task[1][1], WorkerDied)


class _LosesImageOne:
    """An executor that runs tasks here but reports image 1's as lost (what a dead worker looks like)."""

    workers = 1

    def run(self, function, tasks):
        for task in tasks:
            if task.item.image_id == "1":
                yield task, RuntimeError("worker lost\ndetail")
            else:
                for part in function(task):
                    yield task, part

    def close(self):
        pass


def test_lost_tasks_are_recorded_as_failed_and_the_run_finishes(monkeypatch, pair_folder, tmp_path):
    import bench.executors

    monkeypatch.setattr(bench.executors, "make_executor", lambda kind, workers, scheduler: _LosesImageOne())
    result = run_benchmark(RunConfig(["noisy", "bilateral"], open_dataset(pair_folder), out_root=tmp_path), log=quiet)
    rows = pd.read_csv(result.run_dir / "per_image.csv", keep_default_na=False)
    lost = rows[rows["image"] == 1]
    assert list(lost["status"]) == ["failed", "failed"]
    assert set(lost["error"]) == {"worker failed: RuntimeError: worker lost"}
    assert result.succeeded == 4 and (result.run_dir / "summary.md").is_file()
