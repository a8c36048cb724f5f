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

Each file is normalised with the levels its ``Dataset.levels`` policy gives it (``bench.core.levels``): the
competition's 1024 / 16383 (the default, whatever the tags say), or the file's own DNG tags.

Checked before any work: the black/white levels (``0 <= black < white <= 65535``, when the policy is made),
one file per image id (``1_noise.dng`` and ``01_noise.dng`` are both image 1: an error), and in
``Dataset.check_files`` every file's structure, size and levels (a noisy file, its ground truth and its burst
frames must share them) and the pixel levels of the first image.
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

from bench.core.errors import BenchError
from bench.core.files import sha256_bytes
from bench.core.noise_model import NoiseProfile
from bench.core.levels import LEVEL_OPTIONS, LevelPolicy, Levels, black_text
from bench.core.rawio import DngLayout, RawImage, inspect_dng, pack, read_dng, read_dng_levels

GT_DIR = "ground truth"
NOISY_DIR = "noisy"
NOISE_PROFILE_FILE = "noise_profile.csv"
#: Optional folder of the linear scenes the ground truths were mosaicked from (``bench.detailed_scenes``).
LINEAR_DIR = "linear"
BURST_DIR = "burst"
_GT_NAME = re.compile(r"^(\d+)_gt\.dng$", re.IGNORECASE)
NOISY_FILE_NAME = re.compile(r"^(\d+)_noise\.dng$", re.IGNORECASE)
_BURST_NAME = re.compile(r"^(\d+)_noise_(\d+)\.dng$", re.IGNORECASE)
TEST_FILE_NAME = re.compile(r"^noisy(\d+)\.dng$", re.IGNORECASE)
#: Smallest mosaic side, in sensor pixels, that a run can score (16 packed pixels): BM3D needs 8x8-pixel
#: blocks of packed pixels (and crashes on an image of exactly one block), the blind noise estimator 8x8
#: tiles inside a 3-pixel border, LibRaw refuses DNGs under 22 pixels a side; SSIM's 7x7 window fits.
MIN_MOSAIC_SIDE = 32
#: How to fix levels that are not the sensor's (the command-line options).
LEVELS_HINT = f"pass {LEVEL_OPTIONS} for this sensor"


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
    #: Where each file's black and white levels come from (the competition's, or the file's own tags).
    levels: LevelPolicy = field(default_factory=LevelPolicy)
    true_noise: dict[str, NoiseProfile] = field(default_factory=dict)
    #: Where the dataset knows how its ground truth was made (the embedded set): image id -> the clean
    #: linear RGB ``(H, W, 3)`` float in [0, 1] whose mosaic is the ground truth. Synthetic bursts move
    #: this image instead of a demosaicked ground truth.
    clean_linear: Callable[[str], np.ndarray] | None = None
    #: A folder's own linear scenes, ``linear/{i}_linear.npy`` (``(H, W, 3)`` float in [0, 1]), by image id:
    #: read (and hashed into the cache key) by the tasks that synthesise moving bursts from them.
    linear_paths: dict[str, Path] = field(default_factory=dict)
    #: "folder" (a user's dataset, reopened from ``root``) or "embedded" (the suite's own, rebuilt on demand).
    origin: str = "folder"

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

    def check_files(self, burst_frames: int = 1) -> list[str]:
        """Cheap pre-flight check, so that bad input stops a run with one line before any work is done; the
        warnings of ``preflight`` (which also hashes every file)."""
        return self.preflight(burst_frames).warnings

    def preflight(self, burst_frames: int = 1, linear: bool = False) -> "Preflight":
        """Check every file before any work, reading each once (its bytes hashed and decoded together):

        * every file's structure: exists, is a DNG, not truncated (``bench.core.rawio.inspect_dng``);
        * every mosaic's size, from the file's header: even sides (2x2 CFA cells) of at least
          ``MIN_MOSAIC_SIDE`` sensor pixels; noisy and ground truth of one size;
        * every file's levels (``FileLevels``): one image's files must share them, and a file normalised with
          other levels than its tags give is one warning line naming it;
        * pixel levels of the first image only: its noisy frame and ground truth are checked by
          :func:`check_levels`, so a dataset of another sensor (e.g. 8-bit files under the default
          1024/16383) is refused here; every file is checked again when ``load_item`` decodes it.

        With ``burst_frames`` > 1 on a real-burst dataset, the first ``burst_frames - 1`` burst frames of
        every image are checked too (structure, size and levels). With ``linear``, the linear scenes of
        ``linear_paths`` are hashed as well (moving synthetic bursts read them). BenchError naming the file
        on a problem.
        """
        real_frames = burst_frames - 1 if self.has_real_bursts else 0
        for item in self.items:
            noisy = _inspect_scorable(item.noisy_path)
            if item.gt_path is not None:
                gt = _inspect_scorable(item.gt_path)
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
        found = Preflight()
        first: list[RawImage] = []  # the first image's frames, decoded in full for their pixel levels
        for index, item in enumerate(self.items):
            paths = [item.noisy_path] + ([item.gt_path] if item.gt_path is not None else [])
            paths += list(item.burst_paths[:real_frames])
            for path in paths:
                if index == 0 and path in (item.noisy_path, item.gt_path):
                    first.append(found.read(path, self.levels))
                    levels = first[-1].levels
                else:
                    levels = found.read_levels(path, self.levels)
                if path == item.noisy_path:
                    noisy_levels = levels
                else:
                    check_same_levels(item.noisy_path, noisy_levels, path, levels)
        if linear:
            for path in self.linear_paths.values():
                found.hashes[path] = sha256_bytes(read_bytes(path))
        if len(first) == 2 and first[1].cfa != first[0].cfa:
            raise BenchError(f"{first[0].path}: CFA {first[0].cfa} differs from ground truth's {first[1].cfa}")
        found.pixel_notes = [check_levels(image.mosaic, image.black_level, image.white_level, image.path,
                                          ground_truth=k == 1) for k, image in enumerate(first)]
        return found


@dataclass
class Preflight:
    """What ``Dataset.preflight`` found, file by file in dataset order: ``levels`` (``FileLevels``) and
    ``hashes`` (SHA-256 of the bytes decoded), and the pixel-level warnings of the first image."""

    levels: dict[Path, "FileLevels"] = field(default_factory=dict)
    hashes: dict[Path, str] = field(default_factory=dict)
    pixel_notes: list[str | None] = field(default_factory=list)

    def read(self, path: Path, policy: LevelPolicy) -> RawImage:
        """Read ``path`` once: hash its bytes and decode them; record both; return the frame."""
        image, digest = read_hashed(path, policy)
        self.levels[path] = FileLevels(image.levels, image.tags, policy.tag_note(path, image.levels, *image.tags))
        self.hashes[path] = digest
        return image

    def read_levels(self, path: Path, policy: LevelPolicy) -> Levels:
        """Read ``path`` once: hash its bytes and take its levels from them; record both; return the levels."""
        data = read_bytes(path)
        levels, tags = read_dng_levels(path, policy, data=data)
        self.levels[path] = FileLevels(levels, tags, policy.tag_note(path, levels, *tags))
        self.hashes[path] = sha256_bytes(data)
        return levels

    @property
    def warnings(self) -> list[str]:
        """One line per problem worth showing before a run, each once: files normalised with other levels
        than their tags give, then the first image's pixels outside [black, white]."""
        notes = [found.note for found in self.levels.values() if found.note]
        return list(dict.fromkeys([*notes, *(note for note in self.pixel_notes if note)]))


@dataclass(frozen=True)
class FileLevels:
    """The levels a file is normalised with, what its DNG tags give (``(black per plane, white)``), and the
    warning line when the two differ (``LevelPolicy.tag_note``)."""

    levels: Levels
    tags: tuple
    note: str | None

    def record(self) -> dict:
        """``{"black": [...], "white": n}`` and, where the tags give other levels, ``"tags"`` in that form."""
        record = self.levels.as_dict()
        if self.note:
            record["tags"] = {"black": list(self.tags[0]), "white": self.tags[1]}
        return record


def check_same_levels(noisy_path: Path, noisy: Levels, other_path: Path, other: Levels) -> None:
    """BenchError naming both files unless a noisy file and another file of its image (ground truth, burst
    frame) have the same levels."""
    if noisy != other:
        raise BenchError(f"{other_path}: levels {other.describe()} differ from those of {noisy_path} "
                         f"({noisy.describe()}); the files of one image must share their levels")


def _inspect_scorable(path: Path) -> DngLayout:
    """``inspect_dng(path)``, plus BenchError naming the file when its mosaic has an odd side or one under
    ``MIN_MOSAIC_SIDE`` sensor pixels."""
    layout = inspect_dng(path)
    size = f"{layout.height}x{layout.width}"
    if layout.height % 2 or layout.width % 2:
        raise BenchError(f"{path}: mosaic is {size} sensor pixels; both sides must be even (whole 2x2 CFA cells)")
    if min(layout.height, layout.width) < MIN_MOSAIC_SIDE:
        raise BenchError(f"{path}: mosaic is {size} sensor pixels, too small to score; it must be at least "
                         f"{MIN_MOSAIC_SIDE}x{MIN_MOSAIC_SIDE}")
    return layout


def check_levels(mosaic: np.ndarray, black_level, white_level: int, path: Path,
                 ground_truth: bool) -> str | None:
    """Check a decoded ``(H, W)`` uint16 mosaic against the levels it will be normalised with (``black_level``
    one level, or four, one per packed plane).

    Raises BenchError naming ``path``, with a hint, when every pixel lies outside [black, white] (all
    below black or all above white): the levels are not this sensor's, e.g. an 8-bit file under the
    competition's 1024/16383, and every score would be meaningless. Returns a one-line warning naming
    ``path`` and the fraction of pixels when only some are outside where they should not be: above white
    (any frame), or below black in a ground truth (a noisy frame's read noise normally dips below black,
    so that is not reported). Returns None when there is nothing to report.
    """
    low, high = int(mosaic.min()), int(mosaic.max())
    black = black_text(black_level)
    if np.ndim(black_level) == 0:
        below = mosaic < black_level
    else:  # each packed plane against its own black level
        below = pack(mosaic) < np.asarray(black_level)
    if below.all():
        raise BenchError(f"{path}: every pixel ({low}..{high}) is below the black level {black}, so the "
                         f"image is black once normalised; {LEVELS_HINT}")
    if low > white_level:
        raise BenchError(f"{path}: every pixel ({low}..{high}) is above the white level {white_level}, so the "
                         f"image is white once normalised; {LEVELS_HINT}")
    problems = []
    if high > white_level:
        problems.append(f"{_pixel_share(np.count_nonzero(mosaic > white_level), mosaic.size)} above the white "
                        f"level {white_level}")
    if ground_truth and below.any():
        problems.append(f"{_pixel_share(np.count_nonzero(below), mosaic.size)} below the black level {black}")
    if not problems:
        return None
    return (f"{path}: {' and '.join(problems)}; they are clipped when normalised, and scored against "
            f"outputs that cannot reach them (if these are not this sensor's levels, {LEVELS_HINT})")


def _pixel_share(count: int, total: int) -> str:
    return f"{count} of {total} pixels ({100.0 * count / total:.3g}%)"


@dataclass(frozen=True)
class LoadedPair:
    """An item read from disk, with the SHA-256 of each file's bytes (for fingerprints and caching)."""

    item: DatasetItem
    noisy: RawImage
    gt: RawImage | None
    noisy_sha256: str
    gt_sha256: str | None
    #: One-line warnings of :func:`check_levels` for the noisy file and the ground truth (pixels outside
    #: [black, white] where they should not be); empty for normal data. Callers should show them.
    level_warnings: tuple[str, ...] = ()


def load_item(dataset: Dataset, item: DatasetItem) -> LoadedPair:
    """Read one item's DNGs, each with the levels the dataset's policy gives it, and check their pixels
    against them (:func:`check_levels`). Raises BenchError naming the file on any problem, including pixels
    wholly outside [black, white], and naming both files when the noisy file and its ground truth have
    different levels; pixels partly outside, and levels other than a file's tags give, come back as
    ``level_warnings``."""
    noisy, noisy_hash = read_hashed(item.noisy_path, dataset.levels)
    warnings = [_tag_note(dataset, noisy),
                check_levels(noisy.mosaic, noisy.black_level, noisy.white_level, item.noisy_path, ground_truth=False)]
    gt = gt_hash = None
    if item.gt_path is not None:
        gt, gt_hash = read_hashed(item.gt_path, dataset.levels)
        if gt.shape != noisy.shape:
            raise BenchError(f"{item.noisy_path}: size {noisy.shape} does not match ground truth {gt.shape}")
        if gt.cfa != noisy.cfa:
            raise BenchError(f"{item.noisy_path}: CFA {noisy.cfa} differs from ground truth's {gt.cfa}")
        check_same_levels(item.noisy_path, noisy.levels, item.gt_path, gt.levels)
        warnings += [_tag_note(dataset, gt),
                     check_levels(gt.mosaic, gt.black_level, gt.white_level, item.gt_path, ground_truth=True)]
    return LoadedPair(item, noisy, gt, noisy_hash, gt_hash, tuple(w for w in warnings if w))


def _tag_note(dataset: Dataset, image: RawImage) -> str | None:
    return dataset.levels.tag_note(image.path, image.levels, *image.tags)


def load_burst_frames(dataset: Dataset, item: DatasetItem, count: int) -> list[tuple[RawImage, str]]:
    """Read real burst frames 1..``count`` of ``item`` with their SHA-256; BenchError naming the file on
    a problem (a frame missing, unreadable, or of another size, CFA or levels than frame 0 is checked by the
    caller). A frame whose pixels lie wholly outside [black, white] is a BenchError (:func:`check_levels`);
    partial level warnings are given for frame 0 and the ground truth only (``load_item``)."""
    if len(item.burst_paths) < count:
        raise BenchError(f"{item.noisy_path}: needs {count} burst frames in '{BURST_DIR}/', found {len(item.burst_paths)}")
    frames = [read_hashed(path, dataset.levels) for path in item.burst_paths[:count]]
    for path, (frame, _) in zip(item.burst_paths, frames):
        check_levels(frame.mosaic, frame.black_level, frame.white_level, path, ground_truth=False)
    return frames


def read_hashed(path: Path, policy: LevelPolicy) -> tuple[RawImage, str]:
    """The frame of the DNG at ``path`` with the levels ``policy`` gives it, and the SHA-256 of the very bytes
    decoded (the file is read once). BenchError naming the file when it cannot be read or decoded."""
    data = read_bytes(path)
    image = read_dng(path, policy, data=data)
    return image, sha256_bytes(data)


def read_bytes(path: Path) -> bytes:
    """The content of ``path``; BenchError naming it when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror})") from None


def open_dataset(
    root: str | Path,
    name: str | None = None,
    black_level: int | None = None,
    white_level: int | None = None,
    levels: str = "competition",
) -> Dataset:
    """Open a folder in the paired or the test layout (see module docstring). ``levels`` ("competition" or
    "file") and the ``black_level`` / ``white_level`` overrides make its ``LevelPolicy``."""
    root = Path(root)
    try:
        policy = LevelPolicy(levels, black_level, white_level)
    except BenchError as exc:
        raise BenchError(f"{root}: {exc}") from None
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
    linear = {image_id: root / LINEAR_DIR / f"{image_id}_linear.npy" for image_id in (item.image_id for item in items)
              if (root / LINEAR_DIR / f"{image_id}_linear.npy").is_file()}
    return Dataset(name, root, items, policy, _read_true_noise(root), linear_paths=linear)


def read_linear_scene(path: Path, data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Decode a linear scene file's bytes (a ``.npy`` of ``(H, W, 3)`` floats in [0, 1] the size of the
    image's mosaic) -> float64; BenchError naming the file for anything else."""
    import io

    try:
        scene = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise BenchError(f"{path}: not a readable .npy linear scene ({exc})") from None
    if scene.shape != (*shape, 3) or not np.issubdtype(scene.dtype, np.floating):
        raise BenchError(f"{path}: a linear scene must be float ({shape[0]}, {shape[1]}, 3), got {scene.dtype} "
                         f"{scene.shape}")
    if not np.isfinite(scene).all() or scene.min() < 0 or scene.max() > 1:
        raise BenchError(f"{path}: a linear scene must hold finite values in [0, 1]")
    return scene.astype(np.float64)


def _numbered(folder: Path, pattern: re.Pattern) -> dict[int, Path]:
    """The files of ``folder`` whose names match ``pattern``, by the number its first group holds.
    BenchError naming both files when two names hold one number (``1_noise.dng`` and ``01_noise.dng``)."""
    found: dict[int, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            match = pattern.match(path.name)
            if match:
                number = int(match.group(1))
                if number in found:
                    raise BenchError(f"{found[number]} and {path.name} are both image {number}; keep one of them")
                found[number] = path
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
        for path in sorted((root / BURST_DIR).iterdir()):
            match = _BURST_NAME.match(path.name)
            if match:
                image, frame = int(match.group(1)), int(match.group(2))
                if image not in noisy:
                    raise BenchError(f"{path}: burst frame of image {image}, which has no '{NOISY_DIR}/{image}_noise.dng'")
                if frame < 1:
                    raise BenchError(f"{path}: burst frames are numbered from 1 (frame 0 is '{NOISY_DIR}/')")
                frames = bursts.setdefault(image, {})
                if frame in frames:
                    raise BenchError(f"{frames[frame]} and {path.name} are both frame {frame} of image {image}; "
                                     "keep one of them")
                frames[frame] = path
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


#: What the ``units`` column of a noise table says: (a, b) are in the normalised units of each file's levels.
NOISE_UNITS = "x = (raw - black) / (white - black)"


def write_noise_profiles(path: Path, profiles: dict[str, NoiseProfile],
                         levels: dict[str, tuple[str, int]] | None = None) -> None:
    """Write ``image,a,b`` rows (the format ``noise_profile.csv`` and ``bench noise --csv`` use); with
    ``levels`` (image id -> the black level text, e.g. ``1024`` or ``1000/1010/1020/1030``, and the white
    level its noisy file was normalised with), also the columns ``units`` (``NOISE_UNITS``: a and b are
    those of var = a*x + b in the normalised units of that file's own levels), ``black`` and ``white``."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "a", "b"] + (["units", "black", "white"] if levels else []))
        for image_id, profile in profiles.items():
            extra = [NOISE_UNITS, *levels[image_id]] if levels else []
            writer.writerow([image_id, repr(profile.a), repr(profile.b), *extra])


def fingerprint(file_hashes: list[tuple[str, str]]) -> str:
    """One SHA-256 over (relative name, content hash) pairs, order-independent."""
    digest = hashlib.sha256()
    for name, file_hash in sorted(file_hashes):
        digest.update(f"{name}\0{file_hash}\n".encode())
    return digest.hexdigest()
