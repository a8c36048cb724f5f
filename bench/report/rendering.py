"""The report's simple ISP and crop windows, numpy only (no OpenCV, no matplotlib): where the crop
of an image lies (``detail_window``, decided by its ground truth alone), which sensor pixels its rendering
reads (``crop_region``), and how a mosaic window becomes sRGB (Malvar demosaic, grey-world white balance and
exposure from the ground truth, sRGB gamma), the overview thumbnail, and PNG encoding."""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass

import numpy as np

#: Side of a crop in sensor pixels (even); shown at twice that size on the page.
CROP_SIZE = 128
#: Sensor pixels read around a crop so that the demosaic's 5x5 kernels see real neighbours (even).
CROP_MARGIN = 4
_THUMBNAIL_SIDE = 240


@dataclass(frozen=True)
class Rendering:
    """How normalised camera RGB becomes display values: per-channel ``gains`` (R, G, B; white balance
    times exposure), then the sRGB curve."""

    gains: tuple[float, float, float]


def _mean_of_planes(packed: np.ndarray, planes: list[int]) -> np.ndarray:
    """The ``(h, w)`` float64 mean of the listed planes of an ``(h, w, 4)`` image, summed in plane order (the
    value ``np.mean`` over those planes gives, without stacking them)."""
    total = packed[..., planes[0]].astype(np.float64)
    for k in planes[1:]:
        total += packed[..., k]
    return total / len(planes) if len(planes) > 1 else total


def rgb_channels(packed: np.ndarray, cfa: str) -> list[np.ndarray]:
    """The R, G and B ``(h, w)`` float64 channels of an ``(h, w, 4)`` normalised packed image (greens
    averaged): ``packed_rgb``'s, unstacked."""
    return [_mean_of_planes(packed, [k for k, letter in enumerate(cfa) if letter == colour]) for colour in "RGB"]


def packed_rgb(packed: np.ndarray, cfa: str) -> np.ndarray:
    """``(h, w, 4)`` normalised packed planes -> ``(h, w, 3)`` float64 half-resolution RGB (greens averaged)."""
    return np.stack(rgb_channels(packed, cfa), axis=-1)


def rendering_from_ground_truth(gt_packed: np.ndarray, cfa: str,
                                channels: list[np.ndarray] | None = None) -> Rendering:
    """Grey-world white balance and an exposure from the ground truth ``(h, w, 4)`` normalised packed image:
    the channel means are equalised to green's, then the 99th percentile of the balanced image goes to 0.95
    (exposure gain kept within [1/4, 16]). channels: ``rgb_channels(gt_packed, cfa)`` when the caller has them."""
    channels = channels if channels is not None else rgb_channels(gt_packed, cfa)
    means = np.maximum(np.array([channel.mean() for channel in channels]), 1e-6)
    balance = means[1] / means
    brightest, scaled = channels[0] * balance[0], np.empty_like(channels[0])
    for channel, gain in zip(channels[1:], balance[1:]):
        np.maximum(brightest, np.multiply(channel, gain, out=scaled), out=brightest)
    high = float(np.percentile(brightest, 99, overwrite_input=True))
    exposure = float(np.clip(0.95 / max(high, 1e-6), 0.25, 16.0))
    return Rendering(tuple(float(g) for g in balance * exposure))


def to_srgb8(rgb: np.ndarray, rendering: Rendering) -> np.ndarray:
    """``(h, w, 3)`` linear camera RGB (normalised) -> ``(h, w, 3)`` uint8 sRGB after ``rendering``'s gains."""
    x = np.clip(rgb * np.asarray(rendering.gains), 0.0, 1.0)
    encoded = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(encoded * 255.0).astype(np.uint8)


def crop_region(shape: tuple[int, int], window: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of the sensor pixels ``render_window`` reads for the ``(top, left,
    height, width)`` window of an ``(H, W)`` mosaic: the window and up to ``CROP_MARGIN`` pixels around it,
    inside the image (even top/left for an even window, so the 2x2 CFA phase is kept)."""
    top, left, height, width = window
    rows, cols = shape
    return (top - min(CROP_MARGIN, top), left - min(CROP_MARGIN, left),
            min(rows, top + height + CROP_MARGIN), min(cols, left + width + CROP_MARGIN))


def render_window(mosaic: np.ndarray, cfa: str, window: tuple[int, int, int, int], black_level: int,
                  white_level: int, rendering: Rendering) -> np.ndarray:
    """The ``(top, left, height, width)`` window (even top/left) of an ``(H, W)`` uint16 mosaic ->
    ``(height, width, 3)`` uint8 sRGB: normalised, Malvar-demosaicked (with ``CROP_MARGIN`` pixels of real
    neighbours where the image has them), balanced, gamma-encoded."""
    from bench.core.demosaic import demosaic
    from bench.core.rawio import normalize

    top, left, height, width = window
    first_row, first_col, bottom, right = crop_region(mosaic.shape, window)
    region = normalize(mosaic[first_row:bottom, first_col:right], black_level, white_level)
    pad_top, pad_left = top - first_row, left - first_col
    # an even offset keeps the 2x2 CFA phase, so ``cfa`` still names the region's planes
    rgb = demosaic(np.clip(region, 0.0, 1.0), cfa)[pad_top : pad_top + height, pad_left : pad_left + width]
    return to_srgb8(rgb, rendering)


@dataclass(frozen=True)
class MosaicCrop:
    """What rendering one crop needs of a mosaic: ``pixels``, the ``(h, w)`` uint16 sensor pixels of
    ``crop_region`` for ``window`` (full-image ``(top, left, height, width)``), cut at ``origin`` (row,
    column). ``render`` gives exactly what ``render_window`` gives on the whole mosaic."""

    window: tuple[int, int, int, int]
    origin: tuple[int, int]
    pixels: np.ndarray

    @classmethod
    def cut(cls, mosaic: np.ndarray, window: tuple[int, int, int, int]) -> "MosaicCrop":
        top, left, bottom, right = crop_region(mosaic.shape, window)
        return cls(tuple(int(v) for v in window), (top, left), np.array(mosaic[top:bottom, left:right], np.uint16))

    def render(self, cfa: str, black_level: int, white_level: int, rendering: Rendering) -> np.ndarray:
        top, left, height, width = self.window
        local = (top - self.origin[0], left - self.origin[1], height, width)
        return render_window(self.pixels, cfa, local, black_level, white_level, rendering)


def detail_window(gt_packed: np.ndarray, size: int = CROP_SIZE) -> tuple[int, int, int, int]:
    """The ``(top, left, height, width)`` sensor-pixel window (even, at most ``size`` square) of most detail
    in a ``(h, w, 4)`` normalised packed ground truth: the highest sum of squared gradients of its
    gamma-encoded brightness. (Computed in place, a few float64 images of ``(h, w)`` at a time.)"""
    brightness = _mean_of_planes(gt_packed, [0, 1, 2, 3])
    np.power(np.clip(brightness, 0.0, 1.0, out=brightness), 1 / 2.2, out=brightness)
    h, w = brightness.shape
    win_h, win_w = min(size // 2, h), min(size // 2, w)
    integral = np.zeros((h + 1, w + 1))  # of the energy, with a zero first row and column
    energy = integral[1:, 1:]
    step = np.diff(brightness, axis=1)
    np.multiply(step, step, out=energy[:, 1:])
    step = np.diff(brightness, axis=0)
    energy[1:, :] += np.multiply(step, step, out=step)
    del step, brightness
    np.cumsum(energy, axis=0, out=energy)
    np.cumsum(energy, axis=1, out=energy)
    sums = integral[win_h:, win_w:] - integral[:-win_h, win_w:]
    sums -= integral[win_h:, :-win_w]
    sums += integral[:-win_h, :-win_w]
    i, j = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return 2 * int(i), 2 * int(j), 2 * win_h, 2 * win_w


def overview_thumbnail(gt_packed: np.ndarray, cfa: str, window: tuple[int, int, int, int],
                       rendering: Rendering, channels: list[np.ndarray] | None = None) -> np.ndarray:
    """A small ``(h, w, 3)`` uint8 view of the whole ground truth (longest side ``_THUMBNAIL_SIDE``) with
    the crop ``window`` outlined in red: the linear RGB shrunk by area averaging, then rendered. channels:
    ``rgb_channels(gt_packed, cfa)`` when the caller has them."""
    h, w = gt_packed.shape[:2]
    scale = min(1.0, _THUMBNAIL_SIDE / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    channels = channels if channels is not None else rgb_channels(gt_packed, cfa)
    small = np.stack([area_average(channel[..., None], *size)[..., 0] for channel in channels], axis=-1)
    thumb = to_srgb8(small, rendering)
    top, left, height, width = window
    x0, y0 = int(left / 2 * scale), int(top / 2 * scale)
    x1, y1 = int((left + width) / 2 * scale) - 1, int((top + height) / 2 * scale) - 1
    _outline(thumb, (min(y0, y1), min(x0, x1), max(y0, y1), max(x0, x1)), (255, 40, 40))
    return thumb


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(h, w, c)`` uint8 shrunk to ``(height, width, c)`` by area averaging (``area_average``), rounded; the
    same size gives a copy."""
    return np.clip(np.rint(area_average(image, height, width)), 0, 255).astype(np.uint8)


def area_average(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(h, w, c)`` (uint8, or floating) shrunk to ``(height, width, c)`` float64 by area averaging: each
    output pixel the mean of the input area it covers, partly covered pixels weighted by the part (OpenCV's
    INTER_AREA for shrinking)."""
    out = image
    for axis, size in ((0, height), (1, width)):
        n = out.shape[axis]
        if size == n:
            continue
        # the integral along ``axis`` at the output pixels' edges (exact in int64 for the uint8 input),
        # linear inside an input pixel; differences of it are the areas
        edges = np.arange(size + 1) * (n / size)
        whole = np.minimum(np.floor(edges).astype(np.int64), n - 1)
        shape = [1] * out.ndim
        shape[axis] = size + 1
        running = np.cumsum(out, axis=axis, dtype=np.int64 if out.dtype == np.uint8 else np.float64)
        before = np.take(running, np.maximum(whole - 1, 0), axis=axis) * (whole > 0).reshape(shape)
        at_edges = before + (edges - whole).reshape(shape) * np.take(out, whole, axis=axis)
        out = np.diff(at_edges, axis=axis) * (size / n)
    return np.asarray(out, dtype=np.float64)


def _outline(image: np.ndarray, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
    """Draw the 1-pixel outline of ``(top, left, bottom, right)`` (inclusive; clipped) into ``image``."""
    rows, cols = image.shape[:2]
    top, left, bottom, right = box
    first_col, last_col = max(left, 0), min(right, cols - 1)
    first_row, last_row = max(top, 0), min(bottom, rows - 1)
    if first_col > last_col or first_row > last_row:
        return
    for row in (top, bottom):
        if 0 <= row < rows:
            image[row, first_col : last_col + 1] = colour
    for col in (left, right):
        if 0 <= col < cols:
            image[first_row : last_row + 1, col] = colour


def png_bytes(rgb: np.ndarray) -> bytes:
    """``(h, w, 3)`` uint8 RGB -> the bytes of a PNG file (8-bit RGB, no interlace), each row filtered by
    whichever of the PNG filters None, Sub, Up and Paeth gives the smallest sum of absolute residuals."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    x = rgb.reshape(h, w * 3).astype(np.int16)
    left = np.pad(x, ((0, 0), (3, 0)))[:, : w * 3]
    up = np.pad(x, ((1, 0), (0, 0)))[:h]
    up_left = np.pad(up, ((0, 0), (3, 0)))[:, : w * 3]
    estimate = left + up - up_left
    pa, pb, pc = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, up_left))
    candidates = np.stack([x, x - left, x - up, x - paeth]).astype(np.uint8)  # residuals modulo 256
    cost = np.abs(candidates.astype(np.int8).astype(np.int16)).sum(axis=2)
    kind = np.array([0, 1, 2, 4], np.uint8)[np.argmin(cost, axis=0)]
    rows = candidates[np.argmin(cost, axis=0), np.arange(h)]
    raw = np.concatenate([kind[:, None], rows], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def png_base64(rgb: np.ndarray) -> str:
    """``(h, w, 3)`` uint8 RGB -> base64 text of its PNG file."""
    return base64.b64encode(png_bytes(rgb)).decode("ascii")
