"""The report's statistics: the paired bootstrap comparison with the best method, the Pareto front of Score
against speed, noise groups, and which images get crops."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20220
#: At most this many distinct noise profiles are shown as one group each; more are binned by noise level.
MAX_NOISE_GROUPS = 6
#: Number of noise-level bins (quantiles of the noise std at mid-grey) when the profiles are all different.
NOISE_BINS = 5


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


def score_matrix(per_image: pd.DataFrame) -> pd.DataFrame:
    """Score of every successful row as an (image x method) table; NaN where a method failed or is missing."""
    ok = per_image[per_image["status"] == "ok"]
    images = list(dict.fromkeys(per_image["image"]))
    matrix = ok.pivot_table(index="image", columns="method", values="score", aggfunc="mean")
    return matrix.reindex(index=images)


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
    matrix = score_matrix(per_image)
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
