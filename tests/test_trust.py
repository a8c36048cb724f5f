"""Runs you can trust: a number shown is a number measured on the input named beside it, whatever the cache,
the workers or the input files do; interrupted and damaged runs still write their tables."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from bench.datasets import GT_DIR, NOISY_DIR, open_dataset
from bench.core.errors import BenchError
from bench.runner import RunConfig, run_benchmark
from methods.base import Method
from tests.helpers import box_blur3, register_for_test, write_pair_folder

REPO = Path(__file__).resolve().parent.parent
SCORE_COLUMNS = ["method", "image", "psnr", "ssim", "ssim_col", "score", "status"]


def quiet(message: str) -> None:
    pass


def table(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "per_image.csv", keep_default_na=False)


def cache_entries(kind: str = "result") -> list[Path]:
    return sorted((Path(os.environ["RAW_BENCH_RESULT_CACHE"]) / kind).rglob("*.json"))


# ------------------------------------------------------------------------------------------ the cache


def test_a_renumbered_copy_gets_its_own_ids_and_the_same_numbers(pair_folder, tmp_path):
    """The cache stores facts, not rows: the same files under other ids (a renumbered subset) are shown
    under their own ids. (Before: the first dataset's ids were shown, or the run ended in a KeyError.)"""
    first = run_benchmark(RunConfig(["noisy", "bilateral"], open_dataset(pair_folder), out_root=tmp_path / "a"),
                          log=quiet)
    copy = tmp_path / "renumbered"
    (copy / GT_DIR).mkdir(parents=True)
    (copy / NOISY_DIR).mkdir()
    for old, new in ((1, 7), (2, 5)):
        shutil.copy(pair_folder / GT_DIR / f"{old}_gt.dng", copy / GT_DIR / f"{new}_gt.dng")
        shutil.copy(pair_folder / NOISY_DIR / f"{old}_noise.dng", copy / NOISY_DIR / f"{new}_noise.dng")
    second = run_benchmark(RunConfig(["noisy", "bilateral"], open_dataset(copy), out_root=tmp_path / "b"),
                           log=quiet)
    assert second.cached == 4
    before, after = table(first.run_dir), table(second.run_dir)
    assert sorted(set(after["image"])) == [5, 7]
    for old, new in ((1, 7), (2, 5)):
        expected = before[before["image"] == old][["method", "psnr", "score"]].reset_index(drop=True)
        shown = after[after["image"] == new][["method", "psnr", "score"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(expected, shown)


@dataclass
class _SwapsAFile(Method):
    """Box blur that, on image 0, replaces image 1's noisy file (a file changed while the run goes on)."""

    kind = "classical"
    replacement: str = ""

    def denoise(self, raw):
        if raw.image_id == "0" and self.replacement:
            source, target = self.replacement.split("|")
            shutil.copy(source, target)
        return box_blur3(raw.packed)


def test_a_file_changed_during_the_run_cannot_poison_the_cache(monkeypatch, pair_folder, tmp_path):
    """Image 1's noisy file is swapped after the run hashed it: that row is failed (it was not measured on
    the run's input), and after the file is restored a rerun recomputes it instead of showing the number of
    the swapped content. (Before: the new content's result was stored under the old content's key.)"""
    name = register_for_test(monkeypatch, "_swaps", _SwapsAFile)
    target = pair_folder / NOISY_DIR / "1_noise.dng"
    original = tmp_path / "original.dng"
    shutil.copy(target, original)
    params = {name: {"replacement": f"{pair_folder / NOISY_DIR / '2_noise.dng'}|{target}"}}
    swapped = run_benchmark(RunConfig([name], open_dataset(pair_folder), out_root=tmp_path / "a", params=params),
                            log=quiet)
    rows = table(swapped.run_dir).set_index("image")
    assert rows.loc[1, "status"] == "failed" and "changed during the run" in rows.loc[1, "error"]
    assert list(rows.loc[[0, 2], "status"]) == ["ok", "ok"]

    shutil.copy(original, target)
    params = {name: {"replacement": ""}}
    again = run_benchmark(RunConfig([name], open_dataset(pair_folder), out_root=tmp_path / "b", params=params),
                          log=quiet)
    fresh = run_benchmark(RunConfig([name], open_dataset(pair_folder), out_root=tmp_path / "c", params=params,
                                    fresh=True), log=quiet)
    pd.testing.assert_frame_equal(table(again.run_dir)[SCORE_COLUMNS], table(fresh.run_dir)[SCORE_COLUMNS])


def test_edited_and_malformed_cache_entries_are_misses(pair_folder, tmp_path):
    """A poisoned entry (numbers edited) is never shown and a malformed one never crashes: both are
    recomputed and replaced. (Before: the edited PSNR was shown; the malformed entry ended the run.)"""
    dataset = open_dataset(pair_folder)
    first = run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path / "a"), log=quiet)
    entries = cache_entries()
    assert len(entries) == 3
    poisoned = json.loads(entries[0].read_text())
    body = poisoned.get("body", poisoned.get("row"))
    body["psnr"] = 99.0
    entries[0].write_text(json.dumps(poisoned))
    entries[1].write_text(json.dumps({"row": [1, 2, 3]}))
    entries[2].write_text("{not json")
    second = run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path / "b"), log=quiet)
    assert second.cached == 0 and second.succeeded == 3
    pd.testing.assert_frame_equal(table(first.run_dir)[SCORE_COLUMNS], table(second.run_dir)[SCORE_COLUMNS])
    third = run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path / "c"), log=quiet)
    assert third.cached == 3  # the bad entries were replaced by good ones


def test_an_unwritable_cache_warns_once_and_the_run_finishes(monkeypatch, pair_folder, tmp_path):
    """(Before: a traceback at the first result, and no summary.)"""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RAW_BENCH_RESULT_CACHE", str(blocker / "cache"))
    messages: list[str] = []
    result = run_benchmark(RunConfig(["noisy", "bilateral"], open_dataset(pair_folder), out_root=tmp_path / "out"),
                           log=messages.append)
    assert result.succeeded == 6 and (result.run_dir / "summary.md").is_file()
    warnings = [m for m in messages if "cannot be written" in m]
    assert len(warnings) == 1 and str(blocker / "cache") in warnings[0]


def test_fresh_recomputes_the_blind_noise_estimates(monkeypatch, pair_folder, tmp_path):
    """(Before: the worker's estimate cache ignored --fresh.)"""
    import bench.core.noise

    calls = []
    real = bench.core.noise.estimate_profile

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(bench.core.noise, "estimate_profile", counting)
    dataset = open_dataset(pair_folder)
    run_benchmark(RunConfig(["bilateral"], dataset, out_root=tmp_path / "a"), log=quiet)
    assert len(calls) == 3
    run_benchmark(RunConfig(["nlm"], dataset, out_root=tmp_path / "b"), log=quiet)
    assert len(calls) == 3  # another method on the same files: the cached estimates
    run_benchmark(RunConfig(["nlm"], dataset, out_root=tmp_path / "c", fresh=True), log=quiet)
    assert len(calls) == 6


def test_one_estimate_per_image_however_many_methods(monkeypatch, pair_folder, tmp_path):
    import bench.core.noise

    calls = []
    real = bench.core.noise.estimate_profile
    monkeypatch.setattr(bench.core.noise, "estimate_profile", lambda *a, **k: calls.append(1) or real(*a, **k))
    run_benchmark(RunConfig(["bilateral", "nlm"], open_dataset(pair_folder), out_root=tmp_path), log=quiet)
    assert len(calls) == 3


def test_each_image_is_decoded_once_however_many_methods(monkeypatch, pair_folder, tmp_path):
    """A second method adds no read, hash or decode of any input: an image's files are decoded once for
    all its methods. (Before: once per (method, image) task, so M methods decoded every file M times.)"""
    import bench.datasets

    decodes: dict[str, int] = {}
    for name in ("read_dng", "read_dng_levels"):
        real = getattr(bench.datasets, name)

        def counting(path, *args, real=real, **kwargs):
            decodes[path.name] = decodes.get(path.name, 0) + 1
            return real(path, *args, **kwargs)

        monkeypatch.setattr(bench.datasets, name, counting)
    dataset = open_dataset(pair_folder)
    counts = []
    for methods in (["noisy"], ["noisy", "bilateral"], ["noisy", "bilateral", "nlm"]):
        decodes.clear()
        run_benchmark(RunConfig(methods, dataset, out_root=tmp_path / str(len(methods)), fresh=True), log=quiet)
        counts.append(dict(decodes))
    assert counts[0] == counts[1] == counts[2]
    assert sorted(counts[0]) == ["0_gt.dng", "0_noise.dng", "1_gt.dng", "1_noise.dng", "2_gt.dng", "2_noise.dng"]


def test_an_invalid_noise_profile_is_the_inputs_fault_not_the_methods(monkeypatch, pair_folder, tmp_path):
    """A NaN estimate is reported as an input error (before: as the method's failure); a NaN true profile
    is refused before any work."""
    import bench.core.noise

    monkeypatch.setattr(bench.core.noise, "estimate_profile", lambda *a, **k: (math.nan, 1e-4))
    result = run_benchmark(RunConfig(["bilateral"], open_dataset(pair_folder), out_root=tmp_path), log=quiet)
    errors = list(table(result.run_dir)["error"])
    assert len(errors) == 3 and all(e.startswith("input error:") and "noise profile a=nan" in e for e in errors)

    (pair_folder / "noise_profile.csv").write_text("image,a,b\n0,nan,1e-4\n1,1e-3,1e-4\n2,1e-3,1e-4\n")
    with pytest.raises(BenchError, match="noise_profile.csv, image 0: noise profile a=nan"):
        run_benchmark(RunConfig(["bilateral"], open_dataset(pair_folder), out_root=tmp_path, noise_mode="oracle"),
                      log=quiet)


# ------------------------------------------------------------------------------------------ workers


def _worker_children(pid: int) -> list[int]:
    """Pids of the spawned worker processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(fields[1]) == pid and b"spawn_main" in command:
                children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_killed_mid_run_costs_only_its_task(tmp_path):
    """SIGKILL one of two busy workers during a BM3D run: the run finishes with exactly one failed row and
    every other row ok. (Before: every task still to come failed with BrokenProcessPool.)"""
    data = write_pair_folder(tmp_path / "pairs", count=6, height=128, width=192)
    killed: list[int] = []
    first_result = threading.Event()

    def log(message: str) -> None:
        if message.startswith("[1/"):
            first_result.set()

    def kill_one_busy_worker() -> None:
        first_result.wait(120)
        time.sleep(0.3)  # the worker that sent the first result has its next task by now
        children = [pid for pid in _worker_children(os.getpid()) if _alive(pid)]
        if children:
            os.kill(children[0], signal.SIGKILL)
            killed.append(children[0])

    killer = threading.Thread(target=kill_one_busy_worker)
    killer.start()
    result = run_benchmark(RunConfig(["bm3d"], open_dataset(data), out_root=tmp_path / "out", workers=2), log=log)
    killer.join()
    assert killed, "no worker process was found to kill"
    rows = table(result.run_dir)
    failed = rows[rows["status"] == "failed"]
    assert len(failed) == 1, rows[["image", "status", "error"]]
    assert "killed by SIGKILL" in failed["error"].iloc[0]
    assert result.succeeded == 5


def _run_command(tmp_path: Path, images: int, workers: int) -> list[str]:
    data = write_pair_folder(tmp_path / "pairs", count=images, height=128, width=192)
    return [sys.executable, "-m", "bench", "run", "--methods", "bm3d", "--data", str(data), "--workers",
            str(workers), "--out", str(tmp_path / "out")]


def _start(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_results(count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(cache_entries()) < count:
        time.sleep(0.05)
    assert len(cache_entries()) >= count, "the run did not get going"


def _wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.parametrize("signals", [(signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)], ids=["sigterm", "ctrl-c-twice"])
def test_sigterm_and_a_repeated_ctrl_c_keep_the_tables_and_leave_no_worker(tmp_path, signals):
    """SIGTERM stops a run like Ctrl-C (finished rows kept, summary written, exit 143), a second Ctrl-C
    while it stops cannot lose the summary, and no worker outlives it. (Before: SIGTERM killed the main
    process at once with no summary and left its workers running; a second Ctrl-C during the pool's
    shutdown lost the summary.)"""
    process = _start(_run_command(tmp_path, images=8, workers=2))
    _wait_for_results(1)
    workers = _worker_children(process.pid)
    for signum in signals:
        os.kill(process.pid, signum)
        time.sleep(0.3)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signals[0], stderr
    run_dir = next((tmp_path / "out" / "pairs").iterdir())
    assert (run_dir / "summary.md").is_file(), stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    rows = table(run_dir)
    assert 1 <= (rows["status"] == "ok").sum() < 8
    assert workers and _wait_gone(workers) == []


def test_workers_do_not_outlive_a_main_process_killed_with_sigkill(tmp_path):
    """(Before: the pool's workers were reparented and ran on, ~360 MB each, 80 s later.)"""
    process = _start(_run_command(tmp_path, images=8, workers=2))
    _wait_for_results(1)
    workers = _worker_children(process.pid)
    assert workers
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert _wait_gone(workers) == []
