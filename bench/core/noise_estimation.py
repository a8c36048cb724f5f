"""Blind estimation of the noise profile ``var(x) = a*x + b`` from one noisy packed image.

The image is read in the competition's normalised domain: ``(h, w, planes)`` float values in [0, 1] that
were produced by ``stored = floor(clip(x + N(0, a*x + b), 0, 1) / step) * step`` from an unknown clean
image ``x`` (``step`` is one DN, 1/15359 for the competition). All planes share one ``(a, b)``.

Method, in four steps (``estimate_profile``):

1. **Tile statistics.** Every plane is cut into ``block`` x ``block`` tiles. Per tile: the mean level, the
   mean square of a fine residual (3x3 second difference, unit gain for white noise, blind to constant
   and linear signals) and two *texture* energies from oriented second differences (one at the pixel
   scale and smoothed across, one at twice that scale). For white noise all three estimate the local
   noise variance; edges and patterns raise the texture energies far more than the residual. The texture
   filters are nearly orthogonal to the residual filter (correlation of the tile energies under white
   noise: 0.04 and 0.003), so selecting tiles on them hardly biases the residual energy.
2. **Flat tiles.** A tile counts as flat when both texture energies stay below 1.25 times the noise
   variance the current profile predicts at its level. Starting from a deliberately low profile (lower
   decile of residual energy per level), selection and fit alternate: a too-low profile admits only the
   flattest tiles, so the estimate climbs towards the truth instead of being inflated by textured tiles
   that a too-high profile would admit. Tiles close enough to white that clipping at 1 matters are left
   out: tiles straddling a saturated edge break the flat-tile model.
3. **Clipping-aware likelihood.** For a flat tile the stored values are i.i.d. samples of a censored
   (clipped at 0 and 1), DN-truncated normal, so its mean and residual energy follow exactly from the
   clean level and ``(a, b)`` (``stored_moments``); near black this is what identifies ``b``. Residual
   energies are scaled chi-square with a known number of degrees of freedom, which gives a likelihood
   over ``(log a, log b)``, evaluated on a grid over the allowed ranges (a uniform prior in log scale).
4. **Decision.** From the marginal posteriors, ``a`` and ``b`` are chosen to maximise the expected
   final-round score ``1 - min(|est - true| / true, 1)``. Where the image does not pin a parameter down
   (no dark tiles for ``b``, or ``b`` swamping ``a*x``), this picks the cautious low end of the plausible
   range rather than its middle, since underestimates cost at most the capped error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import correlate1d
from scipy.special import ndtr

#: Side of the square tiles, in packed pixels.
DEFAULT_BLOCK = 8
#: Pixels left out at each image border so that every filter sees only real pixels.
_MARGIN = 3
#: A tile is flat when both texture energies are below this multiple of the predicted noise variance.
#: For pure noise about 70 % of 8x8 tiles pass; lower values reject more faint texture.
_TEXTURE_THRESHOLD = 1.25
#: Tiles whose level is within this many noise standard deviations of 1 are not used.
_WHITE_CLIP_SIGMAS = 4.0
#: Fewest tiles a fit uses; when fewer are flat, the least textured ones are taken.
_MIN_TILES = 16
#: The likelihood is raised to this power: tiles from real images scatter more than pure noise does
#: (on validation images the untempered posterior was about 1.5x too narrow).
_LIKELIHOOD_TEMPER = 0.5
_SELECTION_ROUNDS = 6
_LEVEL_BINS = 64
#: Level bins span at least this many standard deviations of a tile's mean level.
_BIN_WIDTH_SIGMAS = 4.0
_GRID_POINTS = 41

_SECOND_DIFFERENCE = np.array([1.0, -2.0, 1.0])
# Fine residual: outer(second difference, second difference) / 6, unit gain for white noise.
_RESIDUAL_TAPS = (_SECOND_DIFFERENCE / np.sqrt(6.0), _SECOND_DIFFERENCE / np.sqrt(6.0))
# Fine texture: second difference along one axis, binomial smoothing along the other.
_FINE_TEXTURE_TAPS = (np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / np.sqrt(70.0), _SECOND_DIFFERENCE / np.sqrt(6.0))
# Coarse texture: the same at twice the scale, after 2x2 box averaging.
_COARSE_SMOOTH = np.convolve([1.0, 1.0], [1.0, 0.0, 2.0, 0.0, 1.0])
_COARSE_DIFFERENCE = np.convolve([1.0, 1.0], [1.0, 0.0, -2.0, 0.0, 1.0])
_COARSE_TEXTURE_TAPS = (_COARSE_SMOOTH / np.linalg.norm(_COARSE_SMOOTH),
                        _COARSE_DIFFERENCE / np.linalg.norm(_COARSE_DIFFERENCE))


@dataclass(frozen=True)
class TileStatistics:
    """Per-tile statistics of a packed image, all ``(n_tiles,)`` float64 arrays (every plane's tiles).

    level: mean stored value of the tile, in [0, 1].
    residual: mean squared fine residual; the noise variance plus whatever fine texture leaks in.
    fine_texture, coarse_texture: mean squared oriented second differences (both orientations
    averaged) at scales 1 and 2; equal to the noise variance for white noise, larger on texture.
    """

    level: np.ndarray
    residual: np.ndarray
    fine_texture: np.ndarray
    coarse_texture: np.ndarray

    def subset(self, mask: np.ndarray) -> "TileStatistics":
        return TileStatistics(self.level[mask], self.residual[mask], self.fine_texture[mask],
                              self.coarse_texture[mask])


def _separable(plane: np.ndarray, row_taps: np.ndarray, column_taps: np.ndarray) -> np.ndarray:
    """Correlate ``plane`` with ``outer(row_taps, column_taps)`` (rows = axis 0)."""
    return correlate1d(correlate1d(plane, row_taps, axis=0, mode="reflect"), column_taps, axis=1, mode="reflect")


def _oriented_energy(plane: np.ndarray, taps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Mean of the squared responses of a separable filter and of its transpose."""
    across, along = taps
    return 0.5 * (_separable(plane, across, along) ** 2 + _separable(plane, along, across) ** 2)


def tile_statistics(packed: np.ndarray, block: int = DEFAULT_BLOCK) -> TileStatistics:
    """Statistics of the ``block`` x ``block`` tiles of every plane of ``packed`` (``(h, w, planes)``)."""
    levels, residuals, fine, coarse = [], [], [], []
    for index in range(packed.shape[-1]):
        plane = np.asarray(packed[..., index], dtype=np.float64)
        rows = (plane.shape[0] - 2 * _MARGIN) // block
        cols = (plane.shape[1] - 2 * _MARGIN) // block
        if rows < 1 or cols < 1:
            continue
        inside = (slice(_MARGIN, _MARGIN + rows * block), slice(_MARGIN, _MARGIN + cols * block))

        def tile_means(image: np.ndarray) -> np.ndarray:
            return image[inside].reshape(rows, block, cols, block).mean(axis=(1, 3)).ravel()

        levels.append(tile_means(plane))
        residuals.append(tile_means(_separable(plane, *_RESIDUAL_TAPS) ** 2))
        fine.append(tile_means(_oriented_energy(plane, _FINE_TEXTURE_TAPS)))
        coarse.append(tile_means(_oriented_energy(plane, _COARSE_TEXTURE_TAPS)))
    if not levels:
        raise ValueError(f"image of shape {packed.shape} is too small for {block}x{block} tiles "
                         f"(needs at least {block + 2 * _MARGIN} pixels a side)")
    return TileStatistics(*(np.concatenate(parts) for parts in (levels, residuals, fine, coarse)))


def residual_degrees_of_freedom(block: int = DEFAULT_BLOCK) -> float:
    """Effective chi-square degrees of freedom of a tile's residual energy under white noise.

    Neighbouring residuals share pixels, so ``block**2`` residuals carry fewer independent squares:
    ``dof = n**2 / sum_{p,q} rho(p - q)**2`` with ``rho`` the residual filter's autocorrelation.
    """
    taps = _RESIDUAL_TAPS[0]
    rho_1d = np.correlate(taps, taps, mode="full")  # lags -2..2, rho(0) = 1
    lags = np.arange(-(len(taps) - 1), len(taps))
    weight_1d = np.maximum(block - np.abs(lags), 0)
    pair_sum_1d = np.sum(rho_1d**2 * weight_1d)  # sum over pairs in one dimension
    return float(block**4 / pair_sum_1d**2)


def stored_moments(x: np.ndarray, a, b, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, variance and d(mean)/dx of the stored value at clean level ``x`` (arrays broadcast).

    The stored value is ``floor(clip(y, 0, 1) / step) * step`` with ``y ~ N(x, a*x + b)``: a normal
    censored at 0 and 1, then truncated to whole DN, which lowers values off the clip points by
    ``step/2`` on average and adds about ``step**2/12`` of variance.
    """
    sigma = np.sqrt(a * x + b)
    low = -x / sigma
    high = (1.0 - x) / sigma
    inside = ndtr(high) - ndtr(low)
    above = ndtr(-high)
    density_low = np.exp(-0.5 * low * low) / np.sqrt(2.0 * np.pi)
    density_high = np.exp(-0.5 * high * high) / np.sqrt(2.0 * np.pi)
    first_inside = x * inside + sigma * (density_low - density_high)  # E[y; 0 < y < 1]
    second_inside = ((x * x + sigma * sigma) * inside + 2.0 * x * sigma * (density_low - density_high)
                     + sigma * sigma * (low * density_low - high * density_high))
    clipped_mean = first_inside + above
    clipped_var = second_inside + above - clipped_mean**2
    mean = clipped_mean - 0.5 * step * inside
    variance = (clipped_var - step * (first_inside - clipped_mean * inside)
                + step * step * (inside / 3.0 - inside * inside / 4.0))
    slope = inside + a / (2.0 * sigma) * (density_low - density_high)
    return mean, np.maximum(variance, 1e-300), slope


def variance_at_level(level: np.ndarray, a, b, step: float, newton_steps: int = 5) -> np.ndarray:
    """Predicted residual energy of a flat tile whose mean stored value is ``level``.

    Solves ``stored mean(x) = level`` for the clean level ``x`` by Newton's method (the mean is smooth
    and increasing in ``x``), then returns the stored variance there. ``a`` and ``b`` broadcast against
    ``level``.
    """
    level = np.asarray(level, dtype=np.float64)
    x = np.clip(level + 0.5 * step, 0.0, 1.0) + np.zeros_like(np.asarray(a, dtype=np.float64))
    for _ in range(newton_steps):
        mean, _, slope = stored_moments(x, a, b, step)
        x = np.clip(x - (mean - level) / np.maximum(slope, 1e-3), 0.0, 1.0)
    return stored_moments(x, a, b, step)[1]


def _flat_tiles(stats: TileStatistics, noise_var: np.ndarray) -> np.ndarray:
    """Boolean mask of tiles consistent with pure noise of variance ``noise_var`` (per tile)."""
    flat = ((stats.fine_texture < _TEXTURE_THRESHOLD * noise_var)
            & (stats.coarse_texture < _TEXTURE_THRESHOLD * noise_var)
            & (stats.level < 1.0 - _WHITE_CLIP_SIGMAS * np.sqrt(noise_var)))
    if flat.sum() < _MIN_TILES:
        texture = np.maximum(stats.fine_texture, stats.coarse_texture) / noise_var
        texture[stats.level >= 1.0 - _WHITE_CLIP_SIGMAS * np.sqrt(noise_var)] = np.inf
        flat = np.zeros(len(texture), dtype=bool)
        flat[np.argsort(texture, kind="stable")[:_MIN_TILES]] = True
    return flat


def _initial_profile(stats: TileStatistics, a_range, b_range) -> tuple[float, float]:
    """A deliberately low first guess: a line through the lower decile of residual energy per level."""
    bins = min(24, len(stats.level) // 8)
    if bins < 2:
        return float(a_range[0]), float(b_range[0])
    order = np.argsort(stats.level, kind="stable")
    levels, energies = [], []
    for members in np.array_split(order, bins):
        levels.append(np.median(stats.level[members]))
        energies.append(max(np.quantile(stats.residual[members], 0.1), 1e-12))
    levels, energies = np.asarray(levels), np.asarray(energies)
    design = np.stack([levels, np.ones_like(levels)], axis=1) / energies[:, None]  # relative errors
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(energies), rcond=None)
    return float(np.clip(a, *a_range)), float(np.clip(b, *b_range))


def _binned(level: np.ndarray, residual: np.ndarray, level_sd: np.ndarray) -> tuple[np.ndarray, ...]:
    """Level bins: (mean level, sum of residual energies, tile count), each ``(bins,)``.

    Bins hold about equal numbers of tiles but span at least four standard deviations of a tile mean
    (``level_sd``, per tile): narrower bins would sort tiles of one true level by their noise, and where
    clipping bends the variance curve, the predicted variance at such a bin's mean is off.
    """
    order = np.argsort(level, kind="stable")
    sorted_level = level[order]
    target = max(1, len(order) // _LEVEL_BINS)
    means, sums, counts = [], [], []
    start = 0
    while start < len(order):
        stop = start + target
        widest = sorted_level[start] + _BIN_WIDTH_SIGMAS * level_sd[order[start]]
        stop = max(stop, int(np.searchsorted(sorted_level, widest, "right")))
        if len(order) - stop < target:  # too few left for a bin of their own
            stop = len(order)
        members = order[start:stop]
        means.append(level[members].mean())
        sums.append(residual[members].sum())
        counts.append(float(len(members)))
        start = stop
    return np.array(means), np.array(sums), np.array(counts)


def _best_for_score(log_values: np.ndarray, weights: np.ndarray) -> float:
    """The value maximising the expected ``1 - min(|v - t| / t, 1)`` when ``log10 t`` has the discrete
    distribution ``weights`` over ``log_values``."""
    truths = 10.0 ** log_values
    candidates = 10.0 ** np.linspace(log_values[0], log_values[-1], 301)
    errors = np.minimum(np.abs(candidates[:, None] - truths[None, :]) / truths[None, :], 1.0)
    return float(candidates[np.argmin(errors @ weights)])


def _fit(stats: TileStatistics, level_sd: np.ndarray, step: float, dof: float, a_range,
         b_range) -> tuple[float, float]:
    """Score-optimal ``(a, b)`` under the posterior given the tiles' residual energies.

    level_sd: ``(n_tiles,)`` standard deviation of each tile's mean level under the current profile.
    """
    mean_level, energy_sum, count = _binned(stats.level, stats.residual, level_sd)
    half_dof = 0.5 * dof * _LIKELIHOOD_TEMPER
    full_box = (*np.log10(a_range), *np.log10(b_range))
    box = full_box
    for stage in range(2):  # a grid over the whole range, then one over where the posterior lives
        log_a = np.linspace(box[0], box[1], _GRID_POINTS)
        log_b = np.linspace(box[2], box[3], _GRID_POINTS)
        variance = variance_at_level(mean_level, 10.0 ** log_a[:, None, None], 10.0 ** log_b[None, :, None], step)
        neg_log_lik = half_dof * (energy_sum / variance + count * np.log(variance)).sum(axis=-1)
        posterior = np.exp(-(neg_log_lik - neg_log_lik.min()))
        if stage == 0:
            rows = np.flatnonzero((posterior > 1e-6).any(axis=1))
            cols = np.flatnonzero((posterior > 1e-6).any(axis=0))
            da, db = log_a[1] - log_a[0], log_b[1] - log_b[0]
            box = (max(full_box[0], log_a[rows[0]] - da), min(full_box[1], log_a[rows[-1]] + da),
                   max(full_box[2], log_b[cols[0]] - db), min(full_box[3], log_b[cols[-1]] + db))
    a_weights = posterior.sum(axis=1) / posterior.sum()
    b_weights = posterior.sum(axis=0) / posterior.sum()
    return _best_for_score(log_a, a_weights), _best_for_score(log_b, b_weights)


def estimate_profile(packed: np.ndarray, *, block: int = DEFAULT_BLOCK, step: float,
                     a_range: tuple[float, float], b_range: tuple[float, float]) -> tuple[float, float]:
    """Estimate ``(a, b)`` of one noisy image (see the module docstring for the method).

    packed: ``(h, w, planes)`` float array of stored values in [0, 1] (``h, w >= block + 6``).
    step: one DN in the normalised domain. a_range, b_range: the allowed (and prior) ranges; the
    result lies inside them. Deterministic: the same input always gives the same output.
    """
    packed = np.asarray(packed)
    if packed.ndim != 3:
        raise ValueError(f"expected an (h, w, planes) image, got shape {packed.shape}")
    if not np.all(np.isfinite(packed)):
        raise ValueError("image contains NaN or infinite values")
    return profile_from_statistics(tile_statistics(packed, block), block=block, step=step, a_range=a_range,
                                   b_range=b_range)


def profile_from_statistics(stats: TileStatistics, *, block: int, step: float, a_range: tuple[float, float],
                            b_range: tuple[float, float]) -> tuple[float, float]:
    """Steps 2-4 of the module docstring on tile statistics already computed: ``(a, b)`` inside the ranges.

    ``estimate_profile`` passes those of one image; a burst method may pass statistics whose energies
    come from differences between aligned frames (``methods.toolkit.burst_noise``), in which texture
    largely cancels."""
    dof = residual_degrees_of_freedom(block)
    a, b = _initial_profile(stats, a_range, b_range)
    selections: list[np.ndarray] = []
    for _ in range(_SELECTION_ROUNDS):
        noise_var = variance_at_level(stats.level, a, b, step)
        flat = _flat_tiles(stats, noise_var)
        if any(np.array_equal(flat, earlier) for earlier in selections):
            break  # converged, or cycling between selections that differ by a few threshold-edge tiles
        selections.append(flat)
        level_sd = np.sqrt(noise_var[flat] / block**2)
        a, b = _fit(stats.subset(flat), level_sd, step, dof, a_range, b_range)
    return a, b
