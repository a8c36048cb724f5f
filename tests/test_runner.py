"""bench run end to end: the scored files, failure isolation, interruption, noise modes, run records."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import rawpy
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.datasets import open_dataset
from bench.embedded import embedded_dataset
from bench.runner import RunConfig, run_benchmark
from methods.base import Method, param
from tests.helpers import box_blur3, register_for_test, write_pair_folder


@pytest.fixture
def quiet():
    messages = []
    return messages.append, messages


@dataclass
class _Blur(Method):
    """3x3 box blur per plane; records the noise profile it was given."""

    kind = "classical"
    seen: list = param(None, "test hook")

    def denoise(self, raw):
        if self.seen is not None:
            self.seen.append(raw.noise)
        return box_blur3(raw.packed)


@dataclass
class _Raises(Method):
    """Always raises."""

    def denoise(self, raw):
        raise RuntimeError("boom\nsecond line")


@dataclass
class _WrongShape(Method):
    """Drops a row."""

    def denoise(self, raw):
        return raw.packed[1:]


@dataclass
class _NaN(Method):
    """Returns NaN."""

    def denoise(self, raw):
        out = raw.packed.copy()
        out[0, 0, 0] = np.nan
        return out


@dataclass
class _OutOfRange(Method):
    """Returns values above 1."""

    def denoise(self, raw):
        return raw.packed + 2.0


@dataclass
class _Unavailable(Method):
    """Needs a package that is not here."""

    @classmethod
    def unavailable_reason(cls):
        return "package 'nothere' is not installed"

    def denoise(self, raw):  # pragma: no cover - never called
        raise AssertionError


def test_saved_outputs_rescore_identically_with_plain_skimage(quiet, tmp_path):
    """The issue's acceptance check, on the embedded set: the DNGs --save-outputs wrote, re-read with
    rawpy and scored with plain scikit-image calls, give per_image.csv's PSNR and SSIM to 1e-9."""
    dataset = embedded_dataset(log=quiet[0])
    result = run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path, save_outputs=True), log=quiet[0])
    rows = pd.read_csv(result.run_dir / "per_image.csv", dtype={"image": str})
    assert len(rows) == len(dataset.items) >= 12 and (rows["status"] == "ok").all()
    for item, (_, row) in zip(dataset.items, rows.iterrows()):
        saved = result.run_dir / "outputs" / "noisy" / f"{item.image_id}.dng"
        with rawpy.imread(str(saved)) as r:
            out = r.raw_image_visible.copy()
        with rawpy.imread(str(item.gt_path)) as r:
            gt = r.raw_image_visible.copy()
        assert row["image"] == item.image_id
        assert abs(peak_signal_noise_ratio(gt, out, data_range=16383) - row["psnr"]) < 1e-9
        assert abs(structural_similarity(gt, out, data_range=16383) - row["ssim"]) < 1e-9
        # the output of the identity method is the noisy file's mosaic through the float32 round trip
        with rawpy.imread(str(item.noisy_path)) as r:
            noisy = r.raw_image_visible.astype(np.int64)
        assert np.abs(out.astype(np.int64) - noisy).max() <= 1


def test_run_folder_contents(quiet, pair_folder, tmp_path):
    dataset = open_dataset(pair_folder)
    result = run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path, command="cmd"), log=quiet[0])
    assert result.run_dir.parent == tmp_path / "pairs"
    per_image = pd.read_csv(result.run_dir / "per_image.csv")
    assert list(per_image.columns[:7]) == ["method", "image", "psnr", "ssim", "ssim_col", "score", "seconds"]
    summary = pd.read_csv(result.run_dir / "summary.csv")
    for column in ["method", "psnr", "ssim", "ssim_col", "score", "seconds_per_image", "mp_per_second",
                   "images", "failures"]:
        assert column in summary.columns
    assert summary.loc[0, "images"] == 3 and summary.loc[0, "failures"] == 0
    assert summary.loc[0, "psnr"] == pytest.approx(per_image["psnr"].mean(), abs=1e-12)
    assert summary.loc[0, "score"] == pytest.approx(per_image["score"].mean(), abs=1e-12)
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["command"] == "cmd" and record["status"] == "finished" and record["noise"] == "estimate"
    assert record["methods"]["noisy"]["params"] == {}
    assert "numpy" in record["versions"] and "rawpy" in record["versions"]
    assert "git_commit" in record and len(record["dataset_fingerprint"]) == 64
    markdown = (result.run_dir / "summary.md").read_text()
    assert "| noisy |" in markdown and "regenerate: `cmd`" in markdown


def test_fingerprint_changes_with_file_content(quiet, pair_folder, tmp_path):
    first = run_benchmark(RunConfig(["noisy"], open_dataset(pair_folder), out_root=tmp_path), log=quiet[0])
    path = pair_folder / "noisy" / "0_noise.dng"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1  # flip one bit of the last pixel
    path.write_bytes(bytes(data))
    second = run_benchmark(RunConfig(["noisy"], open_dataset(pair_folder), out_root=tmp_path), log=quiet[0])
    fp = [json.loads((r.run_dir / "run.json").read_text())["dataset_fingerprint"] for r in (first, second)]
    assert fp[0] != fp[1]


def test_failing_methods_are_recorded_and_the_run_goes_on(monkeypatch, quiet, pair_folder, tmp_path):
    for name, cls in [("_raises", _Raises), ("_shape", _WrongShape), ("_nan", _NaN), ("_range", _OutOfRange),
                      ("_unavailable", _Unavailable)]:
        register_for_test(monkeypatch, name, cls)
    names = ["_raises", "_shape", "noisy", "_nan", "_range", "_unavailable"]
    result = run_benchmark(RunConfig(names, open_dataset(pair_folder), out_root=tmp_path), log=quiet[0])
    rows = pd.read_csv(result.run_dir / "per_image.csv", keep_default_na=False)
    by_method = {m: g for m, g in rows.groupby("method")}
    assert (by_method["noisy"]["status"] == "ok").all()
    expected = {"_raises": "RuntimeError: boom", "_shape": "returned shape (31, 48, 4), expected (32, 48, 4)",
                "_nan": "1 NaN or infinite", "_range": "outside [0, 1]", "_unavailable": "unavailable: package"}
    for name, text in expected.items():
        group = by_method[name]
        assert (group["status"] == "failed").all() and len(group) == 3
        assert all(text in error and "\n" not in error for error in group["error"])
    assert "second line" in (result.run_dir / "errors.log").read_text()
    summary = result.summary.set_index("method")
    assert summary.loc["_raises", "failures"] == 3 and summary.loc["_raises", "images"] == 0
    assert result.summary.iloc[0]["method"] == "noisy"  # failed methods sort last
    assert result.succeeded == 3 and result.failed == 15


def test_interrupt_keeps_what_finished(monkeypatch, quiet, pair_folder, tmp_path):
    calls = []

    @dataclass
    class _Interrupts(Method):
        """Ctrl-C on the second image."""

        def denoise(self, raw):
            calls.append(raw.image_id)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return raw.packed

    register_for_test(monkeypatch, "_interrupts", _Interrupts)
    result = run_benchmark(RunConfig(["noisy", "_interrupts"], open_dataset(pair_folder), out_root=tmp_path),
                           log=quiet[0])
    assert result.interrupted
    rows = pd.read_csv(result.run_dir / "per_image.csv")
    assert list(zip(rows["method"], rows["image"])) == [("noisy", 0), ("_interrupts", 0), ("noisy", 1)]
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "interrupted"
    assert (result.run_dir / "summary.md").is_file()
    assert (result.run_dir / "crops.npz").is_file()  # written with the tables, of what finished


def test_noise_modes_hand_methods_the_right_profile(monkeypatch, quiet, pair_folder, tmp_path):
    register_for_test(monkeypatch, "_blur", _Blur)
    dataset = open_dataset(pair_folder)
    seen = []
    run = run_benchmark(RunConfig(["_blur"], dataset, out_root=tmp_path, noise_mode="oracle",
                                  params={"_blur": {"seen": seen}}), log=quiet[0])
    assert [(p.a, p.b, p.source) for p in seen] == [(2e-3, 1e-4, "oracle")] * 3
    noise_table = pd.read_csv(run.run_dir / "noise.csv")
    assert list(noise_table["source"]) == ["oracle"] * 3
    seen.clear()
    run = run_benchmark(RunConfig(["_blur"], dataset, out_root=tmp_path, noise_mode="estimate",
                                  params={"_blur": {"seen": seen}}), log=quiet[0])
    assert [p.source for p in seen] == ["estimate"] * 3
    assert json.loads((run.run_dir / "run.json").read_text())["noise"] == "estimate"


def test_blur_beats_noisy_so_scores_rank_methods(monkeypatch, quiet, pair_folder, tmp_path):
    """A smoothing method on smooth synthetic images must outscore the identity: the table ranks real
    differences."""
    register_for_test(monkeypatch, "_blur", _Blur)
    result = run_benchmark(RunConfig(["noisy", "_blur"], open_dataset(pair_folder), out_root=tmp_path),
                           log=quiet[0])
    summary = result.summary.set_index("method")
    assert summary.loc["_blur", "psnr"] > summary.loc["noisy", "psnr"] + 1.0
    assert list(result.summary["method"]) == ["_blur", "noisy"]


def test_input_error_mid_run_is_recorded_and_the_rest_scored(monkeypatch, quiet, pair_folder, tmp_path):
    """A file that passes the structural pre-flight check but fails to decode costs only its image."""
    dataset = open_dataset(pair_folder)
    dataset.check_files()
    import bench.datasets as datasets_module

    real_read = datasets_module.read_dng

    def flaky_read(path, *args, **kwargs):
        if path.name == "1_noise.dng":
            from bench.core.errors import BenchError

            raise BenchError(f"{path}: rawpy could not decode it (LibRawDataError)")
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(datasets_module, "read_dng", flaky_read)
    messages = []
    result = run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path), log=messages.append)
    rows = pd.read_csv(result.run_dir / "per_image.csv", keep_default_na=False)
    assert list(rows["status"]) == ["ok", "failed", "ok"]
    assert "1_noise.dng: rawpy could not decode" in rows.loc[1, "error"]
    assert any("input error" in m and "1_noise.dng" in m for m in messages)


def test_estimated_noise_uses_the_datasets_own_levels(monkeypatch, quiet, pair_folder, tmp_path):
    """With overridden black/white levels, the estimator models truncation to that sensor's DN, not the
    competition's."""
    import bench.evaluation as runner_module

    steps = []
    real_estimate = runner_module.estimate_noise

    def recording_estimate(packed, *, step):
        steps.append(step)
        return real_estimate(packed, step=step)

    monkeypatch.setattr(runner_module, "estimate_noise", recording_estimate)
    register_for_test(monkeypatch, "_blur", _Blur)
    dataset = open_dataset(pair_folder, black_level=512, white_level=16383)
    run_benchmark(RunConfig(["_blur"], dataset, out_root=tmp_path), log=quiet[0])
    assert steps == [1.0 / (16383 - 512)] * 3


def test_the_run_saves_the_reports_crops_cut_from_the_scored_outputs(monkeypatch, quiet, tmp_path):
    """crops.npz holds, for the three images the report picks, the noisy and ground-truth crops and every
    method's crop: the very pixels of the DNG that was scored, at the window the report chooses."""
    from bench.core.rawio import read_dng
    from bench.report import CROP_SIZE, choose_crop_images, crop_region, read_run_crops

    register_for_test(monkeypatch, "_blur", _Blur)
    pairs = write_pair_folder(tmp_path / "pairs", count=4, height=200, width=264)
    dataset = open_dataset(pairs)
    result = run_benchmark(RunConfig(["noisy", "_blur"], dataset, out_root=tmp_path / "out", save_outputs=True),
                           log=quiet[0])
    per_image = pd.read_csv(result.run_dir / "per_image.csv", dtype={"image": str})
    chosen = choose_crop_images(per_image, {"noisy"})
    saved = read_run_crops(result.run_dir)
    assert [(image.role, image.image_id) for image in saved.values()] == chosen and len(chosen) == 3
    items = {item.image_id: item for item in dataset.items}
    for image in saved.values():
        assert image.window[2:] == (CROP_SIZE, CROP_SIZE) and set(image.methods) == {"noisy", "_blur"}
        top, left, bottom, right = crop_region(image.shape, image.window)
        assert (image.noisy.origin, image.noisy.pixels.shape) == ((top, left), (bottom - top, right - left))
        files = {"noisy": items[image.image_id].noisy_path, "gt": items[image.image_id].gt_path,
                 **{name: result.run_dir / "outputs" / name / f"{image.image_id}.dng" for name in image.methods}}
        crops = {"noisy": image.noisy, "gt": image.gt, **image.methods}
        for name, path in files.items():
            mosaic = read_dng(path, dataset.levels).mosaic
            assert np.array_equal(crops[name].pixels, mosaic[top:bottom, left:right]), name


def test_a_crop_that_cannot_be_cut_costs_no_result(monkeypatch, quiet, pair_folder, tmp_path):
    import bench.tasks

    dataset = open_dataset(pair_folder)
    plain = run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path / "a", fresh=True), log=quiet[0])

    def broken(*args):
        raise RuntimeError("no crop today")

    monkeypatch.setattr(bench.tasks, "result_crop", broken)
    messages = []
    result = run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path / "b", fresh=True), log=messages.append)
    assert result.succeeded == 3 and not (result.run_dir / "crops.npz").exists()
    assert any("no crop for the report (RuntimeError: no crop today)" in m for m in messages)
    columns = ["method", "image", "psnr", "ssim", "ssim_col", "score", "status"]
    pd.testing.assert_frame_equal(pd.read_csv(plain.run_dir / "per_image.csv")[columns],
                                  pd.read_csv(result.run_dir / "per_image.csv")[columns])


def test_a_cache_entry_with_a_malformed_crop_is_a_miss(quiet, pair_folder, tmp_path):
    """The crop a cached result carries is checked like the rest of its facts (the checksum made to match)."""
    import os
    from pathlib import Path

    from bench.cache import _checksum

    dataset = open_dataset(pair_folder)
    run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path / "a"), log=quiet[0])
    entries = sorted((Path(os.environ["RAW_BENCH_RESULT_CACHE"]) / "result").rglob("*.json"))
    assert len(entries) == 3
    entry = json.loads(entries[0].read_text())
    assert entry["body"]["crop"]["window"][2:] == [64, 96]  # the whole of a small image
    entry["body"]["crop"]["shape"] = [3, 3]
    entry["checksum"] = _checksum(entry["kind"], entry["key"], entry["body"])
    entries[0].write_text(json.dumps(entry))
    again = run_benchmark(RunConfig(["noisy"], dataset, out_root=tmp_path / "b"), log=quiet[0])
    assert again.cached == 2 and again.succeeded == 3
