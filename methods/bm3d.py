"""BM3D (the reference ``bm3d`` package) on the four Bayer planes jointly, in the variance-stabilised domain.

After the variance-stabilising transform every plane has unit noise std. An orthonormal 2x2 Haar transform
across the four planes of a CFA cell (cell sum, column, row and diagonal differences) keeps the noise white
with unit std in each new channel. BM3D then filters the four channels together, like colour BM3D on a
luminance-chrominance image: similar blocks are found in the first channel (the cell sum, whose
signal-to-noise ratio is the highest) and every channel is filtered along those blocks. On the embedded set
(oracle noise) this scores 57.98 against 56.66 for BM3D on each plane separately, at about the same speed.

The transform is over plane positions, and that is right for every Bayer layout (``NoisyRaw.cfa``): R and B
always lie on one diagonal of the cell and the two G on the other, so for RGGB, GRBG or GBRG the four channels
are those of the planes put in colour order (B, G, G, R) but for the signs of some of channels 1-3 and, for
GRBG and GBRG, a swap of channels 1 and 2. BM3D filters channels 1-3 alike along the blocks matched in channel
0 and its shrinkage is symmetric in sign, so permuting the planes to colour order first changes no output bit
(``tests/test_cfa_methods.py``); no permutation is made.

The image is cut into square tiles, each padded with ``TILE_MARGIN`` pixels of its neighbours, which are
denoised independently and cropped back; with more than one tile they run in worker processes. Images up to
``tile_size`` packed pixels on a side are one tile, denoised in this process (each BM3D call also costs about
1 s of fixed set-up, so smaller tiles do not pay). Each BM3D call is single-threaded (the package's own
threads change the float summation order, which makes its output vary slightly from run to run), so the
result is bit-identical whatever the number of workers. Workers are started with ``spawn`` so they never
inherit the threads or locks of the calling process (OpenCV, BLAS, a test runner); a script that calls this
method on a multi-tile image with more than one worker therefore needs the usual
``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from bench.core.processes import available_cores, die_with_parent
from bench.core.noise_model import NoiseProfile
from methods.toolkit.vst import denoise_stabilised
from methods.base import Method, NoisyRaw, above, at_least, param
from methods.registry import register_method

#: Orthonormal (and its own inverse) 2x2 Haar transform across the four planes of a CFA cell. Row 0 is the
#: cell sum / 2, the channel in which BM3D matches blocks.
HAAR_2X2 = np.array([[1, 1, 1, 1],
                     [1, -1, 1, -1],
                     [1, 1, -1, -1],
                     [1, -1, -1, 1]], dtype=np.float64) / 2.0
#: Pixels of context added on each side of a tile (enough for BM3D's 8x8 blocks to see past the seam).
TILE_MARGIN = 16
#: Most worker processes used by default.
MAX_WORKERS = 4


@dataclass(frozen=True)
class Tile:
    """Where one tile lies: ``core`` (the pixels it produces) and ``padded`` (core plus margin) as slices
    of the image, and ``core_in_padded``, the core as slices of the padded crop."""

    core: tuple[slice, slice]
    padded: tuple[slice, slice]
    core_in_padded: tuple[slice, slice]


def tile_grid(height: int, width: int, tile_size: int, margin: int) -> list[Tile]:
    """Cover a ``height`` x ``width`` image with near-equal tiles of side at most ``tile_size`` (0: one tile),
    each padded by ``margin`` pixels on the sides that have neighbours."""
    rows = _spans(height, tile_size)
    cols = _spans(width, tile_size)
    tiles = []
    for r0, r1 in rows:
        for c0, c1 in cols:
            pr0, pr1 = max(r0 - margin, 0), min(r1 + margin, height)
            pc0, pc1 = max(c0 - margin, 0), min(c1 + margin, width)
            tiles.append(Tile(core=(slice(r0, r1), slice(c0, c1)), padded=(slice(pr0, pr1), slice(pc0, pc1)),
                              core_in_padded=(slice(r0 - pr0, r1 - pr0), slice(c0 - pc0, c1 - pc0))))
    return tiles


def _spans(length: int, tile_size: int) -> list[tuple[int, int]]:
    """Split ``range(length)`` into the fewest near-equal ``(start, stop)`` spans of at most ``tile_size``."""
    count = 1 if tile_size <= 0 else -(-length // tile_size)
    edges = [round(k * length / count) for k in range(count + 1)]
    return list(zip(edges[:-1], edges[1:]))


def bm3d_joint(channels: np.ndarray, sigma: float, speed: str = "standard") -> np.ndarray:
    """BM3D, both stages, single-threaded, of ``(h, w, c)`` float64 channels with white noise of std ``sigma``
    in each; blocks are matched in channel 0. Returns the denoised ``(h, w, c)`` float64.
    Module-level so that worker processes can run it."""
    import bm3d

    # "fast": the package's low-complexity profile (sparser reference blocks, smaller search windows)
    profile = bm3d.BM3DProfileLC() if speed == "fast" else bm3d.BM3DProfile()
    profile.num_threads = 1  # deterministic: the package's threads reorder float sums
    denoised = bm3d.bm3d(channels, sigma_psd=[sigma] * channels.shape[-1], profile=profile,
                         stage_arg=bm3d.BM3DStages.ALL_STAGES)
    return np.asarray(denoised, dtype=np.float64).reshape(channels.shape)


def bm3d_packed(packed: np.ndarray, profile: NoiseProfile, sigma_scale: float, speed: str, tile_size: int,
                workers: int) -> np.ndarray:
    """``(h, w, 4)`` float32 noisy normalised image with noise ``profile`` -> the denoised ``(h, w, 4)``
    float32 in [0, 1]. Parameters as declared on ``BM3D``."""

    def filter_unit_noise(stabilised: np.ndarray) -> np.ndarray:
        # (h, w, 4) float64 with unit noise std -> denoised (h, w, 4) float64
        channels = stabilised @ HAAR_2X2.T
        tiles = tile_grid(channels.shape[0], channels.shape[1], tile_size, TILE_MARGIN)
        crops = [np.ascontiguousarray(channels[tile.padded]) for tile in tiles]
        sigmas = [sigma_scale] * len(crops)
        speeds = [speed] * len(crops)
        processes = min(workers if workers > 0 else min(MAX_WORKERS, available_cores()), len(crops))
        if processes == 1:
            results = [bm3d_joint(crop, sigma, speed) for crop, sigma in zip(crops, sigmas)]
        else:
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=processes, mp_context=spawn, initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                results = list(pool.map(bm3d_joint, crops, sigmas, speeds))
        denoised = np.empty_like(channels)
        for tile, result in zip(tiles, results):
            denoised[tile.core] = result[tile.core_in_padded]
        return denoised @ HAAR_2X2

    return denoise_stabilised(packed, profile, filter_unit_noise)


@register_method("bm3d")
@dataclass
class BM3D(Method):
    """BM3D (reference bm3d package, both stages) on the 4 Bayer planes jointly after a VST and a 2x2 Haar."""

    kind = "classical"
    requires = {"bm3d": "bm3d"}
    packed_function = staticmethod(bm3d_packed)
    wrapped_library = "bm3d.bm3d"
    sigma_scale: float = param(0.9, "noise std given to BM3D, in units of the stabilised noise std",
                               low=0.7, high=1.2, valid=above(0))
    speed: str = param("standard", "the bm3d package's standard profile, or its low-complexity one (\"fast\": "
                                   "sparser blocks, smaller search windows)", choices=("standard", "fast"))
    tile_size: int = param(512, "side of the square tiles (packed pixels) denoised independently and in "
                                "parallel, each with 16 pixels of overlap; 0 = the whole image at once",
                         valid=at_least(0))
    workers: int = param(0, "worker processes: 0 = min(4, the cores this process may use), 1 = everything in "
                            "this process", valid=at_least(0))

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        return bm3d_packed(raw.packed, raw.noise, **self.param_values())

    def library_call(self, packed: np.ndarray, sigma: float) -> np.ndarray:
        """The bm3d package, both stages, on the four planes as they are (no stabilisation, no Haar, no
        tiles, the package's own threads), noise std ``sigma_scale * sigma`` in each -> ``(h, w, 4)`` float64."""
        import bm3d

        profile = bm3d.BM3DProfileLC() if self.speed == "fast" else bm3d.BM3DProfile()
        return bm3d.bm3d(packed.astype(np.float64), sigma_psd=[self.sigma_scale * sigma] * packed.shape[-1],
                         profile=profile, stage_arg=bm3d.BM3DStages.ALL_STAGES)
