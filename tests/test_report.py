"""bench report: the HTML page of a run folder (leaderboard, significance, plots, crops) and how a real
headless browser shows it (skipped where no chromium is installed)."""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bench import report
from bench.datasets import open_dataset
from bench.runner import RunConfig, run_benchmark
from methods.base import Method
from tests.helpers import register_for_test, write_pair_folder

REPO = Path(__file__).resolve().parent.parent
_PNG = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _make_run(root: Path, save_outputs: bool, methods: list[str] | None = None) -> Path:
    """A finished run of ``methods`` (default noisy, bilateral) on 4 small pairs under ``root``."""
    pairs = root / "pairs"
    if not pairs.exists():
        write_pair_folder(pairs, count=4)
    config = RunConfig(methods or ["noisy", "bilateral"], open_dataset(pairs), out_root=root / "runs",
                       save_outputs=save_outputs)
    return run_benchmark(config, log=lambda message: None).run_dir


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A run folder without saved outputs (its crops come from the crops.npz the run wrote)."""
    return _make_run(tmp_path_factory.mktemp("report"), save_outputs=False)


def _old_run_folder(run_dir: Path, where: Path) -> Path:
    """A copy of ``run_dir`` as a run written before runs saved their crops (no crops.npz)."""
    shutil.copytree(run_dir, where)
    (where / report.CROPS_FILE).unlink()
    return where


@pytest.fixture(scope="module")
def old_run(tiny_run, tmp_path_factory) -> Path:
    """``tiny_run`` without its crops.npz: the report must re-create the denoised crops."""
    return _old_run_folder(tiny_run, tmp_path_factory.mktemp("old") / "run")


def _no_method_runs(monkeypatch) -> None:
    """Make any attempt of the report to create or run a method fail loudly."""
    import bench.evaluation
    import methods.registry

    def refuse(*args, **kwargs):
        raise AssertionError("the report ran a method")

    monkeypatch.setattr(bench.evaluation, "evaluate", refuse)
    monkeypatch.setattr(methods.registry, "create_method", refuse)


@pytest.fixture(scope="module")
def tiny_report(tiny_run, tmp_path_factory) -> Path:
    return report.write_report(tiny_run, tmp_path_factory.mktemp("html") / "report.html", log=lambda message: None)


def _embedded_pngs(text: str) -> list[np.ndarray]:
    return [cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
            for data in _PNG.findall(text)]


def _rows(method_scores: dict[str, list[float]]) -> pd.DataFrame:
    """A per_image table with the given Scores (image i = position i), every row successful."""
    rows = [{"method": method, "image": str(i), "psnr": 40.0, "ssim": 0.95, "ssim_col": 0.95, "score": score,
             "seconds": 0.1, "megapixels": 1.0, "status": "ok", "error": ""}
            for method, scores in method_scores.items() for i, score in enumerate(scores)]
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------------
# statistics


def test_identical_methods_interval_contains_zero_and_win_rate_is_half():
    scores = list(np.random.default_rng(0).uniform(30, 70, 12))
    comparisons = report.compare_to_best(_rows({"a": scores, "b": scores}), "a", ["a", "b"])
    assert set(comparisons) == {"b"}
    b = comparisons["b"]
    assert b.images == 12 and b.difference == 0.0
    assert b.ci_low <= 0.0 <= b.ci_high
    assert b.win_rate == 0.5


def test_always_worse_by_one_gives_a_point_interval():
    best = [50.0, 61.0, 40.0, 70.0, 55.0]
    comparisons = report.compare_to_best(_rows({"best": best, "worse": [s - 1.0 for s in best]}), "best",
                                         ["best", "worse"])
    worse = comparisons["worse"]
    assert worse.difference == pytest.approx(-1.0)
    assert worse.ci_low == pytest.approx(-1.0) and worse.ci_high == pytest.approx(-1.0)
    assert worse.win_rate == 0.0


def test_bootstrap_is_paired_deterministic_and_covers_the_mean():
    rng = np.random.default_rng(1)
    base = rng.uniform(30, 70, 20)
    other = base + rng.normal(-0.5, 1.0, 20)  # image difficulty cancels in the pairs: a narrow interval
    table = _rows({"best": list(base), "other": list(other)})
    first = report.compare_to_best(table, "best", ["best", "other"])["other"]
    again = report.compare_to_best(table, "best", ["best", "other"])["other"]
    assert first == again
    assert first.ci_low < first.difference < first.ci_high
    assert first.ci_high - first.ci_low < 2.0  # unpaired, the 10-point spread of the images would dominate
    assert first.win_rate == pytest.approx(np.mean(other > base))


def test_only_images_both_methods_succeeded_on_are_paired():
    table = _rows({"best": [60.0, 50.0, 40.0], "other": [59.0, 49.0, 10.0]})
    table.loc[(table["method"] == "other") & (table["image"] == "2"), ["score", "status"]] = [math.nan, "failed"]
    other = report.compare_to_best(table, "best", ["best", "other"])["other"]
    assert other.images == 2 and other.difference == pytest.approx(-1.0)


def test_pareto_front():
    seconds = np.array([0.001, 0.1, 1.0, 10.0, 0.5, math.nan])
    scores = np.array([40.0, 60.0, 65.0, 64.0, 59.0, 90.0])
    assert report.pareto_front(seconds, scores).tolist() == [True, True, True, False, False, False]


def test_noise_groups_by_profile_and_by_level():
    few = pd.DataFrame({"image": ["0", "1", "2", "3"], "a": [1e-3, 1e-4, 1e-3, 1e-2], "b": [1e-5, 1e-6, 1e-5, 1e-3]})
    groups = report.noise_groups(few)
    assert groups["group"].tolist() == [1, 0, 1, 2]
    many = pd.DataFrame({"image": [str(i) for i in range(15)], "a": np.logspace(-4, -2, 15), "b": 1e-5})
    binned = report.noise_groups(many)
    assert binned["group"].tolist() == [i // 3 for i in range(15)]
    assert binned["label"].nunique() == 5


def test_crop_images_hardest_median_easiest_ignore_the_reference():
    table = _rows({"noisy": [99.0, 0.0, 50.0, 20.0], "good": [10.0, 80.0, 40.0, 60.0]})
    assert report.choose_crop_images(table, {"noisy"}) == [("hardest", "0"), ("median", "3"), ("easiest", "1")]


# ---------------------------------------------------------------------------------------------------------
# the page


def test_report_contents(tiny_run, tiny_report):
    text = tiny_report.read_text()
    assert tiny_report.name == "report.html"
    for method in ("noisy", "bilateral"):
        assert f'<td class="text" data-sort="{method}">{method}</td>' in text
    assert "95% CI of ΔScore" in text and "win rate vs best" in text
    summary = pd.read_csv(tiny_run / "summary.csv")
    best, other = summary["method"].tolist()
    row = re.search(rf'<tr[^>]*><td class="text" data-sort="{other}">.*?</tr>', text).group(0)
    assert re.search(r"\[-?\d+\.\d\d, -?\d+\.\d\d\]", row), row
    assert re.search(r"\d+% of 4", row), row
    assert 'data-plot="speed"' in text and 'data-plot="noise"' in text
    assert "Pareto front" in text
    assert "no method was run again" in text and "re-created" not in text
    assert "were cut by the run from the files it scored (crops.npz)" in text
    assert "hardest" in text and "easiest" in text
    # no external resource of any kind
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    assert "http://" not in text and "https://" not in text
    images = _embedded_pngs(text)
    # 2 plots + for 3 crop images: overview, noisy input, 2 methods, ground truth
    assert len(images) == text.count("<img") == 2 + 3 * 5
    for image in images:
        assert image is not None and image.size and image.std() > 1.0


def test_an_old_run_folder_gets_its_crops_by_re_running(tiny_run, old_run, tiny_report):
    """A run folder without crops.npz (written before runs saved their crops): every method is run again
    on the chosen images, and the page shows the same pixels the run's own crops give."""
    messages = []
    text = report.render_report(old_run, log=messages.append)
    assert "re-created by running each method again" in text
    assert "PSNR equals the one the run recorded" in text  # the re-run reproduces the scored results
    assert "The dataset files match the fingerprint" in text
    assert sum("re-running" in message for message in messages) == 3 * 2
    assert _PNG.findall(text)[2:] == _PNG.findall(tiny_report.read_text())[2:]  # every crop, bit for bit


def test_the_report_of_a_run_runs_no_method(tiny_run, monkeypatch):
    """The crops come from the run's crops.npz: the report neither creates nor runs a method."""
    _no_method_runs(monkeypatch)
    messages = []
    text = html.unescape(report.render_report(tiny_run, log=messages.append))
    assert text.count('class="crop"') == 3 * 4 and "no image" not in text
    assert not [message for message in messages if "re-running" in message]


def test_a_cached_rerun_still_saves_the_crops(tmp_path, monkeypatch):
    """A run whose every result comes from the cache writes the same crops.npz, so its report runs no
    method either."""
    first = _make_run(tmp_path, save_outputs=False)
    pairs = tmp_path / "pairs"
    again = run_benchmark(RunConfig(["noisy", "bilateral"], open_dataset(pairs), out_root=tmp_path / "again"),
                          log=lambda message: None)
    assert again.cached == 8
    with np.load(first / report.CROPS_FILE) as a, np.load(again.run_dir / report.CROPS_FILE) as b:
        assert a.files == b.files and all(np.array_equal(a[name], b[name]) for name in a.files)
    _no_method_runs(monkeypatch)
    text = html.unescape(report.render_report(again.run_dir, log=lambda message: None))
    assert text.count('class="crop"') == 3 * 4 and "no method was run again" in text


def test_saved_outputs_are_used(tmp_path):
    run_dir = _make_run(tmp_path, save_outputs=True)
    text = html.unescape(report.render_report(run_dir, log=lambda message: None))
    assert "come from the run itself (crops.npz)" in text  # the run's crops first
    old = _old_run_folder(run_dir, tmp_path / "old")
    text = html.unescape(report.render_report(old, log=lambda message: None))
    assert "come from the run's saved outputs" in text
    assert "re-created" not in text


def test_a_damaged_crops_file_falls_back_to_the_dataset(tiny_run, tmp_path):
    damaged = tmp_path / "run"
    shutil.copytree(tiny_run, damaged)
    (damaged / report.CROPS_FILE).write_bytes(b"not a zip file")
    text = html.unescape(report.render_report(damaged, log=lambda message: None))
    assert "crops.npz: not a crops file this version reads" in text
    assert "re-created by running each method again" in text
    assert text.count('class="crop"') == 3 * 4


def test_a_result_crop_is_what_the_page_renders_of_the_whole_mosaic():
    """The crop a task sends back (as the cache stores it) renders exactly as the whole output would, and a
    malformed one is refused."""
    from bench.core.levels import Levels
    from bench.core.rawio import pack_normalized
    from bench.report.saved_crops import crop_from_fact

    rng = np.random.default_rng(3)
    gt = rng.integers(1024, 16383, size=(300, 410), dtype=np.uint16)
    out = rng.integers(1024, 16383, size=gt.shape, dtype=np.uint16)
    fact = report.result_crop(out, gt, Levels.of(1024, 16383))
    assert set(fact) == {"window", "origin", "shape", "pixels"} and len(json.dumps(fact)) < 60_000
    crop = crop_from_fact(json.loads(json.dumps(fact)))
    assert crop.window == report.detail_window(pack_normalized(gt, 1024, 16383))
    assert crop.pixels.shape == (report.CROP_SIZE + 2 * report.CROP_MARGIN,) * 2  # an inner window
    rendering = report.Rendering((1.5, 1.0, 2.0))
    whole = report.render_window(out, "RGGB", crop.window, 1024, 16383, rendering)
    assert np.array_equal(crop.render("RGGB", 1024, 16383, rendering), whole)
    for broken in ({**fact, "pixels": fact["pixels"][:-8]}, {**fact, "window": [1, 0, 128, 128]},
                   {**fact, "shape": [2, 2]}, {**fact, "origin": [-2, 0]}, "text"):
        with pytest.raises(ValueError):
            crop_from_fact(broken)


def test_the_numpy_thumbnail_and_png_agree_with_opencv():
    """The report draws without OpenCV (a run writes its crops in the main process, which must stay light):
    area shrinking matches INTER_AREA but for rare rounding ties, and its PNGs decode to the same pixels."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:500, 0:333]
    smooth = (np.stack([np.sin(xx / 17.0), np.cos(yy / 23.0), np.sin((xx + yy) / 9.0)], axis=-1) + 1) * 127
    for image in (rng.integers(0, 256, (500, 333, 3), dtype=np.uint8), smooth.astype(np.uint8)):
        ours = report.area_resize(image, 240, 160)
        theirs = cv2.resize(image, (160, 240), interpolation=cv2.INTER_AREA)
        assert np.abs(ours.astype(int) - theirs).max() <= 1 and (ours != theirs).mean() < 1e-3
        decoded = cv2.imdecode(np.frombuffer(report.png_bytes(ours), np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(decoded[..., ::-1], ours)
    assert np.array_equal(report.area_resize(image, 500, 333), image)


def test_unreachable_dataset_still_renders_the_rest(tiny_run, tmp_path):
    moved = tmp_path / "run"
    shutil.copytree(tiny_run, moved)
    record = json.loads((moved / "run.json").read_text())
    record["dataset"]["root"] = str(tmp_path / "gone")
    (moved / "run.json").write_text(json.dumps(record))
    text = html.unescape(report.render_report(moved, log=lambda message: None))
    assert text.count('class="crop"') == 3 * 4  # the run's own crops need no dataset
    assert "estimated by the run (noise.csv)" in text
    old = _old_run_folder(moved, tmp_path / "old")
    text = html.unescape(report.render_report(old, log=lambda message: None))
    assert "Crops are missing: the run's dataset cannot be opened" in text and "gone" in text
    assert "estimated by the run (noise.csv)" in text
    assert 'data-plot="speed"' in text and 'data-plot="noise"' in text
    assert 'class="crop"' not in text


def test_methods_that_fail_get_placeholders(tmp_path, monkeypatch):
    @dataclass
    class _Raises(Method):
        """Always raises."""

        def denoise(self, raw):
            raise RuntimeError("boom")

    register_for_test(monkeypatch, "raises_for_report", _Raises)
    run_dir = _make_run(tmp_path, save_outputs=False, methods=["noisy", "bilateral", "raises_for_report"])
    record = json.loads((run_dir / "run.json").read_text())
    record["methods"]["bilateral"]["params"] = {"no_such_parameter": 1}  # cannot be re-created any more
    (run_dir / "run.json").write_text(json.dumps(record))
    text = html.unescape(report.render_report(run_dir, log=lambda message: None))
    assert "failed in the run: RuntimeError: boom" in text
    assert text.count('class="crop"') == 3 * 4  # the run's crops: bilateral needs no re-creating
    old = _old_run_folder(run_dir, tmp_path / "old")
    text = html.unescape(report.render_report(old, log=lambda message: None))
    assert "failed in the run: RuntimeError: boom" in text
    assert "no image: cannot re-create bilateral: method 'bilateral' has no parameter 'no_such_parameter'" in text
    assert text.count('class="crop"') == 3 * 3  # noisy input, noisy, ground truth for each image


def test_cli_report_and_errors(tiny_run, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = tmp_path / "elsewhere" / "page.html"
    done = subprocess.run([sys.executable, "-m", "bench", "report", str(tiny_run), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and str(out) in done.stdout
    missing = subprocess.run([sys.executable, "-m", "bench", "report", str(tmp_path / "nope")],
                             capture_output=True, text=True, env=env, timeout=300)
    assert missing.returncode == 2
    assert [line for line in missing.stderr.splitlines() if line.strip()] == [
        f"error: {tmp_path / 'nope'}: run folder not found"]


def test_run_with_report_flag(tmp_path):
    pairs = write_pair_folder(tmp_path / "pairs", count=2)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--methods", "noisy", "--data", str(pairs),
                           "--out", str(tmp_path / "out"), "--report"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    (run_dir,) = (tmp_path / "out" / "pairs").iterdir()
    assert (run_dir / "report.html").is_file() and (run_dir / "per_image.csv").is_file()


def test_report_failure_after_a_run_is_one_line_and_keeps_the_tables(tiny_run, monkeypatch, capsys):
    from bench import cli

    def broken(run_dir, out=None, log=None):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(report, "write_report", broken)
    cli.report_after_run(tiny_run, interrupted=False)
    assert capsys.readouterr().err == f"error: {tiny_run / 'report.html'}: report not written (disk on fire)\n"
    assert (tiny_run / "per_image.csv").is_file()


# ---------------------------------------------------------------------------------------------------------
# in a real browser


def _browser() -> str:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium installed (.ci/run installs it); the browser test needs one")
    return browser


def _chromium(browser: str, page: Path, scratch: Path, *options: str) -> subprocess.CompletedProcess:
    """Open ``page`` in headless chromium with a fresh profile, console messages logged to stderr."""
    profile = tempfile.mkdtemp(dir=scratch, prefix="profile-")
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *options,
               page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=scratch)


def _console_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stderr.splitlines() if "CONSOLE" in line]


def test_page_in_headless_chromium(tiny_run, tiny_report, tmp_path):
    browser = _browser()
    # the check itself works: a page with a console error and an uncaught exception is caught
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><script>console.error('x'); notDefined();</script></body></html>")
    assert len(_console_lines(_chromium(browser, broken, tmp_path, "--dump-dom"))) == 2

    text = tiny_report.read_text()
    loaded = _chromium(browser, tiny_report, tmp_path, "--dump-dom")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert _console_lines(loaded) == []
    body = re.search(r"<body[^>]*>", loaded.stdout).group(0)
    total = int(re.search(r'data-images-total="(\d+)"', body).group(1))
    decoded = int(re.search(r'data-images-decoded="(\d+)"', body).group(1))
    assert decoded == total == text.count("<img") > 0

    shot = tmp_path / "page.png"
    captured = _chromium(browser, tiny_report, tmp_path, f"--screenshot={shot}", "--window-size=1400,3000")
    assert captured.returncode == 0 and _console_lines(captured) == []
    pixels = cv2.imread(str(shot))
    assert pixels is not None and pixels.shape[:2] == (3000, 1400)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200

    # clicking a header sorts the leaderboard
    clicked = tmp_path / "clicked.html"
    clicked.write_text(text.replace("</body>", """<script>
window.addEventListener("load", function () {
  var buttons = document.querySelectorAll("table.sortable th button");
  buttons[2].click();
  var order = Array.prototype.map.call(document.querySelectorAll("table.sortable tbody tr"),
                                       function (row) { return row.cells[0].textContent; });
  document.body.setAttribute("data-order", order.join(","));
});
</script></body>"""))
    sorted_page = _chromium(browser, clicked, tmp_path, "--dump-dom")
    assert _console_lines(sorted_page) == []
    order = re.search(r'data-order="([^"]*)"', sorted_page.stdout).group(1).split(",")
    summary = pd.read_csv(tiny_run / "summary.csv")
    assert order == summary.sort_values("score")["method"].tolist()  # ascending Score on the first click

