"""Burst merge in the frequency domain, in the spirit of HDR+ (Hasinoff et al. 2016), plus a spatial stage.

1. Align every frame to frame 0 (:func:`methods.toolkit.align.burst_fields`), then bring it onto the
   reference (``resample``): warp it through a demosaic (``warp``, the default); or, as HDR+ does, cut
   each merge tile from the frame itself at the tile's displacement rounded to whole CFA cells
   (``integer``: no resampling, the robust weights below absorb the sub-pixel residual), optionally with
   that residual applied to the tile's spectrum as a phase ramp (``phase``). Measured with
   ``python -m bench.burst_study`` on the embedded set (8 frames, default motion, true profile):
   warp 50.63 dB, phase 49.51, integer 49.15; with whole-cell motion all three are within 0.1 dB of a
   static burst. Rejecting the misaligned high frequencies costs more than the warp's resampling does,
   so ``warp`` stays the default.
2. Cut every plane of every frame into ``TILE`` x ``TILE`` tiles overlapping by half. For tile T_0 of the
   reference and T_z of frame z, with D_z = F(T_0) - F(T_z) their Fourier difference, frame z contributes
   F(T_z) + A_z * D_z, where ``A_z = |G - F(T_z)|^2 / (|G - F(T_z)|^2 + c * E|noise|^2)``, the expected
   noise power comes from the noise profile at the tile's mean level, and ``c`` is ``robustness``. Where a
   frequency of frame z agrees with the guide G within the noise, A_z ~ 0 and the frame is averaged in;
   where it does not (misalignment, motion), A_z ~ 1 and the reference is used instead, so there is no
   ghosting. HDR+ compares with the noisy reference (G = F(T_0), ``guide="reference"``); the default
   compares with the robust per-pixel mean of the aligned burst (``guide="mean"``, as in
   :mod:`methods.burst_mean`, which itself falls back to the reference where frames disagree), whose
   noise is about N times lower, so fewer frequencies are rejected by noise alone: +0.4 dB on the
   embedded set with 8-frame bursts.
3. The merged tiles go back by overlap-add with a sin^2 window (the windows of half-overlapping tiles sum
   to 1).
   The merged image then passes the noise-driven check against the reference of :mod:`methods.burst_mean`
   (:func:`methods.burst_mean.fall_back_to_reference`, tolerance ``fallback_tolerance``): windows where it
   differs from frame 0 by more than noise predicts (the demosaic warp's error on sharp detail passes the
   per-frequency test when each frame's error looks like noise) are pulled towards frame 0 (measured in
   ``README.md``, *Bursts*). Where the run's profile is blind, it is first re-estimated from the burst
   (:mod:`methods.toolkit.burst_noise`), and that profile drives the merge, the check and the spatial stage.
4. Spatial stage: the merged image still carries noise, about 1/N of the original variance where every
   frame merged. ``spatial="bm3d"`` runs :mod:`methods.bm3d` on it with the noise profile scaled by the
   measured mean residual-variance factor; ``"wiener"`` shrinks each merged frequency by
   ``|M|^2 / (|M|^2 + s * residual noise power)`` (HDR+'s own spatial step, ``s`` = ``spatial_strength``);
   ``"none"`` keeps the merge. With ``spatial="bm3d"``, the windows that step 3 pulled towards frame 0
   (weight ``w`` < 1) end as ``fallback + w * (output - fallback)``: where the merge cannot use the other
   frames, the result is another estimate rather than a lightly filtered noisy frame 0. ``fallback_target``
   chooses it: ``"reconstruct"`` (the default), :mod:`methods.burst_reconstruct`'s output, which fits the scene
   to every frame's Bayer samples and never warps a frame through a demosaic; ``"bm3d"``, frame 0 denoised on
   its own by BM3D; ``"reference"``, no fallback image (BM3D of the pulled merge as it is).
5. Blend with the reconstruction: the result is ``reconstruct_share * R + (1 - reconstruct_share) * M``, with
   ``R`` :mod:`methods.burst_reconstruct`'s output and ``M`` step 4's. The two fail in different places: the
   warp of step 1 loses detail on sharp content (on the detailed scenes the merge alone is 1.5 dB over
   single-frame BM3D, the reconstruction 3.4 dB), and the reconstruction stops early and so keeps more noise
   where content is smooth (on the embedded set 3.0 dB against the merge's 4.4). The share 0.7 was chosen on
   detailed scenes made from other photographs (``CBSD68``, ``CSun_Hays80``) than the table's: over single-frame
   BM3D (with the burst's profile) the merge alone gains 2.0 dB there (2.1 with its failed windows ending as
   the reconstruction), the reconstruction alone 3.0, shares 0.5 and 0.7 3.2 and 3.3. It costs one
   reconstruction per burst (about 85 s for 8 frames of 512 x 768).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from methods.toolkit.align import DEFAULT_SEARCH, DEFAULT_TILE, burst_fields, warp_mosaic
from bench.core.noise_model import NoiseProfile
from methods.base import Method, NoisyRaw, above, at_least, between, param
from methods.bm3d import BM3D
from methods.burst_reconstruct import BurstReconstruct
from methods.burst_mean import (BLIND_NOISE_CHOICES, BLIND_NOISE_DOC, FALLBACK_TOLERANCE_DOC, agreement_weights,
                                fallback_weight, take_whole_cells)
from methods.registry import register_method
from methods.toolkit.burst_spatial import bm3d_with_fallback

#: Merge tile side (packed pixels); tiles overlap by half.
TILE = 16
#: Tile rows merged at a time (bounds memory on full-size frames).
ROWS_PER_CHUNK = 16
#: Rejection threshold (noise std) of the robust mean used as the comparison guide.
GUIDE_REJECTION = 3.0


@register_method("burst_merge")
@dataclass
class BurstMerge(Method):
    """Align the burst to frame 0, robust pairwise Fourier merge (HDR+ style), a spatial denoiser, then blend
    with burst_reconstruct."""

    kind = "burst"
    requires = {"cv2": "opencv-python-headless", "scipy": "scipy", "bm3d": "bm3d"}
    robustness: float = param(3.0, "c in A = |D|^2 / (|D|^2 + c * noise power): higher merges more, lower "
                                    "rejects more", low=0.5, high=16.0, valid=above(0))
    spatial: str = param("bm3d", "spatial denoiser after the merge", choices=("bm3d", "wiener", "none"))
    spatial_strength: float = param(1.15, "wiener: s in |M|^2 / (|M|^2 + s * residual noise power); bm3d: "
                                         "multiplier on the residual noise std given to BM3D", low=0.5, high=2.0,
                                      valid=above(0))
    guide: str = param("mean", "what each frame is compared with to decide where it merges: the robust mean "
                               "of the aligned burst, or the noisy reference (HDR+'s pairwise test)",
                       choices=("mean", "reference"))
    tile: int = param(DEFAULT_TILE, "alignment tile side, packed pixels", valid=at_least(1))
    search: int = param(DEFAULT_SEARCH, "alignment search radius per pyramid level, packed pixels (0 = no "
                                        "search, sub-pixel refinement only)", valid=at_least(0))

    resample: str = param("warp", "how frames meet the reference: each merge tile cut at its whole-CFA-cell "
                                     "displacement (integer, HDR+), the same plus a per-tile sub-pixel phase "
                                     "ramp (phase), or every frame warped through a demosaic (warp)",
                          choices=("integer", "phase", "warp"))
    fallback_window: int = param(7, "side of the windows (packed pixels) in which the merge is checked against "
                                    "the reference's noise", valid=at_least(1))
    fallback_tolerance: float = param(1.5, FALLBACK_TOLERANCE_DOC, low=1.0, high=4.0, valid=at_least(0))
    fallback_target: str = param("reconstruct", "with spatial=bm3d, what windows that fail the check end as: the "
                                                "burst reconstructed from every frame's Bayer samples "
                                                "(reconstruct, methods.burst_reconstruct), frame 0 denoised on its "
                                                "own by BM3D (bm3d), or the spatial stage's output of the merge "
                                                "pulled towards noisy frame 0 (reference)",
                                 choices=("reconstruct", "bm3d", "reference"))
    reconstruct_share: float = param(0.7, "with spatial=bm3d, the share of methods.burst_reconstruct's output in "
                                          "the result, the rest the merge's (0 = the merge alone)", low=0.0,
                                     high=1.0, valid=between(0.0, 1.0))
    blind_noise: str = param("burst", BLIND_NOISE_DOC, choices=BLIND_NOISE_CHOICES)

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        if len(raw.frames) == 1:
            return self.merge_with_fields(raw, None)
        return self.merge_with_fields(raw, burst_fields(raw.frames, tile=self.tile, search=self.search))

    def merge_with_fields(self, raw: NoisyRaw, fields: np.ndarray | None) -> np.ndarray:
        """Steps 2-4 with the ``(N, h, w, 2)`` displacement of each frame onto frame 0 (``burst_fields``:
        estimated in ``denoise``; ``bench.burst_study`` also passes the true motion) -> ``(h, w, 4)``
        float32 in [0, 1]. ``fields`` None: a single frame."""
        from methods.toolkit.burst_noise import profile_of_burst  # scipy: not at import time

        profile = raw.noise
        frames = np.asarray(raw.frames)
        wiener = self.spatial_strength if self.spatial == "wiener" else 0.0
        if fields is None:
            merged, residual_factor = merge_tiles(frames, profile, self.robustness, wiener)
        elif self.resample == "warp":
            aligned = np.stack([frames[0]] + [warp_mosaic(f, d, raw.cfa) for f, d in zip(frames[1:], fields[1:])])
            if self.blind_noise == "burst":
                profile = profile_of_burst(raw, fields, aligned)
            guide = robust_mean(aligned, profile) if self.guide == "mean" else None
            merged, residual_factor = merge_tiles(aligned, profile, self.robustness, wiener, guide)
        else:
            if self.blind_noise == "burst":
                profile = profile_of_burst(raw, fields)
            # the guide: the robust mean of the frames taken at whole-cell displacements (pixels that a
            # sub-pixel residual or motion makes disagree fall back to the reference)
            guide = None
            if self.guide == "mean":
                guide = robust_mean(np.stack([frames[0]] + [take_whole_cells(f, d) for f, d in
                                                            zip(frames[1:], fields[1:])]), profile)
            merged, residual_factor = merge_tiles(frames, profile, self.robustness, wiener, guide, fields=fields,
                                                  phase=self.resample == "phase")
        weight = None
        if self.fallback_tolerance > 0 and fields is not None:
            # unbiased, the merge differs from frame 0 by noise of about (1 - residual_factor) of frame 0's
            reference = np.asarray(frames[0], dtype=np.float32)
            difference = np.asarray(merged, dtype=np.float32) - reference
            weight = fallback_weight(difference, reference, profile, 1.0 - residual_factor, self.fallback_window,
                                     self.fallback_tolerance)
            merged = reference + weight * difference
        merged = np.clip(merged, 0.0, 1.0).astype(np.float32)
        if self.spatial != "bm3d":
            return merged
        if self.fallback_target == "reference":
            weight = None  # BM3D of the merge as it is
        pulled = weight is not None and float(weight.min()) < 1.0
        reconstructed = None
        if fields is not None and (self.reconstruct_share > 0 or (pulled and self.fallback_target == "reconstruct")):
            reconstructed = BurstReconstruct(tile=self.tile, search=self.search).reconstruct_with_fields(
                raw, fields, profile)
        out = bm3d_with_fallback(merged, raw, profile, residual_factor, BM3D.sigma_scale * self.spatial_strength,
                                 weight, reconstructed if self.fallback_target == "reconstruct" else None)
        if reconstructed is None or self.reconstruct_share == 0:
            return out
        share = np.float32(self.reconstruct_share)
        return np.clip(share * reconstructed + (1 - share) * out, 0.0, 1.0).astype(np.float32)


def robust_mean(aligned: np.ndarray, profile: NoiseProfile) -> np.ndarray:
    """The per-pixel mean of ``(N, h, w, 4)`` frames on frame 0 over those that agree with it within
    ``GUIDE_REJECTION`` noise std (``methods.burst_mean.agreement_weights``) -> ``(h, w, 4)``."""
    weights = agreement_weights(aligned, profile.a, profile.b, GUIDE_REJECTION)
    return (weights * aligned).sum(axis=0) / weights.sum(axis=0)


def merge_tiles(frames: np.ndarray, profile: NoiseProfile, robustness: float, wiener: float,
                guide: np.ndarray | None = None, fields: np.ndarray | None = None,
                phase: bool = False) -> tuple[np.ndarray, float]:
    """Robust Fourier merge of ``(N, h, w, 4)`` frames onto frame 0 (steps 2-3 of the module docstring),
    with the Wiener spatial step when ``wiener`` > 0.

    fields: None when ``frames`` are already aligned (warped) to frame 0; else the ``(N, h, w, 2)``
    displacement of each frame (``methods.toolkit.align.burst_fields``): every merge tile of frame k is then
    cut from the frame itself at the displacement of the tile's centre rounded to whole packed pixels
    (whole CFA cells, so no resampling), and with ``phase`` the remaining sub-pixel part is applied to the
    tile's spectrum as a phase ramp. guide: the ``(h, w, 4)`` image frames are compared with; None: frame 0.

    Returns the merged ``(h, w, 4)`` float64 and the mean factor by which the merge multiplied the noise
    variance (1/N where every frame merged everywhere, 1 where none did).
    """
    count, height, width, planes = frames.shape
    step = TILE // 2
    # pad by half a tile (so every pixel is covered by 2x2 tiles) and up to a whole number of steps
    pad_bottom = step + (-height) % step
    pad_right = step + (-width) % step
    tiles_y = (height + step + pad_bottom - TILE) // step + 1
    tiles_x = (width + step + pad_right - TILE) // step + 1
    offsets = np.zeros((count, tiles_y, tiles_x, 2), dtype=np.int64)
    residuals = np.zeros((count, tiles_y, tiles_x, 2))
    if fields is not None:
        # tile (r, t) covers image rows r*step - step .. r*step + step: its centre is (r*step, t*step)
        centre_y = np.minimum(np.arange(tiles_y) * step, height - 1)
        centre_x = np.minimum(np.arange(tiles_x) * step, width - 1)
        at_centres = fields[:, centre_y][:, :, centre_x].astype(np.float64)
        offsets = np.rint(at_centres).astype(np.int64)
        residuals = at_centres - offsets if phase else residuals
    extra = int(np.abs(offsets).max())
    padded = np.pad(frames, ((0, 0), (step + extra, pad_bottom + extra), (step + extra, pad_right + extra), (0, 0)),
                    mode="reflect")
    guide_padded = None if guide is None else np.pad(guide, ((step + extra, pad_bottom + extra),
                                                            (step + extra, pad_right + extra), (0, 0)), mode="reflect")
    window_1d = np.sin(np.pi * (np.arange(TILE) + 0.5) / TILE) ** 2
    window = np.outer(window_1d, window_1d)
    frequencies_y = np.fft.fftfreq(TILE)[:, None]
    frequencies_x = np.fft.rfftfreq(TILE)[None, :]
    out = np.zeros((height + step + pad_bottom, width + step + pad_right, planes), dtype=np.float64)
    factor_sum = 0.0
    for first in range(0, tiles_y, ROWS_PER_CHUNK):
        rows = np.arange(first, min(first + ROWS_PER_CHUNK, tiles_y))
        # (N, rows, tiles_x, planes, TILE, TILE)
        tiles = np.stack([_gather_tiles(padded[k], rows, tiles_x, step, extra, offsets[k, rows]) for k in range(count)])
        spectra = np.fft.rfft2(tiles)
        if phase:
            shift = residuals[:, rows]  # (N, rows, tiles_x, 2): frame[y + d] ~ reference[y], so move by -d
            ramp = np.exp(2j * np.pi * (frequencies_y * shift[..., 0, None, None] + frequencies_x * shift[..., 1, None, None]))
            spectra = spectra * ramp[:, :, :, None]
        reference = spectra[0]
        if guide_padded is not None:
            guide_spectra = np.fft.rfft2(_gather_tiles(guide_padded, rows, tiles_x, step, extra, None))
            distance_noise = 1.0  # the guide's own noise is small next to the frame's
        else:
            guide_spectra = reference
            distance_noise = 2.0
        level = np.maximum(tiles[0].mean(axis=(-2, -1)), 0.0)
        noise_power = (profile.a * level + profile.b)[..., None, None] * TILE * TILE  # per coefficient
        accumulated = reference.copy()
        reference_weight = np.ones(reference.shape)
        other_weights_sq = np.zeros(reference.shape)
        for k in range(1, count):
            difference = reference - spectra[k]
            power = np.abs(guide_spectra - spectra[k]) ** 2
            agreement = power / (power + robustness * distance_noise * noise_power)  # A_z: 0 merge, 1 reject
            accumulated += spectra[k] + agreement * difference
            reference_weight += agreement
            other_weights_sq += (1.0 - agreement) ** 2
        merged = accumulated / count
        factor = (reference_weight ** 2 + other_weights_sq) / count ** 2
        if wiener > 0:
            merged_power = np.abs(merged) ** 2
            merged = merged * merged_power / (merged_power + wiener * factor * noise_power)
        factor_sum += float(factor.mean()) * len(rows)
        spatial = np.fft.irfft2(merged, s=(TILE, TILE)) * window
        for r, row in zip(rows, spatial):
            top = r * step
            for t in range(tiles_x):
                left = t * step
                out[top:top + TILE, left:left + TILE] += row[t].transpose(1, 2, 0)
    merged_image = out[step:step + height, step:step + width]
    return merged_image, factor_sum / tiles_y


def _gather_tiles(image: np.ndarray, rows: np.ndarray, tiles_x: int, step: int, extra: int,
                  offsets: np.ndarray | None) -> np.ndarray:
    """Tiles of tile rows ``rows`` of an ``(H, W, planes)`` image padded by ``extra`` more than the
    reference, each moved by its whole-pixel ``offsets`` (``(len(rows), tiles_x, 2)``, or None for none):
    ``(len(rows), tiles_x, planes, TILE, TILE)``."""
    tops = extra + rows[:, None] * step + (0 if offsets is None else offsets[..., 0])
    lefts = extra + np.arange(tiles_x)[None, :] * step + (0 if offsets is None else offsets[..., 1])
    tops, lefts = np.broadcast_arrays(tops, lefts)
    inside = np.arange(TILE)
    y = tops[..., None, None] + inside[:, None]
    x = lefts[..., None, None] + inside[None, :]
    return image[y, x].transpose(0, 1, 4, 2, 3)
