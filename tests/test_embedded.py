"""Tests for the embedded default dataset (bench.embedded): content, determinism, manifest-checked cache.

The dataset is built at most three times in this file: once for the module (``_embedded_build``), once
more to check determinism, and once by the rebuild-after-corruption test. Every build goes into pytest's
temporary folders; RAW_BENCH_CACHE is always pointed there before ``embedded_dataset()`` is called.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from bench import embedded
from bench.datasets import GT_DIR, NOISE_PROFILE_FILE, NOISY_DIR, load_item, open_dataset
from bench.core.rawio import normalize, read_dng

BLACK, WHITE = 1024, 16383
SCALE = WHITE - BLACK
TRUNCATION_VARIANCE = 1.0 / (12.0 * SCALE**2)
FOLDER_NAME = f"{embedded.DATASET_NAME}-v{embedded.RECIPE_VERSION}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def _embedded_build(tmp_path_factory) -> Path:
    """One build of the embedded dataset, shared (read-only) by this module's tests."""
    folder = tmp_path_factory.mktemp("embedded_cache") / FOLDER_NAME
    embedded.build(folder)
    return folder


@pytest.fixture(scope="module")
def _embedded_loaded(_embedded_build):
    """(dataset, [LoadedPair, ...]) of the shared build."""
    dataset = open_dataset(_embedded_build)
    return dataset, [load_item(dataset, item) for item in dataset.items]


@pytest.fixture
def _embedded_cache_copy(_embedded_build, tmp_path, monkeypatch) -> Path:
    """A private copy of the shared build inside a fresh cache root that RAW_BENCH_CACHE points to."""
    cache = tmp_path / "cache"
    folder = cache / FOLDER_NAME
    shutil.copytree(_embedded_build, folder)
    monkeypatch.setenv("RAW_BENCH_CACHE", str(cache))
    return folder


def _read_profile_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / NOISE_PROFILE_FILE).open(newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------- content


def test_embedded_has_at_least_12_pairs(_embedded_loaded):
    dataset, pairs = _embedded_loaded
    assert len(pairs) >= 12
    assert len(pairs) == len(embedded.SOURCES)
    assert dataset.has_ground_truth


def test_clean_linear_image_is_what_the_ground_truth_was_mosaicked_from(_embedded_loaded):
    from bench.embedded import _clean_linear_of, mosaic_bggr
    from bench.core.rawio import denormalize

    _, pairs = _embedded_loaded
    for pair in (pairs[0], pairs[-1]):
        linear = _clean_linear_of(pair.item.image_id)
        assert np.array_equal(denormalize(mosaic_bggr(linear), 1024, 16383), pair.gt.mosaic)


def test_embedded_mosaics_are_even_bggr_and_at_least_256(_embedded_loaded):
    _, pairs = _embedded_loaded
    for pair in pairs:
        for image in (pair.gt, pair.noisy):
            h, w = image.shape
            assert h >= 256 and w >= 256, pair.item.image_id
            assert h % 2 == 0 and w % 2 == 0, pair.item.image_id
            assert image.cfa == "BGGR", pair.item.image_id
            assert image.mosaic.dtype == np.uint16
        assert pair.gt.shape == pair.noisy.shape


def test_embedded_images_have_their_recipe_crop_size(_embedded_loaded):
    """A crop running off its source photograph would silently give a smaller image."""
    _, pairs = _embedded_loaded
    for pair, (_source, _top, _left, height, width) in zip(pairs, embedded.SOURCES):
        assert pair.gt.shape == (height, width), pair.item.image_id


def test_embedded_values_lie_between_black_and_white(_embedded_loaded):
    _, pairs = _embedded_loaded
    for pair in pairs:
        for image in (pair.gt, pair.noisy):
            assert image.mosaic.min() >= BLACK and image.mosaic.max() <= WHITE, pair.item.image_id


def test_embedded_ground_truth_images_are_distinct_and_not_flat(_embedded_loaded):
    _, pairs = _embedded_loaded
    assert len({pair.gt_sha256 for pair in pairs}) == len(pairs)
    for pair in pairs:
        assert np.std(pair.gt.mosaic.astype(np.float64)) > 50, pair.item.image_id


def test_noise_profile_csv_has_one_row_per_image(_embedded_build, _embedded_loaded):
    dataset, _ = _embedded_loaded
    rows = _read_profile_rows(_embedded_build)
    assert [row["image"] for row in rows] == [item.image_id for item in dataset.items]
    assert set(dataset.true_noise) == {item.image_id for item in dataset.items}
    for row in rows:
        profile = dataset.true_noise[row["image"]]
        assert (profile.a, profile.b) == (float(row["a"]), float(row["b"]))


def test_noise_groups_span_the_competition_ranges(_embedded_build):
    """Five equally sized groups, (a, b) log-spaced from (1e-4, 1e-6) to (1e-2, 1e-3)."""
    rows = _read_profile_rows(_embedded_build)
    pairs = [(float(row["a"]), float(row["b"])) for row in rows]
    groups = sorted(set(pairs))
    assert len(groups) == 5
    sizes = [pairs.count(group) for group in groups]
    assert len(set(sizes)) == 1, sizes
    a_values = np.array([a for a, _ in groups])
    b_values = np.array([b for _, b in groups])
    assert a_values.min() == pytest.approx(1e-4, rel=1e-12)
    assert a_values.max() == pytest.approx(1e-2, rel=1e-12)
    assert b_values.min() == pytest.approx(1e-6, rel=1e-12)
    assert b_values.max() == pytest.approx(1e-3, rel=1e-12)
    # a and b rise together, evenly on a log scale
    assert np.all(np.diff(a_values) > 0) and np.all(np.diff(b_values) > 0)
    np.testing.assert_allclose(np.diff(np.log10(a_values)), 0.5, rtol=1e-9)
    np.testing.assert_allclose(np.diff(np.log10(b_values)), 0.75, rtol=1e-9)


def test_noisy_variance_in_mid_range_matches_recorded_profile(_embedded_loaded):
    """Over pixels at least 4 sigma from 0 and 1 (no clipping), var(noisy - gt) ~ mean(a*x + b)."""
    dataset, pairs = _embedded_loaded
    checked = 0
    for pair in pairs:
        profile = dataset.true_noise[pair.item.image_id]
        x = normalize(pair.gt.mosaic, BLACK, WHITE).astype(np.float64)
        residual = normalize(pair.noisy.mosaic, BLACK, WHITE).astype(np.float64) - x
        variance = profile.a * x + profile.b
        sigma = np.sqrt(variance)
        usable = (x > 4 * sigma) & (x + 4 * sigma < 1)
        if usable.sum() < 5000:
            continue  # too dark for this noise level; the next test covers it with the clipped model
        checked += 1
        expected = variance[usable].mean() + TRUNCATION_VARIANCE
        assert residual[usable].var() == pytest.approx(expected, rel=0.10), pair.item.image_id
    assert checked >= 12


def test_noisy_variance_matches_clipped_noise_model_on_every_image(_embedded_loaded):
    """Every image, dark ones included: E[(clip(x + sigma z, 0, .) - x)^2] computed in closed form.

    For t = -x / sigma: E = sigma^2 (1 - Phi(t) + t phi(t)) + x^2 Phi(t). Pixels within 4 sigma of white
    are left out, so clipping at 1 is negligible.
    """
    dataset, pairs = _embedded_loaded
    for pair in pairs:
        profile = dataset.true_noise[pair.item.image_id]
        x = normalize(pair.gt.mosaic, BLACK, WHITE).astype(np.float64)
        residual = normalize(pair.noisy.mosaic, BLACK, WHITE).astype(np.float64) - x
        sigma = np.sqrt(profile.a * x + profile.b)
        keep = x + 4 * sigma < 1
        assert keep.sum() > 50_000, pair.item.image_id
        x, sigma, residual = x[keep], sigma[keep], residual[keep]
        t = -x / sigma
        expected = sigma**2 * (norm.sf(t) + t * norm.pdf(t)) + x**2 * norm.cdf(t)
        mean_square = np.mean(residual**2)
        assert mean_square == pytest.approx(expected.mean() + TRUNCATION_VARIANCE, rel=0.05), pair.item.image_id


def test_noisy_images_get_noisier_with_the_noise_group(_embedded_loaded):
    _, pairs = _embedded_loaded
    per_group: dict[int, list[float]] = {}
    for index, pair in enumerate(pairs):
        residual = pair.noisy.mosaic.astype(np.float64) - pair.gt.mosaic.astype(np.float64)
        per_group.setdefault(index // embedded.IMAGES_PER_GROUP, []).append(float(np.mean(residual**2)))
    means = [np.mean(per_group[g]) for g in sorted(per_group)]
    assert all(later > earlier for earlier, later in zip(means, means[1:])), means


def test_mosaic_bggr_puts_blue_at_even_even_and_red_at_odd_odd():
    rgb = np.zeros((4, 6, 3))
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 0.75, 0.5, 0.25  # R, G, B
    mosaic = embedded.mosaic_bggr(rgb)
    assert mosaic.shape == (4, 6)
    assert np.all(mosaic[0::2, 0::2] == 0.25)
    assert np.all(mosaic[0::2, 1::2] == 0.5)
    assert np.all(mosaic[1::2, 0::2] == 0.5)
    assert np.all(mosaic[1::2, 1::2] == 0.75)


# ----------------------------------------------------------------------------------------- determinism


def test_embedded_build_is_deterministic(_embedded_build, tmp_path):
    other = tmp_path / "second" / FOLDER_NAME
    embedded.build(other)
    manifest = (_embedded_build / embedded.MANIFEST_FILE).read_text()
    assert (other / embedded.MANIFEST_FILE).read_text() == manifest
    first_files = sorted(p.relative_to(_embedded_build).as_posix() for p in _embedded_build.rglob("*") if p.is_file())
    second_files = sorted(p.relative_to(other).as_posix() for p in other.rglob("*") if p.is_file())
    assert first_files == second_files


def test_manifest_lists_every_file_but_itself(_embedded_build):
    lines = (_embedded_build / embedded.MANIFEST_FILE).read_text().splitlines()
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in lines}
    on_disk = {p.relative_to(_embedded_build).as_posix() for p in _embedded_build.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {embedded.MANIFEST_FILE}
    for name, digest in listed.items():
        assert _sha256(_embedded_build / name) == digest, name
    count = len(embedded.SOURCES)
    assert {f"{GT_DIR}/{i}_gt.dng" for i in range(count)} <= set(listed)
    assert {f"{NOISY_DIR}/{i}_noise.dng" for i in range(count)} <= set(listed)
    assert NOISE_PROFILE_FILE in listed


# ------------------------------------------------------------------------------------ manifest / cache


def test_manifest_problem_is_none_after_build(_embedded_build):
    assert embedded.manifest_problem(_embedded_build) is None


def test_manifest_problem_reports_unbuilt_folder(tmp_path):
    assert embedded.manifest_problem(tmp_path / "nothing-here") is not None
    (tmp_path / "empty").mkdir()
    assert embedded.manifest_problem(tmp_path / "empty") is not None


def test_manifest_problem_detects_one_corrupted_byte(_embedded_cache_copy):
    target = _embedded_cache_copy / NOISY_DIR / "5_noise.dng"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    problem = embedded.manifest_problem(_embedded_cache_copy)
    assert problem is not None and "5_noise.dng" in problem


@pytest.mark.parametrize("name", [f"{GT_DIR}/3_gt.dng", NOISE_PROFILE_FILE, "recipe.json", embedded.MANIFEST_FILE])
def test_manifest_problem_detects_deleted_file(_embedded_cache_copy, name):
    (_embedded_cache_copy / name).unlink()
    assert embedded.manifest_problem(_embedded_cache_copy) is not None


def test_manifest_problem_reports_damaged_manifest(_embedded_cache_copy):
    manifest = _embedded_cache_copy / embedded.MANIFEST_FILE
    manifest.write_text(manifest.read_text()[:100])  # cut in the middle of the second line
    assert embedded.manifest_problem(_embedded_cache_copy) is not None


def test_cache_root_honours_raw_bench_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("RAW_BENCH_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert embedded.cache_root() == tmp_path / "explicit"
    monkeypatch.delenv("RAW_BENCH_CACHE")
    assert embedded.cache_root() == tmp_path / "xdg" / "raw-bench"


def test_embedded_dataset_does_not_rebuild_an_intact_cache(_embedded_cache_copy):
    files = [p for p in _embedded_cache_copy.rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in files}
    messages: list[str] = []
    dataset = embedded.embedded_dataset(log=messages.append)
    assert messages == []
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert dataset.root == _embedded_cache_copy
    assert dataset.name == embedded.DATASET_NAME
    assert len(dataset.items) == len(embedded.SOURCES)


def test_embedded_dataset_rebuilds_a_corrupted_cache(_embedded_cache_copy, _embedded_build):
    """Corrupt one DNG byte and delete another file: one rebuild restores both, bit-identical to a fresh build."""
    corrupted = _embedded_cache_copy / NOISY_DIR / "7_noise.dng"
    data = bytearray(corrupted.read_bytes())
    data[-10] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    deleted = _embedded_cache_copy / GT_DIR / "2_gt.dng"
    deleted.unlink()
    assert embedded.manifest_problem(_embedded_cache_copy) is not None

    messages: list[str] = []
    dataset = embedded.embedded_dataset(log=messages.append)
    assert len(messages) == 1 and str(_embedded_cache_copy) in messages[0]
    assert embedded.manifest_problem(_embedded_cache_copy) is None
    assert _sha256(corrupted) == _sha256(_embedded_build / NOISY_DIR / "7_noise.dng")
    assert _sha256(deleted) == _sha256(_embedded_build / GT_DIR / "2_gt.dng")
    assert len(dataset.items) == len(embedded.SOURCES)
    # no staging folder left behind beside the cache folder
    assert [p.name for p in _embedded_cache_copy.parent.iterdir()] == [FOLDER_NAME]

    # and the next call finds it intact
    messages.clear()
    embedded.embedded_dataset(log=messages.append)
    assert messages == []


# ------------------------------------------------------------------------------------ as a dataset


def test_open_dataset_gives_numeric_image_ids_in_numeric_order(_embedded_build):
    dataset = open_dataset(_embedded_build)
    count = len(embedded.SOURCES)
    assert count > 10  # precondition: "10" exists, so lexicographic order would differ
    ids = [item.image_id for item in dataset.items]
    assert ids == [str(i) for i in range(count)]
    assert ids != sorted(ids)  # lexicographic order puts "10" before "2"
    for item in dataset.items:
        assert item.noisy_path.name == f"{item.image_id}_noise.dng"
        assert item.gt_path.name == f"{item.image_id}_gt.dng"


def test_embedded_ground_truth_reads_with_competition_levels(_embedded_build):
    image = read_dng(_embedded_build / GT_DIR / "0_gt.dng")
    assert (image.black_level, image.white_level) == (BLACK, WHITE)
    assert image.cfa == "BGGR"


def test_manifest_problem_reports_empty_manifest(_embedded_cache_copy):
    (_embedded_cache_copy / embedded.MANIFEST_FILE).write_text("")
    assert embedded.manifest_problem(_embedded_cache_copy) == "manifest damaged"
