"""The report's plots: matplotlib figures drawn by the Agg canvas (no GUI, no global pyplot state), embedded
in the page as base64 PNG."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from bench.core.errors import BenchError


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
