"""Burst alignment: coarse-to-fine tile matching of each frame to the reference, then a dense warp.

Works on packed frames (``(h, w, 4)`` float in [0, 1]). Matching uses the Bayer-downsampled grey image
(the mean of the four planes, one value per 2x2 CFA cell), so every displacement is in packed pixels
(one packed pixel = two sensor pixels) and moves all four planes together.

The pyramid halves the grey image per level. At each level the image is cut into ``tile`` x ``tile``
tiles; every tile starts from twice the displacement its parent tile found one level up and searches
``search`` pixels around it for the smallest sum of squared differences (the coarse-to-fine tile search
of Hasinoff et al. 2016, HDR+). At the finest level a few Lucas-Kanade iterations per tile add the
sub-pixel part, a 3x3 median over the tile field replaces displacements that noise decided in flat
tiles, and an affine camera-motion model fitted to the field replaces any tile's shift that matches no
better than the model's. The per-tile displacements are then interpolated to a dense field and each plane is resampled
with cubic interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.demosaic import demosaic, mosaic_rgb
from bench.core.rawio import pack, unpack

#: Default tile side (pixels of each pyramid level) and search radius per level.
DEFAULT_TILE = 16
DEFAULT_SEARCH = 4
DEFAULT_LEVELS = 3
#: Lucas-Kanade iterations of the sub-pixel refinement.
LK_ITERATIONS = 3
#: A tile takes the global motion model's shift when its sum of squared differences there is at most this
#: much (relatively) above the one at its own shift. Noise alone makes the SSD of a 16x16 tile vary by
#: about sqrt(2/256) = 9 % of itself, so 0.25 is about three standard deviations.
GLOBAL_TOLERANCE = 0.25
#: Smallest tile field a global motion model is fitted to.
MIN_TILES_FOR_MODEL = 6


@dataclass(frozen=True)
class TileShifts:
    """Displacement of each ``tile`` x ``tile`` tile of the reference: ``shifts[i, j] = (dy, dx)`` float, in
    packed pixels, such that ``frame[y + dy, x + dx] ~ reference[y, x]`` for the pixels of tile (i, j)."""

    shifts: np.ndarray  # (tiles_y, tiles_x, 2) float64
    tile: int


def grey(packed: np.ndarray) -> np.ndarray:
    """``(h, w, 4)`` packed frame -> ``(h, w)`` float32 mean of the four planes."""
    return np.asarray(packed, dtype=np.float32).mean(axis=-1)


def align_frame(reference: np.ndarray, frame: np.ndarray, tile: int = DEFAULT_TILE, search: int = DEFAULT_SEARCH,
                levels: int = DEFAULT_LEVELS) -> TileShifts:
    """Align one ``(h, w)`` grey frame to the ``(h, w)`` grey reference (see the module docstring).

    The pyramid has at most ``levels`` levels and stops earlier when a level would be under two tiles on
    a side. Largest displacement found: ``search * (2**levels - 1)`` pixels plus the sub-pixel part.
    """
    if reference.shape != frame.shape or reference.ndim != 2:
        raise ValueError(f"reference {reference.shape} and frame {frame.shape} must be equal 2-D shapes")
    pyramid_ref, pyramid_frame = [np.asarray(reference, np.float32)], [np.asarray(frame, np.float32)]
    while len(pyramid_ref) < levels and min(pyramid_ref[-1].shape) >= 4 * tile:
        pyramid_ref.append(_half(pyramid_ref[-1]))
        pyramid_frame.append(_half(pyramid_frame[-1]))

    shifts = None
    for level in range(len(pyramid_ref) - 1, -1, -1):
        ref, alt = pyramid_ref[level], pyramid_frame[level]
        tiles_y, tiles_x = -(-ref.shape[0] // tile), -(-ref.shape[1] // tile)
        if shifts is None:
            start = np.zeros((tiles_y, tiles_x, 2), dtype=np.int64)
        else:
            start = 2 * _parent_shifts(shifts, tiles_y, tiles_x)
        costs = _tile_costs(ref, alt, start, tile, search)
        best = costs.reshape(tiles_y, tiles_x, -1).argmin(axis=-1)
        side = 2 * search + 1
        step = np.stack([best // side - search, best % side - search], axis=-1)
        shifts = start + step
    refined = _median3(_refine_subpixel(pyramid_ref[0], pyramid_frame[0], shifts.astype(np.float64), tile))
    return TileShifts(shifts=_prefer_global_motion(pyramid_ref[0], pyramid_frame[0], refined, tile), tile=tile)


def dense_field(tile_shifts: TileShifts, height: int, width: int) -> np.ndarray:
    """Per-pixel ``(height, width, 2)`` float32 displacement, bilinear between tile centres."""
    import cv2

    tiles_y, tiles_x, _ = tile_shifts.shifts.shape
    size = tile_shifts.tile
    field = cv2.resize(tile_shifts.shifts.astype(np.float32), (tiles_x * size, tiles_y * size),
                       interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(field[:height, :width])


def warp(frame: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Resample ``(h, w, c)`` ``frame`` at ``(y + dy, x + dx)`` (cubic, edges reflected), clipped to the
    frame's own value range so cubic overshoot never leaves [0, 1]. Returns ``(h, w, c)`` float32."""
    import cv2

    height, width = frame.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_y, map_x = ys + field[..., 0], xs + field[..., 1]
    frame = np.ascontiguousarray(frame, dtype=np.float32)
    out = np.empty_like(frame)
    for c in range(frame.shape[-1]):
        out[..., c] = cv2.remap(frame[..., c], map_x, map_y, interpolation=cv2.INTER_CUBIC,
                                borderMode=cv2.BORDER_REFLECT)
    return np.clip(out, frame.min(), frame.max())


def align_burst(frames: np.ndarray, cfa: str, tile: int = DEFAULT_TILE, search: int = DEFAULT_SEARCH,
                levels: int = DEFAULT_LEVELS) -> np.ndarray:
    """``(N, h, w, 4)`` packed burst -> ``(N, h, w, 4)`` float32 with every frame warped onto frame 0
    (frame 0 returned unchanged). ``cfa``: the planes' colours (for :func:`warp_mosaic`)."""
    frames = np.asarray(frames, dtype=np.float32)
    aligned = frames.copy()
    fields = burst_fields(frames, tile=tile, search=search, levels=levels)
    for k in range(1, len(frames)):
        aligned[k] = warp_mosaic(frames[k], fields[k], cfa)
    return aligned


def burst_fields(frames: np.ndarray, tile: int = DEFAULT_TILE, search: int = DEFAULT_SEARCH,
                 levels: int = DEFAULT_LEVELS) -> np.ndarray:
    """``(N, h, w, 4)`` packed burst -> ``(N, h, w, 2)`` float32 displacement (packed pixels, ``frame[y + dy,
    x + dx] ~ reference[y, x]``) of every frame onto frame 0 (frame 0: zeros), as :func:`align_burst` warps
    by."""
    frames = np.asarray(frames, dtype=np.float32)
    reference = grey(frames[0])
    height, width = reference.shape
    fields = np.zeros((len(frames), height, width, 2), dtype=np.float32)
    for k in range(1, len(frames)):
        shifts = align_frame(reference, grey(frames[k]), tile=tile, search=search, levels=levels)
        fields[k] = dense_field(shifts, height, width)
    return fields


def warp_mosaic(frame: np.ndarray, field: np.ndarray, cfa: str) -> np.ndarray:
    """Resample a packed ``(h, w, 4)`` frame at ``(y + dy, x + dx)`` (``field``: ``(h, w, 2)`` in packed
    pixels) through full-resolution RGB: demosaic, move every colour with cubic interpolation, mosaic again.
    Shifting each Bayer plane on its own, at half resolution, would alias: on the embedded photographs that
    costs 6-9 dB of fidelity at sub-pixel shifts. Returns ``(h, w, 4)`` float32 clipped to the frame's range."""
    import cv2

    height, width = frame.shape[:2]
    mosaic = unpack(np.asarray(frame, dtype=np.float64))
    rgb = demosaic(mosaic, cfa)
    full_field = 2.0 * cv2.resize(np.ascontiguousarray(field, dtype=np.float32), (2 * width, 2 * height),
                                  interpolation=cv2.INTER_LINEAR)
    moved = warp(rgb.astype(np.float32), full_field)
    return np.clip(pack(mosaic_rgb(moved, cfa)), frame.min(), frame.max()).astype(np.float32)


def _median3(shifts: np.ndarray) -> np.ndarray:
    """3x3 median of each component of a ``(tiles_y, tiles_x, 2)`` field: a tile whose match was decided
    by noise (flat content) takes its neighbours' displacement, while motion edges are kept."""
    from scipy.ndimage import median_filter

    return np.stack([median_filter(shifts[..., k], size=3, mode="nearest") for k in range(2)], axis=-1)


def _half(image: np.ndarray) -> np.ndarray:
    """2x2 box downsampling (an odd last row or column is dropped)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    image = image[:h, :w]
    return 0.25 * (image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2])


def _parent_shifts(coarse: np.ndarray, tiles_y: int, tiles_x: int) -> np.ndarray:
    """For each tile of the finer level, the (integer) shift of the coarse tile that holds its centre."""
    rows = np.minimum(np.arange(tiles_y) // 2, coarse.shape[0] - 1)
    cols = np.minimum(np.arange(tiles_x) // 2, coarse.shape[1] - 1)
    return np.rint(coarse[rows[:, None], cols[None, :]]).astype(np.int64)


def _tile_costs(ref: np.ndarray, alt: np.ndarray, start: np.ndarray, tile: int, search: int) -> np.ndarray:
    """Sum of squared differences between each reference tile and the frame displaced by ``start + (dy, dx)``
    for every ``dy, dx`` in ``[-search, search]``: ``(tiles_y, tiles_x, 2*search+1, 2*search+1)`` float64.
    Outside the frame, its edge pixels are repeated."""
    ref_tiles = _cut_tiles(ref, np.zeros_like(start), tile, margin=0)
    windows = _cut_tiles(alt, start, tile, margin=search)
    tiles_y, tiles_x = start.shape[:2]
    side = 2 * search + 1
    costs = np.empty((tiles_y, tiles_x, side, side))
    for dy in range(side):
        for dx in range(side):
            diff = windows[:, :, dy:dy + tile, dx:dx + tile] - ref_tiles
            costs[:, :, dy, dx] = np.einsum("ijkl,ijkl->ij", diff, diff, dtype=np.float64)
    return costs


def _refine_subpixel(ref: np.ndarray, alt: np.ndarray, shifts: np.ndarray, tile: int) -> np.ndarray:
    """Refine integer tile ``shifts`` ``(tiles_y, tiles_x, 2)`` to sub-pixel ones: ``LK_ITERATIONS``
    Lucas-Kanade (Gauss-Newton) steps per tile, resampling the frame (cubic) at the current shifts and
    linearising with the reference tile's gradients. A tile without texture in both directions keeps its
    integer shift; each tile moves at most one pixel in total."""
    ref_tiles = _cut_tiles(ref, np.zeros(shifts.shape, dtype=np.int64), tile, margin=1)
    grad_y = 0.5 * (ref_tiles[:, :, 2:, 1:-1] - ref_tiles[:, :, :-2, 1:-1])
    grad_x = 0.5 * (ref_tiles[:, :, 1:-1, 2:] - ref_tiles[:, :, 1:-1, :-2])
    ref_tiles = ref_tiles[:, :, 1:-1, 1:-1]
    gyy = (grad_y * grad_y).sum(axis=(2, 3), dtype=np.float64)
    gxx = (grad_x * grad_x).sum(axis=(2, 3), dtype=np.float64)
    gxy = (grad_x * grad_y).sum(axis=(2, 3), dtype=np.float64)
    det = gyy * gxx - gxy * gxy
    trace = gyy + gxx
    # well conditioned: the smaller eigenvalue of the structure tensor is a fair share of the larger
    textured = (trace > 0) & (det > 1e-3 * trace * trace)
    safe_det = np.where(textured, det, 1.0)
    integer = shifts.copy()
    for _ in range(LK_ITERATIONS):
        residual = _tile_residuals(ref_tiles, alt, shifts, tile)
        by = (grad_y * residual).sum(axis=(2, 3), dtype=np.float64)
        bx = (grad_x * residual).sum(axis=(2, 3), dtype=np.float64)
        # frame(p + s + d) ~ frame(p + s) + grad . d must equal ref(p): grad . d = -residual
        step = np.stack([-(gxx * by - gxy * bx) / safe_det, -(gyy * bx - gxy * by) / safe_det], axis=-1)
        shifts = np.where(textured[..., None], np.clip(shifts + step, integer - 1.0, integer + 1.0), shifts)
    return shifts


def _tile_residuals(ref_tiles: np.ndarray, alt: np.ndarray, shifts: np.ndarray, tile: int) -> np.ndarray:
    """``(tiles_y, tiles_x, tile, tile)``: the frame resampled (cubic) at each tile's own sub-pixel shift,
    minus the reference tiles."""
    height, width = alt.shape
    per_pixel = np.repeat(np.repeat(shifts, tile, axis=0), tile, axis=1)[:height, :width]
    resampled = warp(alt[..., None], per_pixel.astype(np.float32))[..., 0]
    return _cut_tiles(resampled, np.zeros(shifts.shape, dtype=np.int64), tile, margin=0) - ref_tiles


def _prefer_global_motion(ref: np.ndarray, alt: np.ndarray, shifts: np.ndarray, tile: int) -> np.ndarray:
    """Fit one affine motion (camera shake: translation, rotation, zoom) to the tile field by iteratively
    trimmed least squares, then give every tile the model's shift wherever it matches about as well as the
    tile's own: sum of squared differences at most ``1 + GLOBAL_TOLERANCE`` times the tile's own. Tiles
    whose match noise decided (flat content) follow the camera; tiles that really moved differently keep
    their own shift. Fields of under ``MIN_TILES_FOR_MODEL`` tiles are returned unchanged."""
    tiles_y, tiles_x = shifts.shape[:2]
    if tiles_y * tiles_x < MIN_TILES_FOR_MODEL:
        return shifts
    centre_y, centre_x = np.meshgrid((np.arange(tiles_y) + 0.5) * tile, (np.arange(tiles_x) + 0.5) * tile,
                                     indexing="ij")
    design = np.stack([centre_y.ravel(), centre_x.ravel(), np.ones(centre_y.size)], axis=-1)
    target = shifts.reshape(-1, 2)
    keep = np.ones(len(target), dtype=bool)
    for _ in range(4):
        coefficients, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        misfit = np.linalg.norm(target - design @ coefficients, axis=-1)
        new_keep = misfit <= max(0.5, 3.0 * float(np.median(misfit)))
        if new_keep.sum() < 3 or (new_keep == keep).all():
            break
        keep = new_keep
    model = (design @ coefficients).reshape(shifts.shape)
    ref_tiles = _cut_tiles(ref, np.zeros(shifts.shape, dtype=np.int64), tile, margin=0)
    own_cost = (_tile_residuals(ref_tiles, alt, shifts, tile) ** 2).sum(axis=(2, 3))
    model_cost = (_tile_residuals(ref_tiles, alt, model, tile) ** 2).sum(axis=(2, 3))
    use_model = model_cost <= own_cost * (1.0 + GLOBAL_TOLERANCE)
    return np.where(use_model[..., None], model, shifts)


def _cut_tiles(image: np.ndarray, shifts: np.ndarray, tile: int, margin: int) -> np.ndarray:
    """The ``(tiles_y, tiles_x, tile + 2*margin, tile + 2*margin)`` windows of ``image`` at each tile's
    position plus its integer shift, with ``margin`` extra pixels on every side (edges repeated)."""
    tiles_y, tiles_x = shifts.shape[:2]
    pad = int(np.abs(shifts).max()) + tile + margin
    padded = np.pad(image, pad, mode="edge")
    offsets = np.arange(tile + 2 * margin)
    top = np.arange(tiles_y)[:, None] * tile + shifts[..., 0] - margin + pad
    left = np.arange(tiles_x)[None, :] * tile + shifts[..., 1] - margin + pad
    return padded[top[:, :, None, None] + offsets[None, None, :, None],
                  left[:, :, None, None] + offsets[None, None, None, :]]
