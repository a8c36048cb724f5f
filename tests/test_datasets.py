"""Dataset folder layouts: pairing by index, numeric order, test folders, noise profiles, bad folders."""

from __future__ import annotations

import shutil

import pytest

from bench.datasets import load_item, open_dataset
from bench.core.errors import BenchError
from bench.core.rawio import write_dng_standalone
from tests.helpers import smooth_clean_mosaic, write_pair_folder


def test_pairs_match_by_index_in_numeric_order(tmp_path):
    root = write_pair_folder(tmp_path / "d", count=12, height=32, width=32)
    dataset = open_dataset(root)
    assert [item.image_id for item in dataset.items] == [str(i) for i in range(12)]
    for item in dataset.items:
        assert item.noisy_path.name == f"{item.image_id}_noise.dng"
        assert item.gt_path.name == f"{item.image_id}_gt.dng"
    assert dataset.has_ground_truth
    assert set(dataset.true_noise) == {str(i) for i in range(12)}
    assert dataset.name == "d"


def test_parent_folder_with_train_subfolder_is_accepted(tmp_path):
    write_pair_folder(tmp_path / "zte" / "train", count=2, height=32, width=32)
    dataset = open_dataset(tmp_path / "zte")
    assert len(dataset.items) == 2 and dataset.name == "zte"


def test_test_folder_layout(tmp_path):
    for i in (0, 2, 10):
        write_dng_standalone(smooth_clean_mosaic(32, 32, i), tmp_path / f"noisy{i}.dng")
    dataset = open_dataset(tmp_path)
    assert [item.image_id for item in dataset.items] == ["0", "2", "10"]
    assert not dataset.has_ground_truth


def test_load_item_reads_both_files_and_hashes_them(pair_folder):
    dataset = open_dataset(pair_folder)
    pair = load_item(dataset, dataset.items[0])
    assert pair.noisy.shape == pair.gt.shape == (64, 96)
    assert len(pair.noisy_sha256) == 64 and pair.noisy_sha256 != pair.gt_sha256


def test_missing_partner_names_the_file(pair_folder):
    (pair_folder / "ground truth" / "1_gt.dng").unlink()
    with pytest.raises(BenchError, match=r"1_noise\.dng: no matching ground truth"):
        open_dataset(pair_folder)


def test_empty_folder_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no images found"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(BenchError, match="dataset folder not found"):
        open_dataset(tmp_path / "nope")


def test_size_mismatch_found_by_preflight_check(pair_folder):
    write_dng_standalone(smooth_clean_mosaic(64, 64, 0), pair_folder / "ground truth" / "2_gt.dng")
    dataset = open_dataset(pair_folder)
    with pytest.raises(BenchError, match=r"2_noise\.dng: size 64x96 does not match ground truth 2_gt\.dng"):
        dataset.check_files()


def test_bad_noise_profile_table(pair_folder):
    (pair_folder / "noise_profile.csv").write_text("image,alpha\n0,1\n")
    with pytest.raises(BenchError, match="noise_profile.csv: not a noise profile table"):
        open_dataset(pair_folder)


def test_limit(pair_folder):
    dataset = open_dataset(pair_folder)
    assert [i.image_id for i in dataset.limited(2).items] == ["0", "1"]
    assert dataset.limited(None) is dataset
    with pytest.raises(BenchError, match="--limit"):
        dataset.limited(0)


def test_truncated_file_found_by_preflight_check(pair_folder):
    path = pair_folder / "noisy" / "1_noise.dng"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(BenchError, match=r"1_noise\.dng: truncated"):
        open_dataset(pair_folder).check_files()
    shutil.rmtree(pair_folder)
