"""Proof by twins: the same pixels under another CFA and other levels written in the DNG tags give every
registered method the same denoising gain, with ``--levels file``.

A twin of a BGGR, competition-level dataset drops the first and last row and column (so its CFA is RGGB)
and re-expresses every value in other levels (the same normalised image: ``x = (raw - 1024) / 15359`` becomes
``black + x * (white - black)``, per plane). A method's gain is its mean PSNR minus the noisy input's, which
does not depend on the data range; on a twin it must equal the gain on the original within 0.1 dB. The twin
is scored without the original's outermost rows and columns, where networks do worst; on 130x194 images that
alone moves the networks' gain by 0.1 dB, on the 258x386 images used here by about 0.05 dB. The methods get
the true noise profile (the same in normalised units for both), so that what is compared is the CFA and
level handling, not the blind estimator's response to the cropped border (measured blind, BM3D's gain on
the per-channel twin differs by 0.11 dB, from a 1.3 % different estimate of a on one image).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.levels import Levels
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, normalize, write_dng_standalone
from bench.datasets import GT_DIR, NOISY_DIR, open_dataset
from bench.runner import RunConfig, run_benchmark
from methods.registry import list_methods
from tests.helpers import write_pair_folder

TWIN_LEVELS = {"black 2048, white 15000": (2048, 15000),
               "per-channel black 2040/2048/2056/2064, white 15000": ((2040, 2048, 2056, 2064), 15000)}


def make_twin(source: Path, target: Path, black, white: int) -> Path:
    """The twin of ``source`` (see the module docstring) written under ``target`` as RGGB files."""
    import rawpy

    levels = Levels.of(black, white)
    for folder, suffix in ((GT_DIR, "gt"), (NOISY_DIR, "noise")):
        (target / folder).mkdir(parents=True)
        for path in sorted((source / folder).glob(f"*_{suffix}.dng")):
            with rawpy.imread(str(path)) as raw:
                mosaic = raw.raw_image_visible.copy()
            cropped = mosaic[1:-1, 1:-1]
            twin = levels.denormalize(normalize(cropped, COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL))
            write_dng_standalone(twin, target / folder / path.name, "RGGB", levels.black_level, levels.white)
    shutil.copy(source / "noise_profile.csv", target / "noise_profile.csv")  # (a, b) are in normalised units
    return target


def gains(run_dir: Path) -> pd.Series:
    """Mean PSNR gain over ``noisy`` of every method of a run, in dB."""
    rows = pd.read_csv(run_dir / "per_image.csv")
    assert (rows["status"] == "ok").all(), rows[rows["status"] != "ok"][["method", "image", "error"]]
    psnr = rows.pivot(index="image", columns="method", values="psnr")
    return (psnr.sub(psnr["noisy"], axis=0)).mean()


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    root = write_pair_folder(tmp_path_factory.mktemp("twins") / "original", count=2, height=258, width=386)
    result = run_benchmark(RunConfig(list_methods(), open_dataset(root, levels="file"), noise_mode="oracle",
                                     out_root=root.parent / "runs", fresh=True, workers=1), log=lambda m: None)
    return root, gains(result.run_dir)


@pytest.mark.parametrize("levels", list(TWIN_LEVELS), ids=["uniform-black", "per-channel-black"])
def test_every_method_gains_the_same_on_an_rggb_twin_at_other_levels(original, levels, tmp_path):
    root, expected = original
    black, white = TWIN_LEVELS[levels]
    twin = make_twin(root, tmp_path / "twin", black, white)
    dataset = open_dataset(twin, levels="file")
    result = run_benchmark(RunConfig(list_methods(), dataset, noise_mode="oracle", out_root=tmp_path / "runs",
                                     fresh=True, workers=1), log=lambda m: None)
    measured = gains(result.run_dir)
    table = pd.DataFrame({"original": expected, "twin": measured, "difference": measured - expected})
    assert set(measured.index) == set(list_methods())
    assert (table["difference"].abs() <= 0.1).all(), f"\n{table}"
    single_frame_identity = ["noisy", "burst_mean"]  # burst_mean returns frame 0 of a one-frame burst
    assert (table.drop(index=single_frame_identity)["original"] > 1.0).all(), f"every method denoises\n{table}"
    assert np.isfinite(table.values).all()


def gain_table(folder: Path) -> pd.DataFrame:
    """The README's twin table: every method's gain on the test's original and on both twins."""
    root = write_pair_folder(folder / "original", count=2, height=258, width=386)
    columns = {}
    for name, levels in [("BGGR original", None), *TWIN_LEVELS.items()]:
        data = root if levels is None else make_twin(root, folder / f"twin{len(columns)}", *levels)
        result = run_benchmark(RunConfig(list_methods(), open_dataset(data, levels="file"), noise_mode="oracle",
                                         out_root=folder / "runs", fresh=True, workers=1), log=lambda m: None)
        columns[name if levels is None else f"RGGB {name}"] = gains(result.run_dir)
    return pd.DataFrame(columns).round(3)


if __name__ == "__main__":  # python -m tests.test_twins prints the README's table
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        print(gain_table(Path(scratch)).to_string())
