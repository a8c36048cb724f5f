"""The report's crops as data, and the file a run saves them in.

The crop window of an image depends on its ground truth alone (``detail_window``), so every ``bench run``
task cuts from its written-back output the few sensor pixels the report renders (``result_crop``: a
``MosaicCrop`` of ``crop_region``, about 37 KB of uint16 for a 128x128 crop, zlib-compressed in the cache
entry). At the end of the run, ``write_run_crops`` puts the crops of the three images the report chooses
(``choose_crop_images``), with their noisy and ground-truth crops, the rendering and the overview thumbnail,
into ``RUN_DIR/crops.npz``, so that ``bench report`` needs neither the dataset nor a method to show them.

``crops.npz`` (numpy's format, read with ``allow_pickle=False``) holds ``index``, a JSON string::

    {"format": 2,
     "images": [{"image", "role", "cfa", "shape": [H, W], "window": [top, left, height, width],
                 "origin": [row, column], "gains": [r, g, b], "black": [one per plane], "white": int,
                 "methods": [name, ...]}, ...]}

(format 1, written before files could have their own levels, held one ``black_level`` and ``white_level``
for all images instead of each image's ``black`` and ``white``; it is read too)

and, for image k, the arrays ``i{k}_noisy``, ``i{k}_gt`` and ``i{k}_m{j}`` (method j of its list: uint16
sensor pixels cut at ``origin``, all of one shape) and ``i{k}_overview`` (uint8 RGB thumbnail).
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.errors import BenchError
from bench.core.files import atomic_write
from bench.core.levels import Levels, level_range_problem
from bench.report.rendering import (MosaicCrop, Rendering, crop_region, detail_window, overview_thumbnail,
                                    rendering_from_ground_truth, rgb_channels)
from bench.report.statistics import choose_crop_images

CROPS_FILE = "crops.npz"
CROPS_FORMAT = 2
#: The formats ``read_run_crops`` reads.
_READ_FORMATS = (1, 2)
_CFAS = ("RGGB", "BGGR", "GRBG", "GBRG")


@dataclass
class ImageCrops:
    """Everything the crop row of one image needs: the full mosaic's ``shape`` and CFA, the ``window``,
    the ``rendering`` and overview thumbnail (``(h, w, 3)`` uint8) made from the whole ground truth, the
    image's levels (``black_level`` one level or four per plane, as ``normalize`` takes it), and the noisy,
    ground-truth and per-method ``MosaicCrop``s of that window."""

    image_id: str
    role: str
    cfa: str
    shape: tuple[int, int]
    window: tuple[int, int, int, int]
    black_level: int | tuple[int, int, int, int]
    white_level: int
    rendering: Rendering
    overview: np.ndarray
    noisy: MosaicCrop
    gt: MosaicCrop
    methods: dict[str, MosaicCrop] = field(default_factory=dict)

    def render(self, crop: MosaicCrop) -> np.ndarray:
        """``(height, width, 3)`` uint8 sRGB of one of this image's crops."""
        return crop.render(self.cfa, self.black_level, self.white_level, self.rendering)


def image_crops(image_id: str, role: str, noisy_mosaic: np.ndarray, gt_mosaic: np.ndarray, cfa: str,
                levels: Levels) -> ImageCrops:
    """The ImageCrops of an image from its whole ``(H, W)`` uint16 noisy and ground-truth mosaics and its
    ``levels`` (no method crop yet)."""
    from bench.core.rawio import pack_normalized

    gt_packed = pack_normalized(gt_mosaic, levels.black_level, levels.white)
    window = detail_window(gt_packed)
    channels = rgb_channels(gt_packed, cfa)
    rendering = rendering_from_ground_truth(gt_packed, cfa, channels)
    return ImageCrops(image_id, role, cfa, tuple(int(v) for v in gt_mosaic.shape), window, levels.black_level,
                      levels.white, rendering, overview_thumbnail(gt_packed, cfa, window, rendering, channels),
                      MosaicCrop.cut(noisy_mosaic, window), MosaicCrop.cut(gt_mosaic, window))


# ---------------------------------------------------------------------------------------------------------
# one result's crop, as the cache stores it


def crop_window(gt_mosaic: np.ndarray, levels: Levels) -> tuple[int, int, int, int]:
    """The report's crop window ``(top, left, height, width)`` of the image whose ``(H, W)`` uint16 ground
    truth is ``gt_mosaic`` (normalised with ``levels``): ``detail_window`` of it."""
    from bench.core.rawio import pack_normalized

    return detail_window(pack_normalized(gt_mosaic, levels.black_level, levels.white))


def result_crop(output_mosaic: np.ndarray, gt_mosaic: np.ndarray, levels: Levels,
                window: tuple[int, int, int, int] | None = None) -> dict:
    """The crop fact of one result: the pixels of its ``(H, W)`` uint16 written-back ``output_mosaic`` that
    the report renders for the image whose ground truth is ``gt_mosaic`` (normalised with ``levels``;
    ``crop_fact`` format). window: ``crop_window(gt_mosaic, levels)`` when the caller already has it (the
    methods of one image share it)."""
    return crop_fact(MosaicCrop.cut(output_mosaic, window or crop_window(gt_mosaic, levels)))


def crop_fact(crop: MosaicCrop) -> dict:
    """``{"window", "origin", "shape", "pixels"}``: JSON-ready, ``pixels`` the base64 of the zlib-compressed
    little-endian uint16 bytes."""
    data = zlib.compress(np.ascontiguousarray(crop.pixels, dtype="<u2").tobytes(), 6)
    return {"window": list(crop.window), "origin": list(crop.origin), "shape": list(crop.pixels.shape),
            "pixels": base64.b64encode(data).decode("ascii")}


def crop_from_fact(body) -> MosaicCrop:
    """The MosaicCrop of a ``crop_fact``; ValueError when it is malformed or inconsistent."""
    if not isinstance(body, dict):
        raise ValueError(f"crop is {type(body).__name__}, not an object")
    window = _integers(body.get("window"), 4, "window")
    origin = _integers(body.get("origin"), 2, "origin")
    shape = _integers(body.get("shape"), 2, "shape")
    if not isinstance(body.get("pixels"), str):
        raise ValueError("crop has no pixels")
    expected = 2 * shape[0] * shape[1]
    try:
        inflater = zlib.decompressobj()
        data = inflater.decompress(base64.b64decode(body["pixels"], validate=True), expected + 1)
    except (ValueError, zlib.error) as exc:
        raise ValueError(f"crop pixels are not readable ({exc})") from None
    if len(data) != expected or inflater.unconsumed_tail or not inflater.eof:
        raise ValueError(f"crop pixels are not {shape[0]}x{shape[1]} uint16 values")
    crop = MosaicCrop(window, origin, np.frombuffer(data, dtype="<u2").reshape(shape).astype(np.uint16))
    _check_crop(crop, "crop")
    return crop


def valid_crop_fact(body) -> dict | None:
    """``body`` (a ``crop_fact`` or None) if it is well-formed; ValueError otherwise."""
    if body is None:
        return None
    crop_from_fact(body)
    return {name: body[name] for name in ("window", "origin", "shape", "pixels")}


def _integers(value, count: int, name: str) -> tuple[int, ...]:
    if (not isinstance(value, (list, tuple)) or len(value) != count
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise ValueError(f"{name} is {value!r}, not {count} non-negative integers")
    return tuple(int(v) for v in value)


def _check_crop(crop: MosaicCrop, where: str, shape: tuple[int, int] | None = None) -> None:
    """ValueError unless ``crop`` is a 2-D uint16 cut with an even, non-empty window inside it (and, given
    the full mosaic's ``shape``, exactly ``crop_region`` of that window)."""
    top, left, height, width = crop.window
    if crop.pixels.ndim != 2 or crop.pixels.dtype != np.uint16:
        raise ValueError(f"{where}: pixels are not a 2-D uint16 array")
    if height <= 0 or width <= 0 or top % 2 or left % 2 or crop.origin[0] % 2 or crop.origin[1] % 2:
        raise ValueError(f"{where}: window {crop.window} at {crop.origin} is not an even, non-empty window")
    rows, cols = crop.pixels.shape
    if not (crop.origin[0] <= top and top + height <= crop.origin[0] + rows
            and crop.origin[1] <= left and left + width <= crop.origin[1] + cols):
        raise ValueError(f"{where}: window {crop.window} is not inside the pixels cut at {crop.origin}")
    if shape is not None:
        region = crop_region(shape, crop.window)
        if region != (*crop.origin, crop.origin[0] + rows, crop.origin[1] + cols):
            raise ValueError(f"{where}: pixels cut at {crop.origin} are not the crop region {region}")


# ---------------------------------------------------------------------------------------------------------
# the run's crops.npz


def write_run_crops(run_dir: Path, dataset, per_image: pd.DataFrame, references: set[str],
                    crops: dict[tuple[str, str], dict], expected: dict[str, tuple[str, ...]],
                    images: dict[str, ImageCrops] | None = None) -> Path | None:
    """Write ``run_dir/crops.npz`` for the images ``choose_crop_images`` picks from ``per_image`` (the run's
    rows; ``references`` the reference methods): their noisy and ground-truth crops, rendering and overview
    (``images[image]``, made by the run's tasks from the files they read at the run's hashes; else read again
    from the dataset and used only when the files still hash to ``expected[image][:2]``), and every method
    crop ``crops[(method, image)]`` (``crop_fact`` format) of that window. Returns the path, or None when
    there is nothing to save. Raises (BenchError, OSError, ValueError) on a problem; the caller decides."""
    from bench.datasets import load_item

    items = {item.image_id: item for item in dataset.items}
    saved = []
    for role, image_id in choose_crop_images(per_image, references):
        methods = {method: crop for (method, image), crop in crops.items() if image == image_id and crop}
        if image_id not in items or not methods:
            continue
        if images and image_id in images:
            image = dataclasses.replace(images[image_id], role=role, methods={})
        else:
            pair = load_item(dataset, items[image_id])
            if (pair.noisy_sha256, pair.gt_sha256) != tuple(expected[image_id][:2]):
                continue  # changed since the run hashed it: the report falls back to what it can find
            image = image_crops(image_id, role, pair.noisy.mosaic, pair.gt.mosaic, pair.gt.cfa, pair.gt.levels)
        for method, fact in methods.items():
            crop = crop_from_fact(fact)
            if crop.window == image.window and crop.origin == image.noisy.origin \
                    and crop.pixels.shape == image.noisy.pixels.shape:
                image.methods[method] = crop
        saved.append(image)
    if not saved:
        return None
    path = Path(run_dir) / CROPS_FILE
    arrays, entries = {}, []
    for k, image in enumerate(saved):
        entries.append({"image": image.image_id, "role": image.role, "cfa": image.cfa, "shape": list(image.shape),
                        "window": list(image.window), "origin": list(image.noisy.origin),
                        "gains": list(image.rendering.gains),
                        "black": list(Levels.of(image.black_level, image.white_level).black),
                        "white": image.white_level, "methods": list(image.methods)})
        arrays.update({f"i{k}_noisy": image.noisy.pixels, f"i{k}_gt": image.gt.pixels,
                       f"i{k}_overview": image.overview})
        arrays.update({f"i{k}_m{j}": crop.pixels for j, crop in enumerate(image.methods.values())})
    index = {"format": CROPS_FORMAT, "images": entries}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, index=np.array(json.dumps(index)), **arrays)
    atomic_write(path, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    return path


def read_run_crops(run_dir: Path) -> dict[str, ImageCrops] | None:
    """The images of ``run_dir/crops.npz`` by id, or None when the run saved none (an older run, or one
    whose crops could not be saved). BenchError naming the file when it is unreadable or inconsistent."""
    path = Path(run_dir) / CROPS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        index = json.loads(str(arrays["index"]))
        if not isinstance(index, dict) or index.get("format") not in _READ_FORMATS:
            raise ValueError(f"format is not one of {_READ_FORMATS}")
        images = {}
        for k, entry in enumerate(index["images"]):
            levels = entry if index["format"] == 2 else {"black": index["black_level"], "white": index["white_level"]}
            image = _read_image(entry, k, arrays, _levels(levels, f"image {k}"))
            images[image.image_id] = image
        return images
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zlib.error) as exc:
        raise BenchError(f"{path}: not a crops file this version reads ({type(exc).__name__}: {exc})"
                         .splitlines()[0]) from None


def _levels(entry: dict, where: str) -> Levels:
    """The Levels of ``entry["black"]`` (one level or a list of four) and ``entry["white"]``; ValueError."""
    black, white = entry["black"], entry["white"]
    problem = level_range_problem(black, white)
    if problem:
        raise ValueError(f"{where}: levels: {problem}")
    return Levels.of(black, white)


def _read_image(entry: dict, k: int, arrays: dict[str, np.ndarray], levels: Levels) -> ImageCrops:
    where = f"image {k}"
    if not isinstance(entry.get("image"), str) or not isinstance(entry.get("role"), str):
        raise ValueError(f"{where}: no image id or role")
    if entry.get("cfa") not in _CFAS:
        raise ValueError(f"{where}: CFA {entry.get('cfa')!r}")
    shape = _integers(entry.get("shape"), 2, f"{where} shape")
    window = _integers(entry.get("window"), 4, f"{where} window")
    origin = _integers(entry.get("origin"), 2, f"{where} origin")
    gains = entry.get("gains")
    if (not isinstance(gains, list) or len(gains) != 3
            or not all(isinstance(g, (int, float)) and math.isfinite(g) and g > 0 for g in gains)):
        raise ValueError(f"{where}: gains {gains!r}")
    overview = arrays[f"i{k}_overview"]
    if overview.dtype != np.uint8 or overview.ndim != 3 or overview.shape[2] != 3:
        raise ValueError(f"{where}: the overview is not an RGB uint8 image")

    def crop(name: str) -> MosaicCrop:
        cut = MosaicCrop(window, origin, arrays[name])
        _check_crop(cut, f"{where} {name}", shape)
        return cut

    methods = entry.get("methods")
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise ValueError(f"{where}: methods {methods!r}")
    return ImageCrops(entry["image"], entry["role"], entry["cfa"], shape, window, levels.black_level, levels.white,
                      Rendering(tuple(float(g) for g in gains)), overview, crop(f"i{k}_noisy"), crop(f"i{k}_gt"),
                      {method: crop(f"i{k}_m{j}") for j, method in enumerate(methods)})
