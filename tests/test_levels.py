"""Any camera's levels (``--levels competition|file``): per-channel black levels read from the DNG tags and
written back, 10-bit data scored with its own white level, the warning the competition's fixed levels give
for files tagged otherwise, noisy and ground truth that disagree, and run / export / verify of an RGGB set
at other levels. Every file is written by the tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.core.levels import LevelPolicy, Levels
from bench.core.rawio import pack, read_dng, write_dng, write_dng_standalone
from bench.datasets import GT_DIR, NOISY_DIR, open_dataset
from bench.runner import RunConfig, run_benchmark
from tests.helpers import write_pair_folder

REPO = Path(__file__).resolve().parent.parent
PER_PLANE = (60, 64, 68, 72)


def rawpy_levels(path: Path) -> tuple[list[int], int, list[list[int]], str]:
    """What rawpy itself reads: black_level_per_channel, white_level, raw_pattern and color_desc."""
    import rawpy

    with rawpy.imread(str(path)) as raw:
        return (list(raw.black_level_per_channel), int(raw.white_level), raw.raw_pattern.tolist(),
                raw.color_desc.decode())


def bench(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=300)


def test_per_channel_black_levels_are_read_and_round_tripped(tmp_path):
    """Four black levels written as a 2x2 BlackLevelRepeatDim come back from rawpy per channel; mapped to the
    packed planes through raw_pattern they are the four written, in plane order, for every CFA; the frame is
    normalised plane by plane, and writing it back keeps CFA and levels."""
    mosaic = np.random.default_rng(1).integers(80, 4000, size=(64, 96), dtype=np.uint16)
    for cfa in ("RGGB", "BGGR", "GRBG", "GBRG"):
        path = tmp_path / f"{cfa}.dng"
        write_dng_standalone(mosaic, path, cfa=cfa, black_level=PER_PLANE, white_level=4095)
        per_channel, white, pattern, colors = rawpy_levels(path)
        assert [per_channel[pattern[r][c]] for r, c in ((0, 0), (0, 1), (1, 0), (1, 1))] == list(PER_PLANE)
        assert white == 4095 and "".join(colors[pattern[r][c]] for r, c in ((0, 0), (0, 1), (1, 0), (1, 1))) == cfa
        image = read_dng(path, LevelPolicy("file"))
        assert (image.cfa, image.levels) == (cfa, Levels(PER_PLANE, 4095))
        packed = image.normalized_packed()
        for k, black in enumerate(PER_PLANE):
            expected = np.clip((pack(mosaic)[..., k].astype(np.float32) - np.float32(black))
                               / np.float32(4095 - black), 0, 1)
            assert np.array_equal(packed[..., k], expected)
        # written back from a method's output in the file's own levels, by the standalone writer
        out = image.levels.denormalize(packed)
        assert all((out[..., k] >= b).all() for k, b in enumerate(PER_PLANE)) and out.max() <= 4095
        again = tmp_path / f"{cfa}-out.dng"
        assert write_dng(mosaic, again, cfa=image.cfa, black_level=image.black_level, white_level=4095) == "standalone"
        assert rawpy_levels(again) == (per_channel, white, pattern, colors)
        assert read_dng(again, LevelPolicy("file")).levels == image.levels
    # the competition reads the same file with its fixed levels, whatever the tags say
    assert read_dng(tmp_path / "RGGB.dng").levels == Levels.of(1024, 16383)


def test_ten_bit_data_runs_and_scores_with_data_range_1023(monkeypatch, tmp_path):
    """A 10-bit set (black 64, white 1023 in the tags) under --levels file: every output stays in [64, 1023],
    is saved in those levels, and its PSNR is the one skimage gives with data_range=1023; the blind estimate
    is made with one DN of that range as its step. Under the competition's levels the same set is refused."""
    from skimage.metrics import peak_signal_noise_ratio

    from bench import evaluation

    data = write_pair_folder(tmp_path / "ten-bit", count=2, black_level=64, white_level=1023)
    with pytest.raises(BenchError, match=r"below the black level 1024.*--levels file"):
        open_dataset(data).check_files()
    steps = []
    original = evaluation.estimate_noise

    def recording(packed, *, step):
        steps.append(step)
        return original(packed, step=step)

    monkeypatch.setattr(evaluation, "estimate_noise", recording)
    result = run_benchmark(RunConfig(["noisy", "bilateral"], open_dataset(data, levels="file"), out_root=tmp_path,
                                     save_outputs=True, workers=1), log=lambda message: None)
    assert steps == [1.0 / (1023 - 64)] * 2
    per_image = pd.read_csv(result.run_dir / "per_image.csv", dtype={"image": str})
    assert (per_image["status"] == "ok").all()
    for row in per_image.itertuples():
        out = read_dng(result.run_dir / "outputs" / row.method / f"{row.image}.dng", LevelPolicy("file"))
        gt = read_dng(data / GT_DIR / f"{row.image}_gt.dng", LevelPolicy("file"))
        assert out.levels == gt.levels == Levels.of(64, 1023)
        assert 64 <= out.mosaic.min() and out.mosaic.max() <= 1023
        expected = peak_signal_noise_ratio(gt.mosaic, out.mosaic, data_range=1023)
        assert row.psnr == pytest.approx(expected, abs=1e-9)
        assert abs(peak_signal_noise_ratio(gt.mosaic, out.mosaic, data_range=16383) - row.psnr) > 20
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["levels"]["mode"] == "file"
    assert record["dataset"]["black_level"] is None and record["dataset"]["white_level"] is None
    assert record["levels"]["files"]["noisy/0_noise.dng"] == {"black": [64] * 4, "white": 1023}
    assert set(record["levels"]["files"]) == {f"{folder}/{i}_{kind}.dng" for i in "01"
                                              for folder, kind in ((NOISY_DIR, "noise"), (GT_DIR, "gt"))}
    noise = pd.read_csv(result.run_dir / "noise.csv", dtype={"image": str, "black": str})
    assert list(noise[["units", "black", "white"]].iloc[0]) == ["x = (raw - black) / (white - black)", "64", 1023]


def test_competition_levels_warn_once_per_file_whose_tags_disagree(tmp_path):
    """Under --levels competition a file tagged with other levels is normalised with 1024/16383 all the
    same (its scores are those of the identically-valued file tagged 1024/16383, bit for bit), and each such
    file gets one warning line naming it and its tag values."""
    tagged = write_pair_folder(tmp_path / "tagged", count=2)
    plain = write_pair_folder(tmp_path / "plain", count=2)
    for path in sorted(tagged.rglob("*.dng")):  # same pixels, other tags
        write_dng_standalone(read_dng(path).mosaic, path, black_level=512, white_level=15000)
    logs = {}
    tables = {}
    for name, folder in (("tagged", tagged), ("plain", plain)):
        lines = []
        result = run_benchmark(RunConfig(["noisy", "bilateral"], open_dataset(folder), out_root=tmp_path / name,
                                         workers=1), log=lines.append)
        logs[name] = [line for line in lines if line.startswith("warning: ")]
        tables[name] = pd.read_csv(result.run_dir / "per_image.csv")
    assert logs["plain"] == []
    files = sorted(tagged.rglob("*.dng"))
    assert len(logs["tagged"]) == len(files) == 4
    for path in files:
        [line] = [line for line in logs["tagged"] if str(path) in line]
        assert "black 512, white 15000" in line and "black 1024, white 16383" in line and "--levels file" in line
    columns = ["method", "image", "psnr", "ssim", "ssim_col", "score"]
    assert tables["tagged"][columns].equals(tables["plain"][columns])
    record = json.loads((next((tmp_path / "tagged").rglob("run.json"))).read_text())
    assert record["levels"]["files"]["noisy/0_noise.dng"] == {
        "black": [1024] * 4, "white": 16383, "tags": {"black": [512] * 4, "white": 15000}}


def test_noisy_and_ground_truth_with_different_levels_are_an_error_naming_both(tmp_path):
    data = write_pair_folder(tmp_path / "pairs", count=2, black_level=64, white_level=1023)
    gt = data / GT_DIR / "1_gt.dng"
    write_dng_standalone(read_dng(gt).mosaic, gt, black_level=64, white_level=1000)
    dataset = open_dataset(data, levels="file")
    with pytest.raises(BenchError) as caught:
        dataset.check_files()
    message = str(caught.value)
    assert "1_gt.dng" in message and "1_noise.dng" in message and "white 1000" in message and "\n" not in message
    result = bench("run", "--methods", "noisy", "--data", str(data), "--levels", "file", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "1_gt.dng" in result.stderr and "1_noise.dng" in result.stderr


def test_levels_file_runs_exports_and_verifies_an_rggb_set_at_other_levels(tmp_path):
    """An RGGB set with per-channel black levels and a 12-bit white level: `bench run --levels file` saves
    DNGs that rawpy reads back with the inputs' CFA and levels (its report and `bench tune` read the set the
    same way), `bench export --levels file` writes a
    submission whose DNGs do too and which verifies (its script re-run alone reads each input's tags), and
    `bench noise --levels file` says which units its (a, b) are in."""
    data = write_pair_folder(tmp_path / "rggb", count=2, cfa="RGGB", black_level=PER_PLANE, white_level=4095)
    expected = rawpy_levels(data / NOISY_DIR / "0_noise.dng")
    assert expected[2] == [[0, 1], [3, 2]]  # RGGB
    run = bench("run", "--methods", "noisy,bilateral", "--data", str(data), "--levels", "file", "--save-outputs",
                "--out", str(tmp_path / "runs"), "--workers", "1")
    assert run.returncode == 0, run.stderr
    assert "warning" not in run.stderr
    run_dir = next((tmp_path / "runs" / "rggb").iterdir())
    for method in ("noisy", "bilateral"):
        for image in "01":
            assert rawpy_levels(run_dir / "outputs" / method / f"{image}.dng") == expected
    assert "- levels: file (black from each file's DNG tags, white from each file's DNG tags)" in \
        (run_dir / "summary.md").read_text()
    report = bench("report", str(run_dir), "--levels", "file")
    assert report.returncode == 0, report.stderr
    assert (run_dir / "report.html").is_file()
    other = bench("report", str(run_dir), "--levels", "competition")
    assert other.returncode == 2 and "was scored with --levels file" in other.stderr
    tuned = bench("tune", "--method", "bilateral", "--data", str(data), "--levels", "file", "--grid", "2",
                  "--out", str(tmp_path / "tuned.json"))
    assert tuned.returncode == 0, tuned.stderr
    assert "warning" not in tuned.stderr and (tmp_path / "tuned.json").is_file()

    out = tmp_path / "submission" / "result"
    export = bench("export", "--method", "bilateral", "--data", str(data), "--levels", "file", "--out", str(out))
    assert export.returncode == 0, export.stdout + export.stderr
    assert "verified:" in export.stdout
    for image in "01":
        assert rawpy_levels(out / "data" / f"denoise{image}.dng") == expected
    record = json.loads((out / "algorithm" / "export.json").read_text())
    assert (record["levels"], record["black_level"], record["white_level"]) == ("file", None, None)
    assert record["inputs"]["files"][0]["black"] == list(PER_PLANE) and record["inputs"]["files"][0]["white"] == 4095
    script = (out / "algorithm" / "models" / "alg.py").read_text()
    assert "LEVELS = LevelPolicy(mode='file', black=None, white=None)" in script
    verify = bench("verify", str(out))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    wrong = bench("verify", str(out), "--levels", "competition")
    assert wrong.returncode == 1 and "levels is 'file', but --levels competition was given" in wrong.stdout

    csv_path = tmp_path / "profiles.csv"
    noise = bench("noise", "--data", str(data), "--levels", "file", "--csv", str(csv_path))
    assert noise.returncode == 0, noise.stderr
    assert "a, b: var = a*x + b of x = (raw - black) / (white - black), each file normalised by its own levels" \
        in noise.stdout
    table = pd.read_csv(csv_path, dtype={"black": str})
    assert list(table.columns) == ["image", "a", "b", "units", "black", "white"]
    assert list(table["black"]) == ["60/64/68/72"] * 2 and list(table["white"]) == [4095] * 2


def test_a_learned_export_of_an_rggb_set_verifies(tmp_path):
    """The exported network.py hands the input's CFA to the network as the harness does, so its re-run
    alone writes the same bytes (before: it treated every input as BGGR, and verify failed on an RGGB set)."""
    data = write_pair_folder(tmp_path / "rggb", count=2, cfa="RGGB", black_level=PER_PLANE, white_level=4095)
    out = tmp_path / "submission" / "result"
    export = bench("export", "--method", "dncnn", "--data", str(data), "--levels", "file", "--out", str(out))
    assert export.returncode == 0, export.stdout + export.stderr
    assert "verified:" in export.stdout
    expected = rawpy_levels(data / NOISY_DIR / "0_noise.dng")
    assert rawpy_levels(out / "data" / "denoise0.dng") == expected
