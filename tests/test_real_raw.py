"""Real captures as training content and validation pairs (bench.real_raw, bench train --raw-dir,
bench raw-pairs), on tiny DNGs the tests write: any Bayer pattern and levels, cropped to BGGR."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from bench.core.errors import BenchError
from bench.core.rawio import read_dng, write_dng_standalone
from bench.real_raw import (NOISE_GROUPS, bggr_crop, list_captures, load_capture, split_captures,
                            validation_pairs, write_pair_folder)
from tests.test_cli import bench


def _scene(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth-plus-texture scene in [0, 1] as an ``(height, width)`` mosaic."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    return np.clip(0.3 + 0.2 * np.sin(xs / 5.0 + seed) * np.cos(ys / 7.0) + 0.05 * rng.random((height, width)), 0, 1)


def _write_capture(path, cfa: str, black: int, white: int, scene: np.ndarray) -> np.ndarray:
    mosaic = np.round(black + scene * (white - black)).astype(np.uint16)
    write_dng_standalone(mosaic, path, cfa=cfa, black_level=black, white_level=white)
    return mosaic


@pytest.fixture
def captures(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    _write_capture(folder / "a_grbg_8bit.dng", "GRBG", 12, 255, _scene(160, 192, 1))
    _write_capture(folder / "b_rggb.dng", "RGGB", 2048, 15000, _scene(160, 192, 2))
    _write_capture(folder / "c_dark.dng", "BGGR", 1024, 16383, 0.1 * _scene(160, 192, 3))
    return folder


@pytest.mark.parametrize("cfa", ["BGGR", "GBRG", "GRBG", "RGGB"])
def test_the_crop_of_any_bayer_pattern_is_bggr(cfa):
    rows, cols = bggr_crop(cfa, (8, 10))
    layout = np.array([[cfa[0], cfa[1]], [cfa[2], cfa[3]]])
    cropped = np.tile(layout, (4, 5))[rows, cols]
    assert cropped.shape[0] % 2 == 0 and cropped.shape[1] % 2 == 0
    assert "".join(cropped[:2, :2].ravel()) == "BGGR"


def test_a_capture_is_normalised_by_its_own_levels_and_moved_to_competition_units(captures):
    capture = load_capture(captures / "b_rggb.dng")
    raw = read_dng(captures / "b_rggb.dng")
    assert capture.cfa == "RGGB" and capture.crop == (1, 1) and capture.gain == 1.0
    assert capture.gt.shape == (raw.mosaic.shape[0] - 2, raw.mosaic.shape[1] - 2)
    own = (raw.mosaic[1:-1, 1:-1].astype(np.float64) - 2048) / (15000 - 2048)
    competition = (capture.gt.astype(np.float64) - 1024) / (16383 - 1024)
    assert np.abs(competition - own).max() < 1.5 / (16383 - 1024)  # truncation to whole DN


def test_an_underexposed_capture_is_scaled_up(captures):
    dark = load_capture(captures / "c_dark.dng")
    normalised = (dark.gt.astype(np.float64) - 1024) / (16383 - 1024)
    assert dark.gain > 1.5 and abs(np.percentile(normalised, 99.9) - 0.9) < 0.01
    assert "scaled x" in dark.describe()


def test_the_hold_out_is_named_or_the_last_capture(captures):
    paths = list_captures([captures])
    assert [p.stem for p in split_captures(paths, [])[1]] == ["c_dark"]
    training, held = split_captures(paths, ["a_grbg_8bit"])
    assert [p.stem for p in held] == ["a_grbg_8bit"] and len(training) == 2
    with pytest.raises(BenchError, match="--raw-hold-out nope: no such capture"):
        split_captures(paths, ["nope"])
    with pytest.raises(BenchError, match="none is left to train on"):
        split_captures(paths[:1], [paths[0].stem])


def test_validation_pairs_cover_the_five_noise_groups_and_are_fixed(captures):
    capture = load_capture(captures / "a_grbg_8bit.dng")
    first, again = validation_pairs([capture], 64, seed=3), validation_pairs([capture], 64, seed=3)
    assert [p["group"] for p in first] == [0, 1, 2, 3, 4]
    assert all(np.array_equal(x["noisy"], y["noisy"]) for x, y in zip(first, again))
    assert first[0]["noisy"].shape == (32, 32, 4)


def test_pair_folder_is_a_competition_dataset_with_true_profiles(captures, tmp_path):
    out = tmp_path / "pairs"
    recipe = write_pair_folder([load_capture(captures / "b_rggb.dng")], out, side=64)
    assert len(recipe) == len(NOISE_GROUPS)
    with (out / "noise_profile.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["a"]) for r in rows] == [a for a, _ in NOISE_GROUPS]
    assert read_dng(out / "noisy" / "0_noise.dng").mosaic.shape == (64, 64)
    assert json.loads((out / "recipe.json").read_text())["images"][0]["cfa"] == "RGGB"
    with pytest.raises(BenchError, match="already holds a pair folder"):
        write_pair_folder([load_capture(captures / "b_rggb.dng")], out)


def test_raw_pairs_command_writes_a_folder_bench_run_scores(captures, tmp_path):
    out = tmp_path / "pairs"
    made = bench("raw-pairs", "--raw-dir", str(captures), "--only", "a_grbg_8bit", "--side", "64", "--out", str(out))
    assert made.returncode == 0, made.stderr
    assert "wrote 5 pairs" in made.stdout
    run = bench("run", "--data", str(out), "--methods", "noisy", "--noise", "oracle", "--out", str(tmp_path / "r"),
                "--workers", "1")
    assert run.returncode == 0, run.stderr


def test_train_from_raw_captures_validates_per_noise_group_and_resumes(captures, tmp_path):
    pytest.importorskip("torch")
    from bench.train import TrainConfig, train
    from methods.toolkit.checkpoint import Checkpoint

    config = TrainConfig("dncnn", tmp_path / "run", steps=2, raw_dirs=[captures], raw_hold_out=["b_rggb"],
                         net_config={"depth": 3, "features": 8}, batch=2, patch=16, val_every=1, raw_val_side=64,
                         loss="l1_sigma")
    messages: list[str] = []
    best = train(config, log=messages.append)
    assert any("raw " in m and "g0 " in m and "g4 " in m for m in messages if m.startswith("validation"))
    card = Checkpoint.load(best).card
    assert set(card["validation"]["per_set_and_group"]["raw"]) == {"all", "0", "1", "2", "3", "4"}
    assert any("real captures, 100% of the patches" in s for s in card["training_data"])
    resumed = train(TrainConfig("dncnn", tmp_path / "run", steps=3, raw_dirs=[captures], raw_hold_out=["b_rggb"],
                                batch=2, patch=16, val_every=1, raw_val_side=64, resume=True), log=messages.append)
    assert Checkpoint.load(tmp_path / "run" / "last.pt").training.step == 3 and resumed.is_file()


def test_raw_and_synthetic_sources_mix_in_the_stated_ratio(captures, tmp_path):
    from bench.training_data import MixedSampler

    class Constant:
        def __init__(self, value):
            self.value = value

        def sample(self, rng):
            return self.value

    mixed = MixedSampler([Constant(0), Constant(1)], [0.25, 0.75])
    rng = np.random.default_rng(0)
    drawn = [mixed.sample(rng) for _ in range(4000)]
    assert abs(np.mean(drawn) - 0.75) < 0.03


def test_l1_sigma_weighs_low_and_high_noise_samples_alike():
    torch = pytest.importorskip("torch")
    from bench.core.noise_model import NoiseProfile
    from bench.train import TrainConfig, noise_sigma, training_loss

    clean = np.full((2, 4, 8, 8), 0.5, dtype=np.float32)
    profiles = [NoiseProfile(1e-4, 1e-6), NoiseProfile(1e-2, 1e-3)]
    sigma = noise_sigma(clean, profiles)
    # each sample off by one of its own noise stds: equal losses, where plain L1 is ~10x apart
    output = clean + sigma
    config = TrainConfig("dncnn", None, loss="l1_sigma")
    per_sample = [float(training_loss(torch.from_numpy(output[i:i + 1]), torch.from_numpy(clean[i:i + 1]), config,
                                      torch.from_numpy(sigma[i:i + 1]))) for i in range(2)]
    assert per_sample[0] == pytest.approx(1.0, rel=1e-4) and per_sample[1] == pytest.approx(1.0, rel=1e-4)
