"""Validation before work (issue 13, item 4): input that used to give silently meaningless numbers is a
one-line BenchError (or, for data partly outside the levels, a one-line warning) before anything runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import datasets, tables
from bench.core import metrics, rawio
from bench.datasets import GT_DIR, NOISY_DIR, load_item, open_dataset
from bench.core.errors import BenchError
from bench.core.levels import LevelPolicy
from bench.core.rawio import write_dng_standalone
from methods.registry import create_method, get_method_class, list_methods
from tests.helpers import smooth_clean_mosaic

NUMERIC = (int, float)


def _numeric_specs():
    return [(name, spec) for name in list_methods() for spec in get_method_class(name).params()
            if spec.type in NUMERIC]


# 1. parameter ranges -------------------------------------------------------------------------------------

def test_every_numeric_parameter_of_every_method_declares_a_valid_range():
    missing = [f"{name}.{spec.name}" for name, spec in _numeric_specs() if getattr(spec, "valid", None) is None]
    assert not missing, f"no valid range declared for {missing}"


def test_defaults_and_tuning_ranges_lie_inside_the_valid_range():
    for name, spec in _numeric_specs():
        assert spec.valid.contains(spec.default), f"{name}.{spec.name} default {spec.default} outside {spec.valid}"
        for end in (spec.low, spec.high):
            if end is not None:
                assert spec.valid.contains(end), f"{name}.{spec.name} tuning end {end} outside {spec.valid}"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_create_method_refuses_nan_and_infinity_for_every_float_parameter(bad):
    floats = [(name, spec) for name, spec in _numeric_specs() if spec.type is float]
    assert floats
    for name, spec in floats:
        with pytest.raises(BenchError, match=rf"{name}\.{spec.name}.*{bad}"):
            create_method(name, {spec.name: bad})


@pytest.mark.parametrize("method, parameter, value, shown_range", [
    ("bilateral", "diameter", 0, "[1, inf)"),
    ("bilateral", "diameter", -3, "[1, inf)"),
    ("bilateral", "sigma_color", 0.0, "(0, inf)"),
    ("bilateral", "sigma_space", -1.5, "(0, inf)"),
    ("nlm", "h", 0.0, "(0, inf)"),
    ("nlm", "template_window", -1, "[1, inf)"),
    ("nlm_multi", "temporal_window", -1, "[0, inf)"),
    ("bm3d", "sigma_scale", -0.9, "(0, inf)"),
    ("bm3d", "tile_size", -512, "[0, inf)"),
    ("bm3d", "workers", -1, "[0, inf)"),
    ("burst_mean", "tile", 0, "[1, inf)"),
    ("burst_merge", "search", -1, "[0, inf)"),
    ("burst_merge", "robustness", 0.0, "(0, inf)"),
    ("nafnet", "overlap", -64, "[0, inf)"),
    ("dncnn", "tile", -1, "[0, inf)"),
])
def test_create_method_refuses_values_outside_the_valid_range(method, parameter, value, shown_range):
    with pytest.raises(BenchError) as caught:
        create_method(method, {parameter: value})
    message = str(caught.value)
    assert "\n" not in message
    assert f"{method}.{parameter}" in message and repr(value) in message and shown_range in message


def test_values_at_the_edge_of_the_valid_range_are_accepted():
    assert create_method("bilateral", {"diameter": 1}).diameter == 1
    assert create_method("bm3d", {"tile_size": 0, "workers": 0}).tile_size == 0
    assert create_method("nlm", {"h": 1e-6}).h == 1e-6


def test_every_numeric_parameter_refuses_a_value_just_outside_its_range():
    for name, spec in _numeric_specs():
        if math.isfinite(spec.valid.minimum):
            below = spec.valid.minimum if spec.valid.minimum_open else spec.valid.minimum - 1
            with pytest.raises(BenchError, match=rf"{name}\.{spec.name}"):
                create_method(name, {spec.name: spec.type(below)})


# 2. black and white levels -------------------------------------------------------------------------------

@pytest.mark.parametrize("black, white", [(-100, 16383), (1024, 1_000_000), (1024, 1024), (2000, 1000),
                                          (0, 65536)])
def test_open_dataset_refuses_impossible_levels(pair_folder, black, white):
    with pytest.raises(BenchError, match=r"black level .* white level .*0 <= black < white <= 65535") as caught:
        open_dataset(pair_folder, black_level=black, white_level=white)
    assert "\n" not in str(caught.value)


def test_the_level_policy_itself_refuses_impossible_levels():
    with pytest.raises(BenchError, match="white level 70000"):
        LevelPolicy("competition", 1024, 70000)


def test_extreme_but_possible_levels_are_accepted(pair_folder):
    assert open_dataset(pair_folder, black_level=0, white_level=65535).levels.white == 65535


# 3. data outside [black, white] --------------------------------------------------------------------------

def _write_pair(root: Path, index: int, gt: np.ndarray, noisy: np.ndarray) -> None:
    (root / GT_DIR).mkdir(parents=True, exist_ok=True)
    (root / NOISY_DIR).mkdir(exist_ok=True)
    write_dng_standalone(gt, root / GT_DIR / f"{index}_gt.dng")
    write_dng_standalone(noisy, root / NOISY_DIR / f"{index}_noise.dng")


def _eight_bit(seed: int) -> np.ndarray:
    return (smooth_clean_mosaic(64, 64, seed) // 64).astype(np.uint16)  # values 16 .. 255


def test_check_levels_refuses_data_wholly_below_black_with_a_hint():
    with pytest.raises(BenchError, match=r"x\.dng: .*--black-level/--white-level") as caught:
        datasets.check_levels(_eight_bit(0), 1024, 16383, Path("x.dng"), ground_truth=False)
    assert "\n" not in str(caught.value)


def test_check_levels_refuses_data_wholly_above_white():
    with pytest.raises(BenchError, match="above the white level 1023"):
        datasets.check_levels(np.full((32, 32), 4000, np.uint16), 64, 1023, Path("x.dng"), ground_truth=True)


def test_check_levels_warns_for_data_partly_outside():
    gt = smooth_clean_mosaic(64, 64, 0)
    gt[:8, :] = 1000  # 1/8 of the pixels below black
    message = datasets.check_levels(gt, 1024, 16383, Path("0_gt.dng"), ground_truth=True)
    assert message is not None and "\n" not in message
    assert "0_gt.dng" in message and "12.5%" in message and "below the black level 1024" in message

    noisy = smooth_clean_mosaic(64, 64, 0)
    noisy[0, :4] = 20000
    message = datasets.check_levels(noisy, 1024, 16383, Path("0_noise.dng"), ground_truth=False)
    assert "0_noise.dng" in message and "above the white level 16383" in message and "4 of 4096" in message


def test_check_levels_is_silent_for_normal_data_and_for_noise_below_black():
    assert datasets.check_levels(smooth_clean_mosaic(64, 64, 0), 1024, 16383, Path("gt.dng"), ground_truth=True) is None
    noisy = smooth_clean_mosaic(64, 64, 0)
    noisy[:8] = 1000  # read noise below black is normal in a noisy frame
    assert datasets.check_levels(noisy, 1024, 16383, Path("noise.dng"), ground_truth=False) is None


def test_eight_bit_files_are_refused_when_loaded_and_in_the_pre_flight(tmp_path):
    _write_pair(tmp_path / "d", 0, _eight_bit(0), _eight_bit(1))
    dataset = open_dataset(tmp_path / "d")
    with pytest.raises(BenchError, match="--black-level/--white-level"):
        load_item(dataset, dataset.items[0])
    with pytest.raises(BenchError, match="--black-level/--white-level"):
        dataset.check_files()


def test_data_partly_outside_gives_warnings_when_loaded_and_in_the_pre_flight(tmp_path):
    gt = smooth_clean_mosaic(64, 64, 0)
    gt[:2] = 900
    _write_pair(tmp_path / "d", 0, gt, smooth_clean_mosaic(64, 64, 1))
    dataset = open_dataset(tmp_path / "d")
    pair = load_item(dataset, dataset.items[0])
    assert len(pair.level_warnings) == 1 and "0_gt.dng" in pair.level_warnings[0]
    assert dataset.check_files() == list(pair.level_warnings)


def test_normal_data_loads_without_warnings(pair_folder):
    dataset = open_dataset(pair_folder)
    assert load_item(dataset, dataset.items[0]).level_warnings == ()
    assert dataset.check_files() == []


# 4. duplicate image ids ----------------------------------------------------------------------------------

def test_the_same_id_written_two_ways_is_refused_naming_both_noisy_files(pair_folder):
    noisy = pair_folder / NOISY_DIR
    (noisy / "00000001_noise.dng").write_bytes((noisy / "1_noise.dng").read_bytes())
    with pytest.raises(BenchError, match=r"00000001_noise\.dng.*1_noise\.dng.*image 1") as caught:
        open_dataset(pair_folder)
    assert "\n" not in str(caught.value)


def test_the_same_id_written_two_ways_is_refused_for_ground_truth(pair_folder):
    (pair_folder / GT_DIR / "02_gt.dng").write_bytes((pair_folder / GT_DIR / "2_gt.dng").read_bytes())
    with pytest.raises(BenchError, match=r"02_gt\.dng.*2_gt\.dng"):
        open_dataset(pair_folder)


def test_the_same_burst_frame_written_two_ways_is_refused(pair_folder):
    (pair_folder / "burst").mkdir()
    frame = (pair_folder / NOISY_DIR / "0_noise.dng").read_bytes()
    (pair_folder / "burst" / "0_noise_1.dng").write_bytes(frame)
    (pair_folder / "burst" / "0_noise_01.dng").write_bytes(frame)
    with pytest.raises(BenchError, match=r"0_noise_01\.dng.*0_noise_1\.dng"):
        open_dataset(pair_folder)


def test_the_same_test_image_id_written_two_ways_is_refused(tmp_path):
    for name in ("noisy1.dng", "noisy001.dng"):
        write_dng_standalone(smooth_clean_mosaic(32, 32, 0), tmp_path / name)
    with pytest.raises(BenchError, match=r"noisy001\.dng.*noisy1\.dng"):
        open_dataset(tmp_path)


# 5. sizes ------------------------------------------------------------------------------------------------

def test_pre_flight_refuses_a_mosaic_too_small_to_score(tmp_path):
    small = smooth_clean_mosaic(24, 64, 0)  # rawpy reads it, but it is too small to score
    _write_pair(tmp_path / "d", 0, small, small)
    dataset = open_dataset(tmp_path / "d")
    with pytest.raises(BenchError, match=r"0_noise\.dng: .*24x64.*at least 32x32") as caught:
        dataset.check_files()
    assert "\n" not in str(caught.value)


def test_pre_flight_refuses_odd_sides(tmp_path, monkeypatch):
    # the standalone writer verifies by reading back, which refuses odd sides: write without that check
    odd = np.full((65, 64), 3000, np.uint16)
    with monkeypatch.context() as patch:
        patch.setattr(rawio, "_write_verified", lambda path, data, *args, **kwargs: path.write_bytes(data))
        _write_pair(tmp_path / "d", 0, odd, odd)
    dataset = open_dataset(tmp_path / "d")
    with pytest.raises(BenchError, match=r"0_noise\.dng: .*65x64.*even"):
        dataset.check_files()


def test_pre_flight_accepts_the_smallest_scorable_size(tmp_path):
    _write_pair(tmp_path / "d", 0, smooth_clean_mosaic(32, 32, 0), smooth_clean_mosaic(32, 32, 1))
    assert open_dataset(tmp_path / "d").check_files() == []


# 6. infinite PSNR ----------------------------------------------------------------------------------------

def test_an_identical_pair_has_the_capped_psnr_and_a_finite_score():
    gt = smooth_clean_mosaic(64, 64, 0)
    scores = metrics.score_mosaic(gt, gt.copy(), data_range=16383)
    assert scores.psnr == metrics.PSNR_CAP_DB == 100.0
    assert scores.score == pytest.approx(metrics.score(100.0, 1.0)) and math.isfinite(scores.score)


def test_an_infinite_psnr_row_never_makes_the_mean_infinite():
    rows = pd.DataFrame([
        {"method": "m", "image": "0", "psnr": math.inf, "ssim": 1.0, "ssim_col": 1.0, "score": math.inf,
         "seconds": 1.0, "megapixels": 1.0, "status": "ok", "error": ""},
        {"method": "m", "image": "1", "psnr": 40.0, "ssim": 0.9, "ssim_col": 0.9, "score": metrics.score(40.0, 0.9),
         "seconds": 1.0, "megapixels": 1.0, "status": "ok", "error": ""},
    ])
    summary = tables.summarize(rows)
    assert summary.loc[0, "psnr"] == pytest.approx(70.0)
    assert summary.loc[0, "score"] == pytest.approx((metrics.score(100.0, 1.0) + metrics.score(40.0, 0.9)) / 2)


def test_normal_psnr_is_unchanged_by_the_cap():
    from skimage.metrics import peak_signal_noise_ratio

    gt = smooth_clean_mosaic(64, 64, 0)
    out = (gt.astype(np.int64) + np.random.default_rng(0).integers(-50, 50, gt.shape)).astype(np.uint16)
    assert metrics.psnr(gt, out, data_range=16383) == float(peak_signal_noise_ratio(gt, out, data_range=16383))


def test_valid_range_notation_and_membership():
    from methods.base import above, at_least, between

    assert str(between(0, 1)) == "[0, 1]" and between(0, 1).contains(1) and not between(0, 1).contains(1.5)
    assert str(above(0)) == "(0, inf)" and not above(0).contains(0) and above(0).contains(1e-9)
    assert str(at_least(1)) == "[1, inf)" and at_least(1).contains(1) and not at_least(1).contains(math.inf)


def test_registering_a_method_whose_default_is_outside_its_valid_range_fails():
    from dataclasses import dataclass

    from methods.base import Method, above, param
    from methods.registry import register_method

    @dataclass
    class BadDefault(Method):
        """A method whose default sigma is not a valid sigma."""
        sigma: float = param(0.0, "a sigma", valid=above(0))

    with pytest.raises(ValueError, match=r"sigma default 0\.0 is outside its valid range \(0, inf\)"):
        register_method("_bad_default")(BadDefault)
