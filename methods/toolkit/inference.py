"""Running a packed-RAW network on an image of any size: noise-map input, tiling with smooth blending,
padding to the network's size multiple, CPU or CUDA, fp32 or fp16.

Networks follow the convention of ``methods/networks``: input ``(B, 4 or 8, H, W)`` float (4 packed planes
in [0, 1], then optionally 4 planes of noise std), output ``(B, 4, H, W)``.
"""

from __future__ import annotations

import numpy as np

from bench.core.noise_model import NoiseProfile


def network_input(packed: np.ndarray, profile: NoiseProfile | None) -> np.ndarray:
    """``(h, w, 4)`` packed image in [0, 1] -> ``(4 or 8, h, w)`` float32 channels-first network input:
    the planes, then (with a profile) the noise std ``sqrt(a*x + b)`` at each noisy value ``x``."""
    planes = np.clip(np.asarray(packed, dtype=np.float32), 0.0, 1.0).transpose(2, 0, 1)
    if profile is None:
        return np.ascontiguousarray(planes)
    sigma = np.sqrt(np.float32(profile.a) * planes + np.float32(profile.b))
    return np.ascontiguousarray(np.concatenate([planes, sigma.astype(np.float32)]))


def pick_device(requested: str) -> str:
    """"auto" -> "cuda" when a CUDA device is usable, else "cpu"; "cpu"/"cuda" as given."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    return requested


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``range(length)`` with at least ``overlap`` shared
    pixels between neighbours; the last tile ends exactly at ``length`` (one tile when ``tile >= length``)."""
    if tile >= length:
        return [0]
    stride = tile - overlap
    if stride <= 0:
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile}")
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_window(size: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D weights of a tile: a raised-cosine ramp over ``overlap`` pixels on each side that has a
    neighbour, 1 elsewhere (a ramp never reaches 0, so every pixel keeps some weight)."""
    weights = np.ones(size, dtype=np.float64)
    if overlap > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)
        if not at_start:
            weights[:overlap] = ramp
        if not at_end:
            weights[size - overlap:] = ramp[::-1]
    return weights


def run_tiled(net, inputs: np.ndarray, tile: int = 512, overlap: int = 64, device: str = "cpu",
              half: bool = False) -> np.ndarray:
    """Apply ``net`` to ``(C, h, w)`` float32 ``inputs``; returns ``(4, h, w)`` float32.

    The image is first padded (reflect) up to the network's ``size_multiple()``, so every tile sees the
    same edges, and the same down-sampling grid, as a whole-image pass would. tile: tile side in packed
    pixels (0 = the whole image in one pass), rounded down to the size multiple; neighbouring tiles overlap
    by ``overlap`` pixels (rounded up to the multiple) and are cross-faded with raised-cosine weights, so
    there are no seams. half: fp16 (CUDA only). Peak memory grows with ``tile**2``, not with the image.
    """
    import torch

    if half and device != "cuda":
        raise ValueError("half precision runs on CUDA only")
    channels, height, width = inputs.shape
    multiple = net.size_multiple() if hasattr(net, "size_multiple") else 1
    padded = _pad_to_multiple(inputs, multiple)
    full_h, full_w = padded.shape[1:]
    overlap = -(-overlap // multiple) * multiple
    tile_h = full_h if tile <= 0 else min(max(tile // multiple * multiple, overlap + multiple), full_h)
    tile_w = full_w if tile <= 0 else min(max(tile // multiple * multiple, overlap + multiple), full_w)
    rows, cols = tile_starts(full_h, tile_h, overlap), tile_starts(full_w, tile_w, overlap)
    dtype = torch.float16 if half else torch.float32
    out = np.zeros((4, full_h, full_w), dtype=np.float64)
    total = np.zeros((full_h, full_w), dtype=np.float64)
    with torch.inference_mode():
        for top in rows:
            weight_y = blend_window(tile_h, overlap, top == rows[0], top == rows[-1])
            for left in cols:
                weight_x = blend_window(tile_w, overlap, left == cols[0], left == cols[-1])
                crop = np.ascontiguousarray(padded[:, top:top + tile_h, left:left + tile_w])
                batch = torch.from_numpy(crop)[None].to(device=device, dtype=dtype)
                result = net(batch)[0].float().cpu().numpy().astype(np.float64)
                weight = np.outer(weight_y, weight_x)
                out[:, top:top + tile_h, left:left + tile_w] += result * weight
                total[top:top + tile_h, left:left + tile_w] += weight
    return (out / total)[:, :height, :width].astype(np.float32)


def _pad_to_multiple(inputs: np.ndarray, multiple: int) -> np.ndarray:
    """Pad ``(C, h, w)`` at the bottom and right up to multiples of ``multiple`` (reflect; edge repeat
    when the image is too small to reflect)."""
    _, height, width = inputs.shape
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return inputs
    mode = "reflect" if pad_h < height and pad_w < width else "edge"
    return np.pad(inputs, ((0, 0), (0, pad_h), (0, pad_w)), mode=mode)
