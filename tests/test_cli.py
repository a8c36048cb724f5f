"""The command line as a user meets it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=cwd or REPO,
                          env=env, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_list_shows_methods_kind_and_status():
    result = bench("list")
    assert result.returncode == 0
    assert "noisy  [reference]  ready" in result.stdout


def test_run_on_pairs_prints_table_and_writes_run_folder(pair_folder, tmp_path):
    result = bench("run", "--methods", "noisy", "--data", str(pair_folder), "--out", str(tmp_path / "out"),
                   "--limit", "2", "--save-outputs")
    assert result.returncode == 0, result.stderr
    assert "| noisy |" in result.stdout and "| method | Score |" in result.stdout
    # one progress line per result, in the order they finish (2 workers by default on a 2-core machine)
    assert "[2/2] image " in result.stderr and "image 0 noisy" in result.stderr and "image 1 noisy" in result.stderr
    run_dirs = list((tmp_path / "out" / "pairs").iterdir())
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    for name in ["per_image.csv", "summary.csv", "summary.md", "run.json", "outputs/noisy/0.dng",
                 "outputs/noisy/1.dng"]:
        assert (run_dir / name).is_file(), name
    record = json.loads((run_dir / "run.json").read_text())
    assert record["command"].endswith("-m bench run --methods noisy --data " + str(pair_folder) + " --out "
                                      + str(tmp_path / "out") + " --limit 2 --save-outputs")


def test_run_on_the_embedded_set_without_data(tmp_path):
    """The README's command takes no --data: the embedded set, at the competition's levels."""
    result = bench("run", "--methods", "noisy", "--limit", "1", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "| noisy |" in result.stdout
    assert_one_line_error(bench("run", "--methods", "noisy", "--limit", "1", "--white-level", "4095"),
                          "--black-level/--white-level", "other levels go with --data")


def test_unknown_method(tmp_path):
    assert_one_line_error(bench("run", "--methods", "bm4d_magic", "--out", str(tmp_path)),
                          "unknown method 'bm4d_magic'", "Known methods: ", "noisy")


def test_missing_dataset_folder(tmp_path):
    assert_one_line_error(bench("run", "--methods", "noisy", "--data", str(tmp_path / "nope")),
                          str(tmp_path / "nope"), "not found")


def test_folder_with_no_pairs(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(bench("run", "--methods", "noisy", "--data", str(tmp_path / "empty")),
                          "empty", "no images found")


def test_truncated_file_stops_before_any_work(pair_folder, tmp_path):
    path = pair_folder / "ground truth" / "2_gt.dng"
    path.write_bytes(path.read_bytes()[:3000])
    result = bench("run", "--methods", "noisy", "--data", str(pair_folder), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "2_gt.dng", "truncated")
    assert not (tmp_path / "out").exists()


def test_unreadable_dng(pair_folder):
    (pair_folder / "noisy" / "1_noise.dng").write_bytes(b"not a dng at all")
    assert_one_line_error(bench("run", "--methods", "noisy", "--data", str(pair_folder)),
                          "1_noise.dng", "not a readable DNG")


def test_size_mismatch(pair_folder):
    from bench.core.rawio import write_dng_standalone
    from tests.helpers import smooth_clean_mosaic

    write_dng_standalone(smooth_clean_mosaic(32, 96, 0), pair_folder / "ground truth" / "0_gt.dng")
    assert_one_line_error(bench("run", "--methods", "noisy", "--data", str(pair_folder)),
                          "0_noise.dng", "does not match ground truth")


def test_test_folder_cannot_be_scored(tmp_path):
    from bench.core.rawio import write_dng_standalone
    from tests.helpers import smooth_clean_mosaic

    write_dng_standalone(smooth_clean_mosaic(32, 32, 0), tmp_path / "noisy0.dng")
    assert_one_line_error(bench("run", "--methods", "noisy", "--data", str(tmp_path)), "has no ground truth")


@pytest.mark.parametrize("content, fragment", [
    (None, "cannot read params file"),
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"nosy": {}}', "unknown method 'nosy'"),
    ('{"noisy": {"strength": 2}}', "method 'noisy' has no parameter 'strength'"),
])
def test_bad_params_file(pair_folder, tmp_path, content, fragment):
    params = tmp_path / "params.json"
    if content is not None:
        params.write_text(content)
    result = bench("run", "--methods", "noisy", "--data", str(pair_folder), "--params", str(params),
                   "--out", str(tmp_path / "out"))
    assert_one_line_error(result, fragment)


def test_oracle_needs_true_profiles(pair_folder):
    (pair_folder / "noise_profile.csv").unlink()
    assert_one_line_error(bench("run", "--methods", "noisy", "--data", str(pair_folder), "--noise", "oracle"),
                          "--noise oracle needs the true profile")


def test_exit_status_1_when_nothing_succeeded(pair_folder, tmp_path):
    """Every (method, image) failing is a failed run; the tables are still written."""
    (pair_folder / "noise_profile.csv").unlink()
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "sitecustomize.py").write_text(
        "from dataclasses import dataclass\n"
        "from methods.base import Method\n"
        "from methods.registry import register_method\n"
        "@register_method('_always_fails')\n"
        "@dataclass\n"
        "class AlwaysFails(Method):\n"
        "    '''Fails.'''\n"
        "    def denoise(self, raw):\n"
        "        raise ValueError('no')\n")
    env = dict(os.environ, PYTHONPATH=f"{plugin}{os.pathsep}{REPO}")
    result = subprocess.run([sys.executable, "-m", "bench", "run", "--methods", "_always_fails", "--data",
                             str(pair_folder), "--out", str(tmp_path / "out")], capture_output=True, text=True,
                            cwd=REPO, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "FAILED: ValueError: no" in result.stderr
    assert list((tmp_path / "out" / "pairs").glob("*/summary.md"))


def test_tune_writes_a_params_file_that_run_loads(pair_folder, tmp_path):
    out = tmp_path / "tuned" / "bilateral.json"
    result = bench("tune", "--method", "bilateral", "--data", str(pair_folder), "--noise", "oracle", "--grid", "2",
                   "--limit", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "bilateral: sigma_color=" in result.stdout and "mean Score" in result.stdout
    params = json.loads(out.read_text())
    assert set(params) == {"bilateral"} and {"sigma_color", "sigma_space", "diameter"} <= set(params["bilateral"])
    assert (tmp_path / "tuned" / "bilateral.trials.csv").is_file()
    run = bench("run", "--methods", "bilateral", "--data", str(pair_folder), "--noise", "oracle", "--limit", "2",
                "--params", str(out), "--out", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stderr
    record = json.loads(next((tmp_path / "runs" / "pairs").glob("*/run.json")).read_text())
    assert record["methods"]["bilateral"]["params"] == params["bilateral"]


def test_tune_unknown_method():
    assert_one_line_error(bench("tune", "--method", "bilatteral"), "unknown method 'bilatteral'")


def test_noise_writes_csv_and_prints_final_round_score(pair_folder, tmp_path):
    csv_path = tmp_path / "profiles.csv"
    result = bench("noise", "--data", str(pair_folder), "--csv", str(csv_path))
    assert result.returncode == 0, result.stderr
    assert "final-round score:" in result.stdout
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "image,a,b,units,black,white" and [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]
    a_values = [float(line.split(",")[1]) for line in lines[1:]]
    assert all(1e-4 <= a <= 1e-2 for a in a_values)


def test_noise_without_true_profiles_prints_no_score(pair_folder):
    (pair_folder / "noise_profile.csv").unlink()
    result = bench("noise", "--data", str(pair_folder))
    assert result.returncode == 0, result.stderr
    assert "final-round score" not in result.stdout and "true a" not in result.stdout


def test_list_says_burst_methods_run_on_one_frame_without_burst():
    result = bench("list", "burst_*")
    assert result.returncode == 0
    assert "burst_merge  [burst]" in result.stdout
    assert "without --burst it runs on a one-frame burst" in result.stdout


def test_burst_run_from_the_command_line(pair_folder, tmp_path):
    result = bench("run", "--methods", "noisy,burst_mean", "--data", str(pair_folder), "--out", str(tmp_path),
                   "--burst", "3", "--burst-motion", "1.5", "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert "3-frame bursts" in result.stderr and "burst_mean" in result.stdout


def test_burst_needs_at_least_one_frame(pair_folder):
    assert_one_line_error(bench("run", "--methods", "noisy", "--data", str(pair_folder), "--burst", "0"),
                          "--burst must be at least 1")


def test_speed_measures_each_method_in_its_own_process(tmp_path):
    result = bench("speed", "--methods", "noisy,bilateral", "--size", "256x320", "--csv", str(tmp_path / "s.csv"))
    assert result.returncode == 0, result.stderr
    import pandas as pd

    table = pd.read_csv(tmp_path / "s.csv")
    # bilateral is followed by OpenCV's filter called directly on the same frame, and compared with it
    assert list(table["method"]) == ["noisy", "bilateral", "cv2.bilateralFilter (direct)"]
    assert (table["seconds"] >= 0).all() and (table["peak_gb"] > 0).all()
    assert (table["height"] == 256).all()
    bilateral, direct = table.iloc[1], table.iloc[2]
    assert bilateral["vs_direct"] == pytest.approx(bilateral["mp_per_second"] / direct["mp_per_second"])


def test_speed_rejects_a_bad_size():
    assert_one_line_error(bench("speed", "--methods", "noisy", "--size", "big"), "--size must look like")
