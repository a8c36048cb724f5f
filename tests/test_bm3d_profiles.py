"""BM3D's profile parameters (methods/bm3d.py) and the profile search (bench.benchmarks.bm3d_profiles): the
defaults hand the package its standard profile unchanged, each parameter sets its one field, the committed
night params file is valid and reaches the package, and the search's summary, Pareto front and choice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bench.benchmarks import bm3d_profiles
from bench.cli.checks import load_params_file
from bench.core.noise_model import NoiseProfile
from methods import bm3d as bm3d_module
from methods.base import NoisyRaw
from methods.registry import create_method, get_method_class

REPO = Path(__file__).resolve().parent.parent
NIGHT_PARAMS = REPO / "results" / "params" / "bm3d-night.json"
#: Every field of the package profile that the method could change.
ALL_FIELDS = ("bs_ht", "step_ht", "max_3d_size_ht", "search_window_ht", "tau_match", "lambda_thr3d", "beta",
              "bs_wiener", "step_wiener", "max_3d_size_wiener", "search_window_wiener", "tau_match_wiener",
              "beta_wiener", "transform_2d_ht_name", "transform_2d_wiener_name", "transform_3rd_dim_name",
              "gamma", "dec_level", "denoise_residual", "sharpen_alpha", "nf", "k", "filter_strength")

bm3d = pytest.importorskip("bm3d")


def _fields(profile) -> dict:
    return {name: getattr(profile, name) for name in ALL_FIELDS}


@pytest.fixture
def captured(monkeypatch):
    """Replaces ``bm3d.bm3d`` with a stand-in that records its profile and stages and returns its input."""
    calls = []

    def stand_in(z, sigma_psd, profile, stage_arg):
        calls.append({"profile": profile, "stages": stage_arg})
        return np.asarray(z, dtype=np.float64)

    monkeypatch.setattr(bm3d, "bm3d", stand_in)
    return calls


def _raw() -> NoisyRaw:
    packed = np.random.default_rng(0).uniform(0.2, 0.6, (20, 24, 4)).astype(np.float32)
    return NoisyRaw(packed[None], "BGGR", lambda: NoiseProfile(a=1e-3, b=1e-5), "test")


def test_default_parameters_give_the_package_standard_profile_and_both_stages(captured):
    create_method("bm3d", {"workers": 1}).denoise(_raw())
    (call,) = captured
    assert _fields(call["profile"]) == _fields(bm3d.BM3DProfile())
    assert call["profile"].num_threads == 1
    assert call["stages"] == bm3d.BM3DStages.ALL_STAGES


def test_fast_speed_is_still_the_low_complexity_profile(captured):
    create_method("bm3d", {"workers": 1, "speed": "fast"}).denoise(_raw())
    assert _fields(captured[0]["profile"]) == _fields(bm3d.BM3DProfileLC())


@pytest.mark.parametrize("name", bm3d_module.PROFILE_FIELDS)
def test_each_profile_parameter_sets_its_field_alone(captured, name):
    create_method("bm3d", {"workers": 1, name: 7}).denoise(_raw())
    expected = {**_fields(bm3d.BM3DProfile()), name: 7}
    assert _fields(captured[0]["profile"]) == expected


def test_wiener_off_runs_hard_thresholding_alone(captured):
    create_method("bm3d", {"workers": 1, "wiener": False}).denoise(_raw())
    assert captured[0]["stages"] == bm3d.BM3DStages.HARD_THRESHOLDING


def test_profile_parameters_reach_the_direct_library_call(captured):
    method = create_method("bm3d", {"step_ht": 5, "wiener": False})
    method.library_call(_raw().packed, 0.01)
    assert captured[0]["profile"].step_ht == 5 and captured[0]["stages"] == bm3d.BM3DStages.HARD_THRESHOLDING


def test_every_profile_parameter_is_declared_with_the_field_name():
    declared = {spec.name: spec for spec in get_method_class("bm3d").params()}
    for name in bm3d_module.PROFILE_FIELDS:
        assert declared[name].default == 0 and declared[name].valid.contains(0), name
        assert hasattr(bm3d.BM3DProfile(), name), name


def test_the_night_params_file_is_valid_and_reaches_the_package(captured):
    params = load_params_file(NIGHT_PARAMS)
    assert set(params) == {"bm3d"}
    create_method("bm3d", {**params["bm3d"], "workers": 1}).denoise(_raw())
    profile = captured[0]["profile"]
    for name, value in params["bm3d"].items():
        if name in bm3d_module.PROFILE_FIELDS:
            assert getattr(profile, name) == value, name
    assert _fields(profile) != _fields(bm3d.BM3DProfile())


def test_the_night_params_file_is_a_setting_of_the_search():
    params = json.loads(NIGHT_PARAMS.read_text())["bm3d"]
    assert params in bm3d_profiles.SETTINGS.values()


# ------------------------------------------------------------------------------------------ the search


def _rows(setting: str, psnrs: dict[str, float], cpu: float) -> list[dict]:
    """Two images per set, 0.5 MP each, ``cpu`` seconds each."""
    params = json.dumps(bm3d_profiles.SETTINGS.get(setting, {"step_ht": 9}))
    return [{"set": set_name, "image": str(index), "setting": setting, "params": params, "psnr": psnr,
             "score": 0.0, "cpu_seconds": cpu, "wall_seconds": cpu, "megapixels": 0.5}
            for set_name, psnr in psnrs.items() for index in range(2)]


def test_summary_front_and_choice():
    rows = (_rows("standard", {"embedded": 50.0, "real": 40.0}, 10.0)
            + _rows("steps 4", {"embedded": 49.97, "real": 39.96}, 6.0)       # within 0.05 dB on both sets
            + _rows("steps 6", {"embedded": 49.99, "real": 39.90}, 4.0)       # faster, too lossy on real
            + _rows("windows 25", {"embedded": 49.96, "real": 39.95}, 7.0))   # dominated by steps 4
    summaries = {summary.setting: summary for summary in bm3d_profiles.summarise(rows)}
    assert summaries["standard"].seconds_per_mp == pytest.approx(10.0 / 0.5)
    assert summaries["steps 4"].ratio == pytest.approx(0.6)
    assert summaries["steps 4"].psnr == {"embedded": pytest.approx(49.97), "real": pytest.approx(39.96)}
    front = [summary.setting for summary in bm3d_profiles.pareto_front(list(summaries.values()))]
    assert front == ["steps 6", "steps 4", "standard"]
    assert bm3d_profiles.chosen(list(summaries.values())).setting == "steps 4"
    assert bm3d_profiles.chosen(list(summaries.values()), tolerance=0.2).setting == "steps 6"
    table = bm3d_profiles.markdown_table(list(summaries.values()))
    assert ("| steps 4 | step_ht=4, step_wiener=4 | 12.0 | 0.60× | 49.970 | 39.960 | -0.030 | -0.040 | **chosen** |"
            in table)
    assert "| windows 25 |" in table and table.count("\n") == 5


def test_saved_rows_print_the_same_table(tmp_path, capsys):
    rows = _rows("standard", {"embedded": 50.0}, 10.0) + _rows("steps 5", {"embedded": 49.99}, 5.0)
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=bm3d_profiles.CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    assert bm3d_profiles.main(["--table", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "| steps 5 | step_ht=5, step_wiener=5 | 10.0 | 0.50× | 49.990 | -0.010 | **chosen** |" in printed


def test_the_committed_search_rows_choose_the_night_params():
    """results/bm3d-profiles holds the rows the README's table comes from; their choice is bm3d-night.json."""
    folder = REPO / "results" / "bm3d-profiles"
    summaries = bm3d_profiles.summarise(bm3d_profiles.read_rows([folder / "coarse.csv", folder / "fine.csv"]))
    pick = bm3d_profiles.chosen(summaries)
    assert {"bm3d": pick.params} == json.loads(NIGHT_PARAMS.read_text())
    standard = next(summary for summary in summaries if summary.setting == "standard")
    assert all(-0.05 <= difference < 0 for difference in bm3d_profiles.differences(pick, standard).values())
    assert pick.ratio < 0.6
