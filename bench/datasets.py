"""Dataset folders in the competition layout.

Paired (training) layout, matched by the index ``i`` (the image id), in numeric order::

    DIR/ground truth/{i}_gt.dng
    DIR/noisy/{i}_noise.dng
    DIR/noise_profile.csv      optional: columns image,a,b (the true profile, read by --noise oracle)
    DIR/burst/{i}_noise_{k}.dng  optional: further noisy frames k = 1, 2, ... of image i's scene, used by
                               `bench run --burst N` instead of synthetic frames (see bench.burst)

Test layout (noisy only)::

    DIR/noisy{i}.dng

A folder holding ``train/`` with the paired layout inside is accepted too.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from bench.errors import BenchError
from bench.noise import NoiseProfile
from bench.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, RawImage, inspect_dng, read_dng

GT_DIR = "ground truth"
NOISY_DIR = "noisy"
NOISE_PROFILE_FILE = "noise_profile.csv"
BURST_DIR = "burst"
_GT_NAME = re.compile(r"^(\d+)_gt\.dng$", re.IGNORECASE)
NOISY_FILE_NAME = re.compile(r"^(\d+)_noise\.dng$", re.IGNORECASE)
_BURST_NAME = re.compile(r"^(\d+)_noise_(\d+)\.dng$", re.IGNORECASE)
TEST_FILE_NAME = re.compile(r"^noisy(\d+)\.dng$", re.IGNORECASE)


@dataclass(frozen=True)
class DatasetItem:
    """One image of a dataset: its id, noisy file, (for paired sets) ground-truth file and (for real
    bursts) the further noisy frames 1, 2, ... in frame order."""

    image_id: str
    noisy_path: Path
    gt_path: Path | None
    burst_paths: tuple[Path, ...] = ()


@dataclass
class Dataset:
    """A list of items plus what is known about the whole folder."""

    name: str
    root: Path
    items: list[DatasetItem]
    black_level: int = COMPETITION_BLACK_LEVEL
    white_level: int = COMPETITION_WHITE_LEVEL
    true_noise: dict[str, NoiseProfile] = field(default_factory=dict)
    #: Where the dataset knows how its ground truth was made (the embedded set): image id -> the clean
    #: linear RGB ``(H, W, 3)`` float in [0, 1] whose mosaic is the ground truth. Synthetic bursts move
    #: this image instead of a demosaicked ground truth.
    clean_linear: Callable[[str], np.ndarray] | None = None

    @property
    def dn_step(self) -> float:
        """One stored level (DN) in the normalised domain: ``1 / (white - black)``."""
        return 1.0 / (self.white_level - self.black_level)

    @property
    def has_ground_truth(self) -> bool:
        return all(item.gt_path is not None for item in self.items)

    def limited(self, limit: int | None) -> "Dataset":
        """The first ``limit`` items (all when None)."""
        if limit is None:
            return self
        if limit < 1:
            raise BenchError(f"--limit must be at least 1, got {limit}")
        return dataclasses.replace(self, items=self.items[:limit])

    @property
    def has_real_bursts(self) -> bool:
        return any(item.burst_paths for item in self.items)

    def check_files(self, burst_frames: int = 1) -> None:
        """Cheap pre-flight check of every file's structure (exists, is a DNG, not truncated) and of
        noisy/ground-truth size agreement, so bad input stops a run before any work is done. With
        ``burst_frames`` > 1 on a real-burst dataset, the first ``burst_frames - 1`` burst frames of every
        image are checked too."""
        real_frames = burst_frames - 1 if self.has_real_bursts else 0
        for item in self.items:
            noisy = inspect_dng(item.noisy_path)
            if item.gt_path is not None:
                gt = inspect_dng(item.gt_path)
                if (noisy.height, noisy.width) != (gt.height, gt.width):
                    raise BenchError(
                        f"{item.noisy_path}: size {noisy.height}x{noisy.width} does not match ground truth "
                        f"{item.gt_path.name} ({gt.height}x{gt.width})"
                    )
            if real_frames and len(item.burst_paths) < real_frames:
                raise BenchError(f"{item.noisy_path}: --burst {burst_frames} needs {real_frames} frames "
                                 f"'{BURST_DIR}/{item.image_id}_noise_{{k}}.dng', found {len(item.burst_paths)}")
            for path in item.burst_paths[:real_frames]:
                frame = inspect_dng(path)
                if (noisy.height, noisy.width) != (frame.height, frame.width):
                    raise BenchError(f"{path}: size {frame.height}x{frame.width} does not match frame 0 "
                                     f"{item.noisy_path.name} ({noisy.height}x{noisy.width})")


@dataclass(frozen=True)
class LoadedPair:
    """An item read from disk, with the SHA-256 of each file's bytes (for fingerprints and caching)."""

    item: DatasetItem
    noisy: RawImage
    gt: RawImage | None
    noisy_sha256: str
    gt_sha256: str | None


def load_item(dataset: Dataset, item: DatasetItem) -> LoadedPair:
    """Read one item's DNGs. Raises BenchError naming the file on any problem."""
    noisy, noisy_hash = _read_hashed(item.noisy_path, dataset)
    gt = gt_hash = None
    if item.gt_path is not None:
        gt, gt_hash = _read_hashed(item.gt_path, dataset)
        if gt.shape != noisy.shape:
            raise BenchError(f"{item.noisy_path}: size {noisy.shape} does not match ground truth {gt.shape}")
        if gt.cfa != noisy.cfa:
            raise BenchError(f"{item.noisy_path}: CFA {noisy.cfa} differs from ground truth's {gt.cfa}")
    return LoadedPair(item, noisy, gt, noisy_hash, gt_hash)


def load_burst_frames(dataset: Dataset, item: DatasetItem, count: int) -> list[tuple[RawImage, str]]:
    """Read real burst frames 1..``count`` of ``item`` with their SHA-256; BenchError naming the file on
    a problem (a frame missing, unreadable, or of another size or CFA than frame 0 is checked by the caller)."""
    if len(item.burst_paths) < count:
        raise BenchError(f"{item.noisy_path}: needs {count} burst frames in '{BURST_DIR}/', found {len(item.burst_paths)}")
    return [_read_hashed(path, dataset) for path in item.burst_paths[:count]]


def _read_hashed(path: Path, dataset: Dataset) -> tuple[RawImage, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror})") from None
    image = read_dng(path, dataset.black_level, dataset.white_level, data=data)
    return image, hashlib.sha256(data).hexdigest()


def open_dataset(
    root: str | Path,
    name: str | None = None,
    black_level: int = COMPETITION_BLACK_LEVEL,
    white_level: int = COMPETITION_WHITE_LEVEL,
) -> Dataset:
    """Open a folder in the paired or the test layout (see module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise BenchError(f"{root}: dataset folder not found")
    if not (root / NOISY_DIR).is_dir() and (root / "train" / NOISY_DIR).is_dir():
        root = root / "train"
    name = name or (root.parent.name if root.name == "train" else root.name)
    if (root / NOISY_DIR).is_dir() or (root / GT_DIR).is_dir():
        items = _paired_items(root)
    else:
        items = _test_items(root)
    if not items:
        raise BenchError(
            f"{root}: no images found (expected '{GT_DIR}/{{i}}_gt.dng' + '{NOISY_DIR}/{{i}}_noise.dng', "
            f"or 'noisy{{i}}.dng')"
        )
    return Dataset(name, root, items, black_level, white_level, _read_true_noise(root))


def _numbered(folder: Path, pattern: re.Pattern) -> dict[int, Path]:
    found: dict[int, Path] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = pattern.match(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def _paired_items(root: Path) -> list[DatasetItem]:
    noisy = _numbered(root / NOISY_DIR, NOISY_FILE_NAME)
    gt = _numbered(root / GT_DIR, _GT_NAME)
    without_gt = sorted(noisy.keys() - gt.keys())
    if without_gt:
        raise BenchError(f"{noisy[without_gt[0]]}: no matching ground truth '{GT_DIR}/{without_gt[0]}_gt.dng'")
    without_noisy = sorted(gt.keys() - noisy.keys())
    if without_noisy:
        raise BenchError(f"{gt[without_noisy[0]]}: no matching noisy image '{NOISY_DIR}/{without_noisy[0]}_noise.dng'")
    bursts: dict[int, dict[int, Path]] = {}
    if (root / BURST_DIR).is_dir():
        for path in (root / BURST_DIR).iterdir():
            match = _BURST_NAME.match(path.name)
            if match:
                image, frame = int(match.group(1)), int(match.group(2))
                if image not in noisy:
                    raise BenchError(f"{path}: burst frame of image {image}, which has no '{NOISY_DIR}/{image}_noise.dng'")
                if frame < 1:
                    raise BenchError(f"{path}: burst frames are numbered from 1 (frame 0 is '{NOISY_DIR}/')")
                bursts.setdefault(image, {})[frame] = path
    items = []
    for i in sorted(noisy):
        frames = bursts.get(i, {})
        if frames and sorted(frames) != list(range(1, len(frames) + 1)):
            missing = min(set(range(1, max(frames) + 1)) - set(frames))
            raise BenchError(f"{root / BURST_DIR}: image {i} has burst frames up to {max(frames)} but no frame {missing}")
        items.append(DatasetItem(str(i), noisy[i], gt[i], tuple(frames[k] for k in sorted(frames))))
    return items


def _test_items(root: Path) -> list[DatasetItem]:
    noisy = _numbered(root, TEST_FILE_NAME)
    return [DatasetItem(str(i), noisy[i], None) for i in sorted(noisy)]


def _read_true_noise(root: Path) -> dict[str, NoiseProfile]:
    path = root / NOISE_PROFILE_FILE
    if not path.is_file():
        return {}
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return {row["image"]: NoiseProfile(float(row["a"]), float(row["b"]), "oracle") for row in rows}
    except (KeyError, ValueError, OSError) as exc:
        raise BenchError(f"{path}: not a noise profile table with columns image,a,b ({exc})") from None


def write_noise_profiles(path: Path, profiles: dict[str, NoiseProfile]) -> None:
    """Write ``image,a,b`` rows (the format ``noise_profile.csv`` and ``bench noise --csv`` use)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "a", "b"])
        for image_id, profile in profiles.items():
            writer.writerow([image_id, repr(profile.a), repr(profile.b)])


def fingerprint(file_hashes: list[tuple[str, str]]) -> str:
    """One SHA-256 over (relative name, content hash) pairs, order-independent."""
    digest = hashlib.sha256()
    for name, file_hash in sorted(file_hashes):
        digest.update(f"{name}\0{file_hash}\n".encode())
    return digest.hexdigest()
