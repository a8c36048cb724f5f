"""``bench speed``'s pieces: the library call each wrapping method declares, the repeat-and-keep-the-fastest
timing, one measurement in this process and in a child process, and the full table's projection."""

from __future__ import annotations

import numpy as np
import pytest

import bench.evaluation
import bench.full_table
import bench.speed
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, pack_normalized
from bench.full_table import Projection, single_frame_methods
from bench.speed import SPEED_PROFILE, fastest_call, measure, measure_in_child
from methods.base import Method
from methods.registry import create_method, get_method_class, list_methods

WRAPPERS = {"bilateral": "cv2.bilateralFilter", "nlm": "cv2.fastNlMeansDenoising", "bm3d": "bm3d.bm3d"}


@pytest.fixture
def frame_path(tmp_path):
    """A small noisy (H, W) uint16 mosaic saved the way ``speed_table`` saves its frame."""
    rng = np.random.default_rng(0)
    mosaic = rng.integers(COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, size=(64, 80), dtype=np.uint16)
    path = tmp_path / "frame.npy"
    np.save(path, mosaic)
    return path


def test_a_method_names_a_library_exactly_when_it_makes_the_call():
    for name in list_methods():
        cls = get_method_class(name)
        overrides = cls.library_call is not Method.library_call
        assert overrides == (cls.wrapped_library is not None), name
    assert {name: get_method_class(name).wrapped_library for name in WRAPPERS} == WRAPPERS


def test_a_method_that_wraps_no_library_has_no_library_call():
    with pytest.raises(NotImplementedError, match="noisy"):
        create_method("noisy").library_call(np.zeros((4, 4, 4), np.float32), 0.01)


@pytest.mark.parametrize("name, dtype", [("bilateral", np.float32), ("nlm", np.uint16), ("bm3d", np.float64)])
def test_the_library_call_runs_on_the_four_planes_with_the_methods_settings(name, dtype, frame_path):
    if (reason := get_method_class(name).unavailable_reason()) is not None:
        pytest.skip(reason)
    packed = pack_normalized(np.load(frame_path), COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL)
    sigma = float(SPEED_PROFILE.std(np.float32(0.5)))
    out = create_method(name).library_call(packed, sigma)
    assert out.shape == packed.shape and out.dtype == dtype
    if name == "bilateral":  # a weaker filter is closer to its input: the settings reach the call
        weak = create_method(name, {"sigma_color": 0.25, "diameter": 3}).library_call(packed, sigma)
        assert np.abs(weak - packed).mean() < np.abs(out - packed).mean()


def test_calls_under_the_threshold_are_timed_three_times_and_the_fastest_kept(monkeypatch):
    monkeypatch.setattr(bench.speed, "REPEAT_BELOW_SECONDS", 10.0)
    seconds = iter([3.0, 1.0, 2.0, 0.5])
    calls = []

    def call():
        calls.append(1)
        return np.zeros(1), next(seconds)

    assert fastest_call(call)[1] == 1.0 and len(calls) == 3
    slow = iter([12.0, 1.0])
    assert fastest_call(lambda: (np.zeros(1), next(slow)))[1] == 12.0  # one call at or over the threshold


def test_a_measurement_times_the_method_through_the_evaluation_path(monkeypatch, frame_path):
    calls = []
    original = bench.evaluation.timed_denoise

    def counting(method, raw):
        calls.append(method.name)
        return original(method, raw)

    monkeypatch.setattr(bench.evaluation, "timed_denoise", counting)
    report = measure(frame_path, "noisy", {})
    assert calls == ["noisy"] * 3  # a fast call: timed three times
    assert report["shape"] == [32, 40, 4] and report["seconds"] >= 0 and report["peak_gb"] > 0


def test_a_reference_measurement_times_the_library_call(monkeypatch, frame_path):
    if get_method_class("bilateral").unavailable_reason() is not None:
        pytest.skip("needs OpenCV")
    monkeypatch.setattr(bench.evaluation, "timed_denoise", lambda *args: pytest.fail("the method ran"))
    report = measure(frame_path, "bilateral", {"diameter": 5}, reference=True)
    assert report["shape"] == [32, 40, 4] and report["seconds"] >= 0


def test_a_measurement_in_a_child_process_reports_its_error_in_one_line(frame_path):
    report = measure_in_child("noisy", {"no_such_parameter": 1}, frame_path)
    assert list(report) == ["error"]
    assert "no_such_parameter" in report["error"] and "\n" not in report["error"]
    report = measure_in_child("noisy", {}, frame_path)
    assert report["shape"] == [32, 40, 4] and report["peak_gb"] > 0


# ------------------------------------------------------------------------------------------ the full table


def test_the_full_table_covers_every_single_frame_method():
    names = single_frame_methods()
    assert {"noisy", "bilateral", "nlm", "bm3d", "dncnn", "nafnet"} <= set(names)
    assert all(get_method_class(name).kind != "burst" for name in names) and "burst_merge" not in names


def test_the_projection_is_the_images_of_one_worker_times_the_cost_of_one_image():
    harness = {"preflight": 0.1, "read": 0.2, "noise": 2.0, "image_crops": 0.3, "score": 1.0, "crop": 0.01,
               "cache": 0.04, "save": 0.0}
    projection = Projection({"noisy": 0.0, "bm3d": 700.0}, harness, pairs=101, workers=2, threads=1,
                            save_outputs=False)
    assert projection.images_per_worker == 51
    assert projection.harness_per_image() == pytest.approx(0.1 + 0.2 + 2.0 + 0.3 + 2 * 1.05)
    assert projection.hours(projection.per_image()) == pytest.approx(51 * (700.0 + 4.7) / 3600)
    only_references = Projection({"noisy": 0.0}, harness, 10, 1, 2, False)
    assert only_references.harness_per_image() == pytest.approx(0.6 + 1.05)  # nobody asks for the noise profile
    assert any(line.startswith("total") for line in projection.lines())


def test_the_full_table_times_each_method_with_its_params_and_a_workers_share_of_the_cores(monkeypatch):
    import bench.full_table

    seen = []
    monkeypatch.setattr(bench.full_table, "available_cores", lambda: 4)
    monkeypatch.setattr(bench.full_table, "measure_in_child",
                        lambda name, params, frame, threads: seen.append((name, params, threads)) or {"seconds": 1.0})
    monkeypatch.setattr(bench.full_table, "harness_in_child", lambda data, save, threads: {
        stage: 0.0 for stage in [*bench.full_table.IMAGE_STAGES, *bench.full_table.RESULT_STAGES]})
    projection = bench.full_table.full_table(["noisy", "bilateral"], {"bilateral": {"diameter": 5}}, pairs=10,
                                             workers=2, save_outputs=False, size=(64, 96), log=lambda message: None)
    assert seen == [("noisy", {}, 2), ("bilateral", {"diameter": 5}, 2)]
    assert projection.threads == 2 and projection.per_image() == 2.0


def test_the_harness_is_measured_stage_by_stage_in_a_child_process(tmp_path):
    from bench.benchmarks.frames import write_full_size_pairs

    data = write_full_size_pairs(tmp_path / "pairs", 2, (128, 192))
    report = bench.full_table.harness_in_child(data, save_outputs=True, threads=1)
    assert set(report) == {*bench.full_table.IMAGE_STAGES, *bench.full_table.RESULT_STAGES}, report
    assert all(seconds >= 0 for seconds in report.values()) and report["save"] > 0
