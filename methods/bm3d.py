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
``tile_size`` packed pixels on a side are one tile, denoised in this process. Tiles cost twice: each BM3D call has
about 0.7 s of fixed set-up, and the margins are filtered twice. A full 16 MP frame (1736x2312 packed) is 6 tiles
of 1024 (4.7 % more pixels filtered than the frame) where tiles of 512 made
20 (11 % more pixels, 20 set-ups); 6 tiles still keep 2 workers busy and need about a fifth of the whole-frame
call's memory. Each BM3D call is single-threaded (the package's own
threads change the float summation order, which makes its output vary slightly from run to run), so the
result is bit-identical whatever the number of workers. Workers are started with ``spawn`` so they never
inherit the threads or locks of the calling process (OpenCV, BLAS, a test runner); a script that calls this
method on a multi-tile image with more than one worker therefore needs the usual
``if __name__ == "__main__":`` guard.

The profile is the package's standard one or, with ``speed="fast"``, its low-complexity one; the profile
parameters (``step_ht`` ... ``search_window_wiener``, ``wiener``) change single fields of it, 0 keeping the
profile's own value, so the defaults run the standard profile unchanged. ``results/params/bm3d-night.json`` is
the fastest choice found within 0.05 dB of the standard profile (README, *BM3D at night speed*;
``python -m bench.benchmarks.bm3d_profiles``).
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


#: The bm3d package's profile fields that the method's parameters of the same names set (0: the value of the
#: profile ``speed`` picks). ``_ht``: the hard-thresholding stage, ``_wiener``: the Wiener stage; ``step``:
#: distance between reference blocks, ``max_3d_size``: most blocks stacked per group, ``search_window``: side
#: of the block-matching search area, ``bs``: block side.
PROFILE_FIELDS = ("step_ht", "max_3d_size_ht", "search_window_ht", "bs_wiener", "step_wiener",
                  "max_3d_size_wiener", "search_window_wiener")


def package_profile(speed: str, overrides: tuple[tuple[str, int], ...] = ()):
    """The bm3d package profile: ``BM3DProfile`` ("standard") or ``BM3DProfileLC`` ("fast", sparser
    reference blocks, smaller search windows), with each ``(field, value)`` of ``overrides`` (fields of
    ``PROFILE_FIELDS``, value 0 = keep the profile's) set on it."""
    import bm3d

    profile = bm3d.BM3DProfileLC() if speed == "fast" else bm3d.BM3DProfile()
    for field_name, value in overrides:
        if field_name not in PROFILE_FIELDS:
            raise ValueError(f"not a BM3D profile field this method sets: {field_name!r}")
        if value:
            setattr(profile, field_name, int(value))
    return profile


def bm3d_joint(channels: np.ndarray, sigma: float, speed: str = "standard",
               overrides: tuple[tuple[str, int], ...] = (), wiener: bool = True) -> np.ndarray:
    """BM3D, single-threaded, of ``(h, w, c)`` float64 channels with white noise of std ``sigma`` in each;
    blocks are matched in channel 0. Profile: ``package_profile(speed, overrides)``; both stages, or the
    hard-thresholding stage alone when ``wiener`` is False. Returns the denoised ``(h, w, c)`` float64.
    Module-level so that worker processes can run it."""
    import bm3d

    profile = package_profile(speed, overrides)
    profile.num_threads = 1  # deterministic: the package's threads reorder float sums
    stages = bm3d.BM3DStages.ALL_STAGES if wiener else bm3d.BM3DStages.HARD_THRESHOLDING
    denoised = bm3d.bm3d(channels, sigma_psd=[sigma] * channels.shape[-1], profile=profile, stage_arg=stages)
    return np.asarray(denoised, dtype=np.float64).reshape(channels.shape)


def bm3d_packed(packed: np.ndarray, profile: NoiseProfile, sigma_scale: float, speed: str, tile_size: int,
                workers: int, step_ht: int = 0, max_3d_size_ht: int = 0, search_window_ht: int = 0,
                bs_wiener: int = 0, step_wiener: int = 0, max_3d_size_wiener: int = 0,
                search_window_wiener: int = 0, wiener: bool = True) -> np.ndarray:
    """``(h, w, 4)`` float32 noisy normalised image with noise ``profile`` -> the denoised ``(h, w, 4)``
    float32 in [0, 1]. Parameters as declared on ``BM3D``."""
    overrides = (("step_ht", step_ht), ("max_3d_size_ht", max_3d_size_ht), ("search_window_ht", search_window_ht),
                 ("bs_wiener", bs_wiener), ("step_wiener", step_wiener),
                 ("max_3d_size_wiener", max_3d_size_wiener), ("search_window_wiener", search_window_wiener))

    def filter_unit_noise(stabilised: np.ndarray) -> np.ndarray:
        # (h, w, 4) float64 with unit noise std -> denoised (h, w, 4) float64
        channels = stabilised @ HAAR_2X2.T
        tiles = tile_grid(channels.shape[0], channels.shape[1], tile_size, TILE_MARGIN)
        crops = [np.ascontiguousarray(channels[tile.padded]) for tile in tiles]
        sigmas = [sigma_scale] * len(crops)
        speeds = [speed] * len(crops)
        processes = min(workers if workers > 0 else min(MAX_WORKERS, available_cores()), len(crops))
        if processes == 1:
            results = [bm3d_joint(crop, sigma, speed, overrides, wiener) for crop, sigma in zip(crops, sigmas)]
        else:
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=processes, mp_context=spawn, initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:
                results = list(pool.map(bm3d_joint, crops, sigmas, speeds, [overrides] * len(crops),
                                        [wiener] * len(crops)))
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
    tile_size: int = param(1024, "side of the square tiles (packed pixels) denoised independently and in "
                                "parallel, each with 16 pixels of overlap; 0 = the whole image at once",
                         valid=at_least(0))
    workers: int = param(0, "worker processes: 0 = min(4, the cores this process may use), 1 = everything in "
                            "this process", valid=at_least(0))
    step_ht: int = param(0, "hard-thresholding stage: pixels between reference blocks (0: the profile's, "
                            "standard 3, fast 6)", valid=at_least(0))
    max_3d_size_ht: int = param(0, "hard-thresholding stage: most blocks stacked per group, a power of 2 (0: the "
                                   "profile's, 16)", valid=at_least(0))
    search_window_ht: int = param(0, "hard-thresholding stage: side of the block-matching search area, odd "
                                     "(0: the profile's, standard 39, fast 25)", valid=at_least(0))
    bs_wiener: int = param(0, "Wiener stage: block side (0: the profile's, 8)", valid=at_least(0))
    step_wiener: int = param(0, "Wiener stage: pixels between reference blocks (0: the profile's, standard 3, "
                                "fast 5)", valid=at_least(0))
    max_3d_size_wiener: int = param(0, "Wiener stage: most blocks stacked per group, a power of 2 (0: the "
                                       "profile's, standard 32, fast 16)", valid=at_least(0))
    search_window_wiener: int = param(0, "Wiener stage: side of the block-matching search area, odd (0: the "
                                         "profile's, standard 39, fast 25)", valid=at_least(0))
    wiener: bool = param(True, "run the Wiener stage after hard thresholding (False: hard thresholding only)")

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        return bm3d_packed(raw.packed, raw.noise, **self.param_values())

    def library_call(self, packed: np.ndarray, sigma: float) -> np.ndarray:
        """The bm3d package with this method's profile and stages, on the four planes as they are (no
        stabilisation, no Haar, no tiles, the package's own threads), noise std ``sigma_scale * sigma`` in
        each -> ``(h, w, 4)`` float64."""
        import bm3d

        profile = package_profile(self.speed, tuple((name, getattr(self, name)) for name in PROFILE_FIELDS))
        stages = bm3d.BM3DStages.ALL_STAGES if self.wiener else bm3d.BM3DStages.HARD_THRESHOLDING
        return bm3d.bm3d(packed.astype(np.float64), sigma_psd=[self.sigma_scale * sigma] * packed.shape[-1],
                         profile=profile, stage_arg=stages)
