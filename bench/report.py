"""``bench report``: one self-contained HTML page for a ``bench run`` folder.

The page (``RUN_DIR/report.html`` by default) holds, with every image embedded as a base64 PNG and no
external resource:

* the leaderboard (sortable by clicking a column header), with the paired bootstrap 95% confidence interval
  of each method's mean Score difference to the best method and its per-image win rate against it;
* Score against seconds per megapixel (log scale), Pareto front marked (matplotlib);
* mean Score per noise group / noise level (table and matplotlib plot);
* side-by-side crops (noisy, every method, ground truth) of the hardest, a median and the easiest image,
  rendered through a simple ISP: Malvar demosaic, grey-world white balance and exposure taken from the ground
  truth (the same for every panel), sRGB gamma.

Denoised crops come from the run's ``outputs/<method>/<image>.dng`` where it saved them, else each method is
run again, with the parameters and noise mode the run recorded, on the chosen images only; the page says
which. A method that cannot be re-run gets a placeholder; a dataset that cannot be reached leaves the crops
out (the page says why) and everything else in.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench import tables
from bench.core.errors import BenchError, first_line
from bench.core.files import atomic_write_text, file_sha256
from bench.run_record import MethodRecord, RunRecord

REPORT_FILE = "report.html"
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20220
#: Side of a crop in sensor pixels (even); shown at twice that size on the page.
CROP_SIZE = 128
#: Sensor pixels read around a crop so that the demosaic's 5x5 kernels see real neighbours (even).
CROP_MARGIN = 4
#: At most this many distinct noise profiles are shown as one group each; more are binned by noise level.
MAX_NOISE_GROUPS = 6
#: Number of noise-level bins (quantiles of the noise std at mid-grey) when the profiles are all different.
NOISE_BINS = 5
#: The dataset fingerprint is checked only when the run's files add up to at most this many bytes.
FINGERPRINT_CHECK_MAX_BYTES = 2_000_000_000
_THUMBNAIL_SIDE = 240


@dataclass
class RunFolder:
    """A ``bench run`` folder as read from disk.

    per_image: the rows of ``per_image.csv`` (``tables.PER_IMAGE_COLUMNS``; ``image`` as str).
    record: ``run.json``. noise: ``noise.csv`` (image, a, b, ...) or None when absent or unreadable.
    """

    path: Path
    record: RunRecord
    per_image: pd.DataFrame
    noise: pd.DataFrame | None
    noise_problem: str = ""


@dataclass(frozen=True)
class Comparison:
    """One method against the best one over the images both succeeded on.

    difference: mean of (method Score - best Score); ci_low / ci_high: its paired bootstrap 95% interval;
    win_rate: fraction of those images where the method's Score is higher (ties count half), in [0, 1].
    """

    method: str
    images: int
    difference: float
    ci_low: float
    ci_high: float
    win_rate: float


@dataclass
class Panel:
    """One crop on the page: a title, a caption line, and either a PNG (base64) or a placeholder text."""

    title: str
    caption: str
    png_base64: str | None = None
    placeholder: str = ""


@dataclass
class CropRow:
    """The panels of one image: why it was chosen, where the crop lies, and the overview thumbnail."""

    image_id: str
    role: str
    window: tuple[int, int, int, int]
    overview_base64: str
    panels: list[Panel] = field(default_factory=list)


@dataclass
class CropSection:
    rows: list[CropRow]
    notes: list[str]


# ---------------------------------------------------------------------------------------------------------
# reading a run folder


def load_run_folder(run_dir: Path) -> RunFolder:
    """Read ``per_image.csv``, ``run.json`` and (when present) ``noise.csv``; BenchError naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: run folder not found")
    per_image_path = run_dir / "per_image.csv"
    if not per_image_path.is_file():
        raise BenchError(f"{run_dir}: not a `bench run` folder (no per_image.csv)")
    try:
        per_image = pd.read_csv(per_image_path, dtype={"method": str, "image": str, "status": str, "error": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise BenchError(f"{per_image_path}: not readable as a CSV table ({exc})") from None
    missing = [c for c in tables.PER_IMAGE_COLUMNS if c not in per_image.columns]
    if missing:
        raise BenchError(f"{per_image_path}: missing columns {', '.join(missing)}")
    if per_image.empty:
        raise BenchError(f"{per_image_path}: has no rows, so there is nothing to report")
    for column in ("psnr", "ssim", "ssim_col", "score", "seconds", "megapixels"):  # failed rows hold "nan"
        per_image[column] = pd.to_numeric(per_image[column], errors="coerce")
    per_image["error"] = per_image["error"].fillna("")
    record = RunRecord.read(run_dir)
    noise, noise_problem = None, ""
    noise_path = run_dir / "noise.csv"
    if noise_path.is_file():
        try:
            noise = pd.read_csv(noise_path, dtype={"image": str})
            if not {"image", "a", "b"} <= set(noise.columns):
                noise, noise_problem = None, f"{noise_path.name} has no columns image,a,b"
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            noise, noise_problem = None, f"{noise_path.name} is not readable ({exc})"
    return RunFolder(run_dir, record, per_image, noise, noise_problem)


def method_order(folder: RunFolder) -> list[str]:
    """The run's methods: those named in run.json first (in its order), then any others in per_image.csv."""
    recorded = list(folder.record.methods)
    present = list(dict.fromkeys(folder.per_image["method"]))
    return [m for m in recorded if m in present] + [m for m in present if m not in recorded]


def _method_kind(folder: RunFolder, method: str) -> str:
    recorded = folder.record.methods.get(method)
    return recorded.kind if recorded else ""


def _score_matrix(per_image: pd.DataFrame) -> pd.DataFrame:
    """Score of every successful row as an (image x method) table; NaN where a method failed or is missing."""
    ok = per_image[per_image["status"] == "ok"]
    images = list(dict.fromkeys(per_image["image"]))
    matrix = ok.pivot_table(index="image", columns="method", values="score", aggfunc="mean")
    return matrix.reindex(index=images)


# ---------------------------------------------------------------------------------------------------------
# statistics


def paired_bootstrap_ci(differences: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                        seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``differences`` (``(n,)`` float, one per image) over
    ``resamples`` resamplings of the images with replacement; deterministic for a given ``seed``."""
    differences = np.asarray(differences, dtype=np.float64)
    if differences.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, differences.size, size=(resamples, differences.size))
    means = differences[indices].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def compare_to_best(per_image: pd.DataFrame, best: str, methods: list[str],
                    resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict[str, Comparison]:
    """Every method except ``best`` against ``best``, paired over the images both succeeded on.

    per_image: rows with ``tables.PER_IMAGE_COLUMNS``. Returns method -> Comparison (NaN fields and
    ``images == 0`` when the two share no successful image).
    """
    matrix = _score_matrix(per_image)
    comparisons = {}
    for method in methods:
        if method == best:
            continue
        if method not in matrix.columns or best not in matrix.columns:
            comparisons[method] = Comparison(method, 0, math.nan, math.nan, math.nan, math.nan)
            continue
        both = matrix[[method, best]].dropna()
        differences = (both[method] - both[best]).to_numpy(dtype=np.float64)
        if differences.size == 0:
            comparisons[method] = Comparison(method, 0, math.nan, math.nan, math.nan, math.nan)
            continue
        low, high = paired_bootstrap_ci(differences, resamples, seed)
        wins = float((differences > 0).mean() + 0.5 * (differences == 0).mean())
        comparisons[method] = Comparison(method, int(differences.size), float(differences.mean()), low, high, wins)
    return comparisons


def pareto_front(seconds_per_megapixel: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: True for the points no other point beats on both speed and Score (at least as fast and
    at least as good, and better in one). Points with a NaN or non-positive time are never on the front."""
    times = np.asarray(seconds_per_megapixel, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(times) & np.isfinite(scores) & (times > 0)
    front = valid.copy()
    for i in np.flatnonzero(valid):
        others = valid & (times <= times[i]) & (scores >= scores[i]) & ((times < times[i]) | (scores > scores[i]))
        front[i] = not others.any()
    return front


def noise_groups(profiles: pd.DataFrame) -> pd.DataFrame:
    """Group images by noise level.

    profiles: columns image, a, b. Returns columns image, a, b, sigma (noise std at mid-grey,
    ``sqrt(a * 0.5 + b)``), group (int, 0 = least noisy) and label (str). Images with the same (a, b)
    share a group when there are at most ``MAX_NOISE_GROUPS`` distinct profiles; otherwise the groups are
    quantile bins of sigma (up to ``NOISE_BINS``, at least 3 images per bin where possible).
    """
    table = profiles[["image", "a", "b"]].copy()
    table["sigma"] = np.sqrt(np.maximum(table["a"] * 0.5 + table["b"], 0.0))
    distinct = table[["a", "b"]].drop_duplicates()
    if len(distinct) <= MAX_NOISE_GROUPS:
        distinct = distinct.assign(sigma=np.sqrt(np.maximum(distinct["a"] * 0.5 + distinct["b"], 0.0)))
        distinct = distinct.sort_values("sigma", kind="stable").reset_index(drop=True)
        keys = {(row.a, row.b): k for k, row in enumerate(distinct.itertuples())}
        table["group"] = [keys[(a, b)] for a, b in zip(table["a"], table["b"])]
        labels = {k: f"a {row.a:.2g}, b {row.b:.2g} (σ {row.sigma:.4f})" for k, row in enumerate(distinct.itertuples())}
    else:
        bins = max(1, min(NOISE_BINS, len(table) // 3))
        codes = pd.qcut(table["sigma"].rank(method="first"), bins, labels=False)
        table["group"] = codes.astype(int)
        labels = {}
        for group, members in table.groupby("group"):
            labels[group] = f"σ {members['sigma'].min():.4f}–{members['sigma'].max():.4f}"
    table["label"] = table["group"].map(labels)
    return table


def choose_crop_images(per_image: pd.DataFrame, reference_methods: set[str]) -> list[tuple[str, str]]:
    """Up to three ``(role, image id)``: the hardest image (lowest mean Score over the successful rows of
    the methods not in ``reference_methods``; all methods when only references ran), a median one and the
    easiest, distinct, in that order."""
    ok = per_image[per_image["status"] == "ok"]
    judged = ok[~ok["method"].isin(reference_methods)]
    if judged.empty:
        judged = ok
    if judged.empty:
        return []
    order = list(dict.fromkeys(per_image["image"]))
    means = judged.groupby("image")["score"].mean()
    ranked = sorted(means.index, key=lambda image: (means[image], order.index(image)))
    picks = [("hardest", ranked[0]), ("median", ranked[len(ranked) // 2]), ("easiest", ranked[-1])]
    chosen, seen = [], set()
    for role, image in picks:
        if image not in seen:
            chosen.append((role, image))
            seen.add(image)
    return chosen


# ---------------------------------------------------------------------------------------------------------
# the simple ISP


@dataclass(frozen=True)
class Rendering:
    """How normalised camera RGB becomes display values: per-channel ``gains`` (R, G, B; white balance
    times exposure), then the sRGB curve."""

    gains: tuple[float, float, float]


def packed_rgb(packed: np.ndarray, cfa: str) -> np.ndarray:
    """``(h, w, 4)`` normalised packed planes -> ``(h, w, 3)`` float64 half-resolution RGB (greens averaged)."""
    channels = {}
    for colour in "RGB":
        planes = [packed[..., k] for k, letter in enumerate(cfa) if letter == colour]
        channels[colour] = np.mean(planes, axis=0, dtype=np.float64)
    return np.stack([channels["R"], channels["G"], channels["B"]], axis=-1)


def rendering_from_ground_truth(gt_packed: np.ndarray, cfa: str) -> Rendering:
    """Grey-world white balance and an exposure from the ground truth ``(h, w, 4)`` normalised packed image:
    the channel means are equalised to green's, then the 99th percentile of the balanced image goes to 0.95
    (exposure gain kept within [1/4, 16])."""
    rgb = packed_rgb(gt_packed, cfa)
    means = np.maximum(rgb.reshape(-1, 3).mean(axis=0), 1e-6)
    balance = means[1] / means
    high = float(np.percentile((rgb * balance).max(axis=-1), 99))
    exposure = float(np.clip(0.95 / max(high, 1e-6), 0.25, 16.0))
    return Rendering(tuple(float(g) for g in balance * exposure))


def to_srgb8(rgb: np.ndarray, rendering: Rendering) -> np.ndarray:
    """``(h, w, 3)`` linear camera RGB (normalised) -> ``(h, w, 3)`` uint8 sRGB after ``rendering``'s gains."""
    x = np.clip(rgb * np.asarray(rendering.gains), 0.0, 1.0)
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(encoded * 255.0).astype(np.uint8)


def render_window(mosaic: np.ndarray, cfa: str, window: tuple[int, int, int, int], black_level: int,
                  white_level: int, rendering: Rendering) -> np.ndarray:
    """The ``(top, left, height, width)`` window (even top/left) of an ``(H, W)`` uint16 mosaic ->
    ``(height, width, 3)`` uint8 sRGB: normalised, Malvar-demosaicked (with ``CROP_MARGIN`` pixels of real
    neighbours where the image has them), balanced, gamma-encoded."""
    from bench.core.demosaic import demosaic
    from bench.core.rawio import normalize

    top, left, height, width = window
    rows, cols = mosaic.shape
    pad_top, pad_left = min(CROP_MARGIN, top), min(CROP_MARGIN, left)
    bottom, right = min(rows, top + height + CROP_MARGIN), min(cols, left + width + CROP_MARGIN)
    region = normalize(mosaic[top - pad_top : bottom, left - pad_left : right], black_level, white_level)
    # an even offset keeps the 2x2 CFA phase, so ``cfa`` still names the region's planes
    rgb = demosaic(np.clip(region, 0.0, 1.0), cfa)[pad_top : pad_top + height, pad_left : pad_left + width]
    return to_srgb8(rgb, rendering)


def detail_window(gt_packed: np.ndarray, size: int = CROP_SIZE) -> tuple[int, int, int, int]:
    """The ``(top, left, height, width)`` sensor-pixel window (even, at most ``size`` square) of most detail
    in a ``(h, w, 4)`` normalised packed ground truth: the highest sum of squared gradients of its
    gamma-encoded brightness."""
    brightness = np.power(np.clip(gt_packed.mean(axis=-1, dtype=np.float64), 0.0, 1.0), 1 / 2.2)
    h, w = brightness.shape
    win_h, win_w = min(size // 2, h), min(size // 2, w)
    energy = np.zeros_like(brightness)
    energy[:, 1:] += np.diff(brightness, axis=1) ** 2
    energy[1:, :] += np.diff(brightness, axis=0) ** 2
    integral = np.pad(energy.cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
    sums = (integral[win_h:, win_w:] - integral[:-win_h, win_w:] - integral[win_h:, :-win_w]
            + integral[:-win_h, :-win_w])
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return 2 * int(i), 2 * int(j), 2 * win_h, 2 * win_w


def overview_thumbnail(gt_packed: np.ndarray, cfa: str, window: tuple[int, int, int, int],
                       rendering: Rendering) -> np.ndarray:
    """A small ``(h, w, 3)`` uint8 view of the whole ground truth (longest side ``_THUMBNAIL_SIDE``) with
    the crop ``window`` outlined in red."""
    import cv2

    rgb = to_srgb8(packed_rgb(gt_packed, cfa), rendering)
    h, w = rgb.shape[:2]
    scale = min(1.0, _THUMBNAIL_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    thumb = np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
    top, left, height, width = window
    corner = (int(left / 2 * scale), int(top / 2 * scale))
    far = (int((left + width) / 2 * scale) - 1, int((top + height) / 2 * scale) - 1)
    cv2.rectangle(thumb, corner, far, (255, 40, 40), 1)
    return thumb


def png_base64(rgb: np.ndarray) -> str:
    """``(h, w, 3)`` uint8 RGB -> base64 text of its PNG file."""
    import cv2

    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(encoded.tobytes()).decode("ascii")


# ---------------------------------------------------------------------------------------------------------
# crops: dataset, saved or re-created outputs


def open_run_dataset(record: RunRecord):
    """The dataset a run used, or raise BenchError saying why it cannot be opened."""
    from bench import embedded
    from bench.datasets import open_dataset

    info = record.dataset
    if info.origin == "embedded":
        return embedded.embedded_dataset(log=lambda message: None)
    return open_dataset(info.root, name=info.name, black_level=info.black_level, white_level=info.white_level)


def _burst_spec(record: RunRecord):
    """The BurstSpec a run used, or None for a one-frame run."""
    return record.burst.spec() if record.burst else None


def fingerprint_note(record: RunRecord, dataset, image_ids: list[str]) -> str:
    """Whether the dataset files of the run's images hash to the run's recorded fingerprint (one sentence)."""
    from bench.datasets import fingerprint

    expected = record.dataset_fingerprint
    if not expected:
        return "The run recorded no dataset fingerprint, so it is not checked that these are the files it scored."
    items = {item.image_id: item for item in dataset.items}
    extra_frames = record.burst.frames - 1 if record.burst and dataset.has_real_bursts else 0
    paths = []
    for image_id in image_ids:
        item = items.get(image_id)
        if item is None:
            return f"The dataset has no image {image_id}, so it is not the one the run scored."
        paths += [item.noisy_path, item.gt_path, *item.burst_paths[:extra_frames]]
    total = sum(path.stat().st_size for path in paths if path is not None and path.is_file())
    if total > FINGERPRINT_CHECK_MAX_BYTES:
        return f"The dataset fingerprint was not checked ({total / 1e9:.1f} GB of files)."
    hashes = []
    for path in paths:
        if path is None or not path.is_file():
            return f"{path}: missing, so the dataset is not the one the run scored."
        try:
            relative = path.relative_to(dataset.root).as_posix()
        except ValueError:
            relative = str(path)
        hashes.append((relative, file_sha256(path)))
    if fingerprint(hashes) == expected:
        return "The dataset files match the fingerprint recorded in run.json."
    return ("Warning: the dataset files differ from those the run scored (fingerprint mismatch), so the noisy, "
            "ground-truth and re-created crops may not show what was scored.")


def build_crops(folder: RunFolder, methods: list[str], log: Callable[[str], None]) -> CropSection:
    """The crop rows of the page; never raises for a dataset or method problem (they become notes and
    placeholders)."""
    from bench.evaluation import evaluate, load_inputs
    from bench.core.rawio import pack_normalized, read_dng

    references = {m for m in methods if _method_kind(folder, m) == "reference"}
    chosen = choose_crop_images(folder.per_image, references)
    if not chosen:
        return CropSection([], ["No image has a successful result, so there are no crops."])
    try:
        dataset = open_run_dataset(folder.record)
    except BenchError as exc:
        return CropSection([], [f"Crops are missing: the run's dataset cannot be opened ({exc})."])
    except Exception as exc:  # a damaged dataset must not take the rest of the report down
        return CropSection([], [f"Crops are missing: the run's dataset cannot be opened ({_one_line(exc)})."])
    try:
        notes = [fingerprint_note(folder.record, dataset, list(dict.fromkeys(folder.per_image["image"])))]
    except OSError as exc:
        notes = [f"The dataset fingerprint could not be checked ({_one_line(exc)})."]
    items = {item.image_id: item for item in dataset.items}
    rows_by_key = {(row.method, row.image): row for row in folder.per_image.itertuples()}
    recorded = folder.record.methods
    noise_mode = folder.record.noise
    created_methods: dict[str, object] = {}
    sources = {"saved": 0, "re-created": 0}
    psnr_gaps: list[float] = []
    rows = []
    for role, image_id in chosen:
        item = items.get(image_id)
        if item is None:
            notes.append(f"Image {image_id} ({role}) is not in the dataset at {dataset.root}; no crop.")
            continue
        try:
            loaded = load_inputs(dataset, item, _burst_spec(folder.record))
            pair = loaded.pair
        except Exception as exc:
            notes.append(f"Image {image_id} ({role}) could not be read ({_one_line(exc)}); no crop.")
            continue
        gt_packed = pack_normalized(pair.gt.mosaic, dataset.black_level, dataset.white_level)
        window = detail_window(gt_packed)
        rendering = rendering_from_ground_truth(gt_packed, pair.gt.cfa)

        def render(mosaic: np.ndarray) -> str:
            return png_base64(render_window(mosaic, pair.gt.cfa, window, dataset.black_level, dataset.white_level,
                                            rendering))

        row = CropRow(image_id, role, window,
                      png_base64(overview_thumbnail(gt_packed, pair.gt.cfa, window, rendering)))
        row.panels.append(Panel("noisy input", "the dataset's noisy file", render(pair.noisy.mosaic)))
        method_input = None
        for method in methods:
            result = rows_by_key.get((method, image_id))
            if result is None:
                row.panels.append(Panel(method, "", placeholder="not run on this image"))
                continue
            caption = (f"Score {result.score:.2f} · {result.psnr:.2f} dB" if result.status == "ok" else "")
            if result.status != "ok":
                row.panels.append(Panel(method, "", placeholder=f"failed in the run: {result.error}"))
                continue
            saved = folder.path / "outputs" / method / f"{image_id}.dng"
            try:
                if saved.is_file():
                    mosaic = read_dng(saved, dataset.black_level, dataset.white_level).mosaic
                    if mosaic.shape != pair.gt.mosaic.shape:
                        raise BenchError(f"{saved}: size {mosaic.shape} differs from the image's {pair.gt.mosaic.shape}")
                    sources["saved"] += 1
                else:
                    if method not in created_methods:
                        created_methods[method] = _create_method(method, recorded.get(method))
                    created = created_methods[method]
                    if isinstance(created, str):
                        raise BenchError(created)
                    if method_input is None:
                        method_input = _method_input(loaded, dataset, noise_mode, folder.record)
                    log(f"report: re-running {method} on image {image_id} for its crop")
                    evaluation = evaluate(created, method_input, pair.gt.mosaic, dataset.black_level,
                                          dataset.white_level)
                    mosaic = evaluation.mosaic
                    sources["re-created"] += 1
                    psnr_gaps.append(abs(evaluation.scores.psnr - float(result.psnr)))
                row.panels.append(Panel(method, caption, render(mosaic)))
            except Exception as exc:  # one method's trouble gives a placeholder, never a crash
                row.panels.append(Panel(method, caption, placeholder=f"no image: {_one_line(exc)}"))
        row.panels.append(Panel("ground truth", "the dataset's clean file", render(pair.gt.mosaic)))
        rows.append(row)
    notes.insert(0, _source_note(sources, psnr_gaps, noise_mode))
    return CropSection(rows, notes)


def _create_method(name: str, recorded: MethodRecord | None):
    """The method object the run used, or a one-line reason why it cannot be made or run here."""
    from methods.registry import create_method

    try:
        method = create_method(name, recorded.params if recorded else {})
    except Exception as exc:
        return f"cannot re-create {name}: {_one_line(exc)}"
    reason = type(method).unavailable_reason()
    if reason:
        return f"{name} cannot run here ({reason})"
    return method


def _method_input(loaded, dataset, noise_mode: str, record: RunRecord):
    """The NoisyRaw the run gave methods for this image (same noise mode and burst)."""
    from bench.evaluation import make_noisy_raw, noise_for

    return make_noisy_raw(loaded, dataset, noise_for(loaded, dataset, noise_mode), _burst_spec(record))


def _source_note(sources: dict[str, int], psnr_gaps: list[float], noise_mode: str) -> str:
    saved, recreated = sources["saved"], sources["re-created"]
    if recreated == 0 and saved == 0:
        return "No denoised crop could be shown."
    if recreated == 0:
        return "Denoised crops come from the run's saved outputs (outputs/<method>/<image>.dng): the files that were scored."
    check = ""
    if psnr_gaps and max(psnr_gaps) < 1e-6:
        check = " Every re-created result's PSNR equals the one the run recorded (to 1e-6 dB)."
    elif psnr_gaps:
        check = (f" Their PSNR differs from the one the run recorded by up to {max(psnr_gaps):.4f} dB, so they are "
                 "close to, not the same as, the scored results (another machine, package version or a "
                 "non-deterministic method).")
    where = ("The run did not save its outputs, so the denoised crops were re-created"
             if saved == 0 else f"{saved} denoised crops come from the run's saved outputs; {recreated} were re-created")
    return (f"{where} by running each method again on these images with the parameters and noise mode "
            f"({noise_mode}) recorded in run.json.{check}")


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message, after its type name (BenchErrors read as they are)."""
    text = str(exc).strip()
    if isinstance(exc, BenchError) and text:
        return text.splitlines()[0]
    return first_line(exc)


# ---------------------------------------------------------------------------------------------------------
# plots (matplotlib, Agg, embedded as PNG)


def _new_figure(width: float, height: float):
    """A matplotlib Figure drawn by the Agg canvas (no GUI, no global pyplot state); BenchError without
    matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise BenchError("the report's plots need matplotlib (pip install 'matplotlib>=3.8')") from None
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _figure_base64(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def speed_plot(summary: pd.DataFrame, front: np.ndarray) -> str | None:
    """Score against seconds per megapixel (log x), Pareto front marked and joined; base64 PNG, or None
    when no method has both numbers."""
    times = 1.0 / summary["mp_per_second"].to_numpy(dtype=np.float64)
    scores = summary["score"].to_numpy(dtype=np.float64)
    valid = np.isfinite(times) & np.isfinite(scores) & (times > 0)
    if not valid.any():
        return None
    figure = _new_figure(7.5, 4.4)
    axes = figure.add_subplot()
    axes.scatter(times[valid & ~front], scores[valid & ~front], s=40, facecolors="none", edgecolors="#777777",
                 label="dominated")
    axes.scatter(times[front], scores[front], s=55, color="#c0392b", zorder=3, label="Pareto front")
    order = np.argsort(times[front])
    axes.step(times[front][order], scores[front][order], where="post", color="#c0392b", linestyle="--",
              linewidth=1)
    for name, x, y in zip(summary["method"][valid], times[valid], scores[valid]):
        axes.annotate(str(name), (x, y), xytext=(6, 4), textcoords="offset points", fontsize=9)
    axes.set_xscale("log")
    axes.set_xlabel("seconds per megapixel (log scale; denoise call alone)")
    axes.set_ylabel("mean Score")
    axes.set_title("Score against speed")
    axes.grid(True, alpha=0.3)
    axes.margins(x=0.15, y=0.12)
    axes.legend(loc="lower right", fontsize=9)
    return _figure_base64(figure)


def noise_plot(group_scores: pd.DataFrame, labels: list[str]) -> str:
    """Mean Score per noise group (x, least noisy first) for each method (one line each); base64 PNG.
    group_scores: index = group number, columns = methods."""
    figure = _new_figure(8.5, 4.4)
    axes = figure.add_subplot()
    positions = np.arange(len(group_scores.index))
    for method in group_scores.columns:
        axes.plot(positions, group_scores[method].to_numpy(dtype=np.float64), marker="o", label=str(method))
    axes.set_xticks(positions, [label.replace(" (", "\n(") for label in labels], fontsize=8)
    axes.set_xlabel("noise group (noise std at mid-grey σ = √(a·0.5 + b), normalised units)")
    axes.set_ylabel("mean Score")
    axes.set_title("Score by noise level")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=9)
    return _figure_base64(figure)


# ---------------------------------------------------------------------------------------------------------
# the page


def render_report(run_dir: Path, log: Callable[[str], None] | None = None) -> str:
    """The report of ``run_dir`` as one self-contained HTML document (str)."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    folder = load_run_folder(Path(run_dir))
    methods = method_order(folder)
    summary = tables.summarize(folder.per_image, methods)
    scored = summary[summary["images"] > 0]
    best = str(scored["method"].iloc[0]) if len(scored) else None  # summaries are sorted best Score first
    comparisons = compare_to_best(folder.per_image, best, methods) if best else {}
    times = 1.0 / summary["mp_per_second"].to_numpy(dtype=np.float64)
    front = pareto_front(times, summary["score"].to_numpy(dtype=np.float64))
    body = [
        _header_html(folder),
        _leaderboard_html(folder, summary, best, comparisons, front),
        _speed_html(summary, front),
        _noise_section(folder, list(summary["method"])),
        _crops_html(build_crops(folder, list(summary["method"]), log)),
        f'<footer>Written by <code>python -m bench report</code> on '
        f'{html.escape(dt.datetime.now().isoformat(timespec="seconds"))} in {time.perf_counter() - started:.1f} s. '
        "Plots: matplotlib. No external resources.</footer>",
    ]
    title = f"raw-bench report: {folder.record.dataset.name} {folder.path.name}"
    return _page(title, "\n".join(body))


def write_report(run_dir: Path, out: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``), atomically; returns
    the path written."""
    out = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    text = render_report(Path(run_dir), log)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
    except OSError as exc:
        raise BenchError(f"{out}: cannot write the report ({exc.strerror})") from None
    return out


def _header_html(folder: RunFolder) -> str:
    record = folder.record
    burst = record.burst
    frames = f"; {burst.frames}-frame bursts ({html.escape(burst.source)})" if burst else ""
    images = len(dict.fromkeys(folder.per_image["image"]))
    facts = [
        ("dataset", f"{html.escape(record.dataset.name)} ({images} images; "
                    f"<code>{html.escape(record.dataset.root)}</code>)"),
        ("noise profile", html.escape(record.noise) + frames),
        ("status", f"{html.escape(record.status)}, started {html.escape(record.started)}"),
        ("code", html.escape(record.git_commit or "not a git checkout")),
        ("command", f"<code>{html.escape(record.command)}</code>"),
    ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return (f"<header><h1>raw-bench report: {html.escape(folder.path.name)}</h1>"
            f"<dl class=\"facts\">{items}</dl></header>")


def _number(value: float, digits: int) -> tuple[str, str]:
    """(display text, sort key) of a number; empty for NaN."""
    if value is None or not np.isfinite(value):
        return "", ""
    return f"{value:.{digits}f}", repr(float(value))


def _significant(value: float) -> str:
    """A time or rate with 3 significant digits (plain decimals, no exponent above 1e-4)."""
    if not np.isfinite(value):
        return ""
    if value == 0:
        return "0"
    if abs(value) < 1e-4:
        return f"{value:.1e}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:.{digits}f}"


def _leaderboard_html(folder: RunFolder, summary: pd.DataFrame, best: str | None,
                      comparisons: dict[str, Comparison], front: np.ndarray) -> str:
    headers = ["method", "kind", "Score", "PSNR (dB)", "SSIM", "SSIM (col)", "s / image", "MP/s", "images",
               "failures", "ΔScore vs best", "95% CI of ΔScore", "win rate vs best", "Pareto front"]
    titles = {
        "ΔScore vs best": "mean over images of (this method's Score − the best method's Score), images both succeeded on",
        "95% CI of ΔScore": f"paired bootstrap over images, {BOOTSTRAP_RESAMPLES} resamples, percentile interval",
        "win rate vs best": "fraction of images where this method's Score beats the best method's (ties count half)",
        "Pareto front": "no other method is both at least as fast (s per MP) and at least as good (Score)",
        "s / image": "mean seconds of the denoise call per image",
        "MP/s": "megapixels per second: total megapixels over total seconds",
    }
    rows = []
    for position, row in enumerate(summary.itertuples()):
        comparison = comparisons.get(row.method)
        if row.method == best:
            delta, ci, win = ("—", "0"), ("—", ""), ("—", "")
        elif comparison is None or comparison.images == 0:
            delta = ci = win = ("", "")
        else:
            delta = (f"{comparison.difference:+.2f}", repr(comparison.difference))
            ci = (f"[{comparison.ci_low:+.2f}, {comparison.ci_high:+.2f}]"
                  + ("" if comparison.ci_low > 0 or comparison.ci_high < 0 else " includes 0"),
                  repr(comparison.ci_high))
            win = (f"{comparison.win_rate:.0%} of {comparison.images}", repr(comparison.win_rate))
        cells = [
            (html.escape(str(row.method)), html.escape(str(row.method))),
            (html.escape(_method_kind(folder, row.method)), html.escape(_method_kind(folder, row.method))),
            _number(row.score, 2), _number(row.psnr, 3), _number(row.ssim, 4), _number(row.ssim_col, 4),
            (_significant(row.seconds_per_image), _sort_key(row.seconds_per_image)),
            (_significant(row.mp_per_second), _sort_key(row.mp_per_second)),
            (str(row.images), str(row.images)), (str(row.failures), str(row.failures)),
            delta, ci, win,
            ("yes" if front[position] else "", "1" if front[position] else "0"),
        ]
        tds = "".join(f'<td{_TEXT_CLASS if column < 2 else ""} data-sort="{key}">{text}</td>'
                      for column, (text, key) in enumerate(cells))
        marker = ' class="best"' if row.method == best else ""
        rows.append(f"<tr{marker}>{tds}</tr>")
    ths = "".join(f'<th scope="col"{_TEXT_CLASS if column < 2 else ""}{_title_attribute(titles.get(h))}>'
                  f'<button type="button">{html.escape(h)}</button></th>' for column, h in enumerate(headers))
    explain = (
        f"<p>Mean over each method's successful images (Score = (0.8·max(PSNR−30,0)/30 + 0.2·max(SSIM−0.8,0)/0.2)·100 "
        "per image, on the written-back uint16 mosaic). Click a column header to sort; click again to reverse.</p>"
        f"<p>ΔScore is each method's mean Score minus that of the best method (<b>{html.escape(str(best))}</b>) over the "
        f"images both succeeded on. Its 95% confidence interval is a paired bootstrap: the images are resampled with "
        f"replacement ({BOOTSTRAP_RESAMPLES} times, fixed seed), the same images for both methods, and the 2.5th and "
        "97.5th percentiles of the mean difference are shown. An interval that does not include 0 means the gap is "
        "larger than the image-to-image spread explains; with few images the interval is only approximate. "
        "The win rate is the fraction of images on which the method's Score beats the best method's (ties count half).</p>"
    )
    return (f'<section id="leaderboard"><h2>Leaderboard</h2>{explain}<div class="scroll">'
            f'<table class="sortable"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</div></section>")


_TEXT_CLASS = ' class="text"'


def _sort_key(value: float) -> str:
    return repr(float(value)) if value is not None and np.isfinite(value) else ""


def _title_attribute(text: str | None) -> str:
    return f' title="{html.escape(text)}"' if text else ""


def _speed_html(summary: pd.DataFrame, front: np.ndarray) -> str:
    image = speed_plot(summary, front)
    if image is None:
        return ('<section id="speed"><h2>Score against speed</h2>'
                "<p>No method has both a Score and a time, so there is nothing to plot.</p></section>")
    on_front = ", ".join(html.escape(str(m)) for m, keep in zip(summary["method"], front) if keep)
    return ('<section id="speed"><h2>Score against speed</h2>'
            "<p>Seconds per megapixel is the total time of the denoise calls over the total megapixels. "
            f"Pareto front (no other method is both faster and better): <b>{on_front}</b>.</p>"
            f'<img class="plot" alt="Score against seconds per megapixel, log scale, Pareto front marked" '
            f'data-plot="speed" src="data:image/png;base64,{image}"></section>')


def _noise_section(folder: RunFolder, methods: list[str]) -> str:
    heading = '<section id="noise"><h2>Score by noise level</h2>'
    profiles, source = _noise_profiles(folder)
    if profiles is None:
        return f"{heading}<p>No noise profile is available for this run ({html.escape(source)}).</p></section>"
    images = list(dict.fromkeys(folder.per_image["image"]))
    profiles = profiles[profiles["image"].isin(images)].drop_duplicates("image")
    if profiles.empty:
        return f"{heading}<p>The noise profiles ({html.escape(source)}) name none of the run's images.</p></section>"
    groups = noise_groups(profiles)
    ok = folder.per_image[folder.per_image["status"] == "ok"].merge(groups[["image", "group"]], on="image")
    group_scores = ok.pivot_table(index="group", columns="method", values="score", aggfunc="mean")
    group_scores = group_scores.reindex(index=sorted(groups["group"].unique()),
                                        columns=[m for m in methods if m in group_scores.columns])
    labels = [groups.loc[groups["group"] == g, "label"].iloc[0] for g in group_scores.index]
    counts = [int((groups["group"] == g).sum()) for g in group_scores.index]
    ths = f'<th scope="col"{_TEXT_CLASS}>noise group</th>' + "".join(
        f'<th scope="col">{html.escape(str(h))}</th>' for h in ["images", *group_scores.columns])
    rows = []
    for label, count, (_, values) in zip(labels, counts, group_scores.iterrows()):
        cells = "".join(f"<td>{_number(v, 2)[0]}</td>" for v in values)
        rows.append(f"<tr><th scope=\"row\">{html.escape(label)}</th><td>{count}</td>{cells}</tr>")
    unmatched = len(images) - len(profiles)
    missing = f" {unmatched} image(s) have no profile and are left out." if unmatched else ""
    plot = noise_plot(group_scores, labels)
    return (f"{heading}<p>Mean Score of each method per noise group. Noise profiles: {html.escape(source)}; "
            "σ is the noise standard deviation at mid-grey, √(a·0.5 + b), in normalised units "
            f"(1 = white level − black level).{missing}</p>"
            f'<div class="scroll"><table class="plain"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody>'
            '</table></div><img class="plot" alt="mean Score per noise group for each method" data-plot="noise" '
            f'src="data:image/png;base64,{plot}"></section>')


def _noise_profiles(folder: RunFolder) -> tuple[pd.DataFrame | None, str]:
    """(image, a, b) table and where it comes from: the dataset's true profiles (noise_profile.csv) when the
    dataset can be opened and has them, else the run's noise.csv."""
    try:
        dataset = open_run_dataset(folder.record)
        true = dataset.true_noise
    except Exception as exc:
        true, why = {}, f"the dataset cannot be opened ({_one_line(exc)})"
    else:
        why = "the dataset has no noise_profile.csv"
    if true:
        table = pd.DataFrame([{"image": k, "a": v.a, "b": v.b} for k, v in true.items()])
        return table, "the dataset's true profiles (noise_profile.csv)"
    if folder.noise is not None:
        return folder.noise[["image", "a", "b"]], f"estimated by the run (noise.csv), because {why}"
    return None, f"{why}, and the run has no usable noise.csv{': ' + folder.noise_problem if folder.noise_problem else ''}"


def _crops_html(crops: CropSection) -> str:
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in crops.notes)
    parts = ['<section id="crops"><h2>Crops</h2>',
             f"<p>{CROP_SIZE}×{CROP_SIZE} sensor pixels at the most detailed part of the ground truth, shown at 2×. "
             "Simple ISP, the same for every panel of an image: Malvar demosaic, grey-world white balance and "
             "exposure measured on the ground truth, sRGB gamma; no colour matrix, no sharpening.</p>", notes]
    for row in crops.rows:
        top, left, height, width = row.window
        parts.append(f'<div class="crop-row"><h3>Image {html.escape(row.image_id)} — {html.escape(row.role)}</h3>'
                     f'<p class="where">rows {top}–{top + height - 1}, columns {left}–{left + width - 1}</p>'
                     '<div class="panels">')
        parts.append(f'<figure class="overview"><img alt="whole ground truth of image {html.escape(row.image_id)} '
                     f'with the crop outlined" src="data:image/png;base64,{row.overview_base64}">'
                     "<figcaption><b>where</b><br>whole image, crop in red</figcaption></figure>")
        for panel in row.panels:
            caption = f"<b>{html.escape(panel.title)}</b><br>{html.escape(panel.caption) or '&nbsp;'}"
            if panel.png_base64:
                parts.append(f'<figure><img class="crop" alt="{html.escape(panel.title)}, image '
                             f'{html.escape(row.image_id)}" src="data:image/png;base64,{panel.png_base64}">'
                             f"<figcaption>{caption}</figcaption></figure>")
            else:
                parts.append(f'<figure><div class="placeholder">{html.escape(panel.placeholder)}</div>'
                             f"<figcaption>{caption}</figcaption></figure>")
        parts.append("</div></div>")
    parts.append("</section>")
    return "".join(parts)


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1d1d1f;
       background: #fff; line-height: 1.45; }
header, section > p, footer { max-width: 1100px; }
h1 { font-size: 1.5em; margin-bottom: 0.3em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
h3 { margin: 1em 0 0.2em; font-size: 1.05em; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: 0.92em; background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 0.92em; }
th, td { padding: 4px 9px; border-bottom: 1px solid #e4e4e4; text-align: right; white-space: nowrap; }
th.text, td.text, table.plain th[scope=row] { text-align: left; }
thead th { white-space: normal; vertical-align: bottom; max-width: 7.5em; }
table.sortable th button { font: inherit; font-weight: 600; border: 0; background: none; padding: 0;
                           cursor: pointer; color: inherit; }
table.sortable th[aria-sort=ascending] button::after { content: " ▲"; }
table.sortable th[aria-sort=descending] button::after { content: " ▼"; }
tr.best td { background: #fff6d9; }
thead th { background: #f6f6f6; }
img.plot { display: block; margin: 10px 0; max-width: 100%; height: auto; }
.panels { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
figure { margin: 0; width: 256px; font-size: 0.85em; }
figure.overview { width: auto; max-width: 256px; }
img.crop { width: 256px; height: auto; image-rendering: pixelated; display: block; }
.placeholder { width: 256px; height: 256px; background: repeating-linear-gradient(45deg, #eee, #eee 8px, #f8f8f8 8px,
               #f8f8f8 16px); display: flex; align-items: center; justify-content: center; text-align: center;
               color: #555; padding: 8px; box-sizing: border-box; overflow-wrap: anywhere; }
p.where { margin: 0 0 6px; color: #555; font-size: 0.9em; }
footer { margin-top: 2em; color: #666; font-size: 0.85em; }
"""

# Sorting: numbers by the cell's data-sort value, empty cells always last; and, for checking that the
# page rendered, the count of decoded images written onto <body> once everything has loaded.
_SCRIPT = """
(function () {
  function sortKey(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null || raw === "") return null;
    var number = parseFloat(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function sortTable(table, column, header) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (first, second) {
      var a = sortKey(first.cells[column]), b = sortKey(second.cells[column]);
      if (a === null || b === null) return (a === null) - (b === null);
      if (a < b) return ascending ? -1 : 1;
      if (a > b) return ascending ? 1 : -1;
      return 0;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.querySelector("button").addEventListener("click", function () { sortTable(table, column, header); });
    });
  });
  window.addEventListener("load", function () {
    var decoded = 0;
    Array.prototype.forEach.call(document.images, function (image) {
      if (image.complete && image.naturalWidth > 0) decoded += 1;
    });
    document.body.setAttribute("data-images-total", String(document.images.length));
    document.body.setAttribute("data-images-decoded", String(decoded));
  });
})();
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<link rel="icon" href="data:,">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n"
            f"<script>{_SCRIPT}</script>\n</body>\n</html>\n")
