"""Assembling the report page: the header, the leaderboard, the speed and noise sections, the crops, and the
self-contained HTML document (style and script from ``static/``, inlined; every image a base64 PNG)."""

from __future__ import annotations

import datetime as dt
import html
import math
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench import tables
from bench.core.errors import BenchError
from bench.core.files import atomic_write_text
from bench.report.crops import CropSection, build_crops, open_run_dataset
from bench.report.load import RunFolder, load_run_folder, method_kind, method_order, one_line
from bench.report.plots import noise_plot, speed_plot
from bench.report.rendering import CROP_SIZE
from bench.report.statistics import BOOTSTRAP_RESAMPLES, Comparison, compare_to_best, noise_groups, pareto_front

REPORT_FILE = "report.html"


def render_report(run_dir: Path, log: Callable[[str], None] | None = None) -> str:
    """The report of ``run_dir`` as one self-contained HTML document (str)."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    folder = load_run_folder(Path(run_dir))
    methods = method_order(folder)
    summary = tables.summarize(folder.per_image, methods)
    scored = summary[summary["images"] > 0]
    best = str(scored["method"].iloc[0]) if len(scored) else None  # summaries are sorted best Score first
    comparisons = compare_to_best(folder.per_image, best, methods) if best else {}
    times = 1.0 / summary["mp_per_second"].to_numpy(dtype=np.float64)
    front = pareto_front(times, summary["score"].to_numpy(dtype=np.float64))
    body = [
        _header_html(folder),
        _leaderboard_html(folder, summary, best, comparisons, front),
        _speed_html(summary, front),
        _noise_section(folder, list(summary["method"])),
        _crops_html(build_crops(folder, list(summary["method"]), log)),
        f'<footer>Written by <code>python -m bench report</code> on '
        f'{html.escape(dt.datetime.now().isoformat(timespec="seconds"))} in {time.perf_counter() - started:.1f} s. '
        "Plots: matplotlib. No external resources.</footer>",
    ]
    title = f"raw-bench report: {folder.record.dataset.name} {folder.path.name}"
    return _page(title, "\n".join(body))


def write_report(run_dir: Path, out: Path | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``), atomically; returns
    the path written."""
    out = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    text = render_report(Path(run_dir), log)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
    except OSError as exc:
        raise BenchError(f"{out}: cannot write the report ({exc.strerror})") from None
    return out


def _header_html(folder: RunFolder) -> str:
    record = folder.record
    burst = record.burst
    frames = f"; {burst.frames}-frame bursts ({html.escape(burst.source)})" if burst else ""
    images = len(dict.fromkeys(folder.per_image["image"]))
    facts = [
        ("dataset", f"{html.escape(record.dataset.name)} ({images} images; "
                    f"<code>{html.escape(record.dataset.root)}</code>)"),
        ("noise profile", html.escape(record.noise) + frames),
        ("status", f"{html.escape(record.status)}, started {html.escape(record.started)}"),
        ("code", html.escape(record.git_commit or "not a git checkout")),
        ("command", f"<code>{html.escape(record.command)}</code>"),
    ]
    items = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in facts)
    return (f"<header><h1>raw-bench report: {html.escape(folder.path.name)}</h1>"
            f"<dl class=\"facts\">{items}</dl></header>")


def _number(value: float, digits: int) -> tuple[str, str]:
    """(display text, sort key) of a number; empty for NaN."""
    if value is None or not np.isfinite(value):
        return "", ""
    return f"{value:.{digits}f}", repr(float(value))


def _significant(value: float) -> str:
    """A time or rate with 3 significant digits (plain decimals, no exponent above 1e-4)."""
    if not np.isfinite(value):
        return ""
    if value == 0:
        return "0"
    if abs(value) < 1e-4:
        return f"{value:.1e}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(value)))))
    return f"{value:.{digits}f}"


def _leaderboard_html(folder: RunFolder, summary: pd.DataFrame, best: str | None,
                      comparisons: dict[str, Comparison], front: np.ndarray) -> str:
    headers = ["method", "kind", "Score", "PSNR (dB)", "SSIM", "SSIM (col)", "s / image", "MP/s", "images",
               "failures", "ΔScore vs best", "95% CI of ΔScore", "win rate vs best", "Pareto front"]
    titles = {
        "ΔScore vs best": "mean over images of (this method's Score − the best method's Score), images both succeeded on",
        "95% CI of ΔScore": f"paired bootstrap over images, {BOOTSTRAP_RESAMPLES} resamples, percentile interval",
        "win rate vs best": "fraction of images where this method's Score beats the best method's (ties count half)",
        "Pareto front": "no other method is both at least as fast (s per MP) and at least as good (Score)",
        "s / image": "mean seconds of the denoise call per image",
        "MP/s": "megapixels per second: total megapixels over total seconds",
    }
    rows = []
    for position, row in enumerate(summary.itertuples()):
        comparison = comparisons.get(row.method)
        if row.method == best:
            delta, ci, win = ("—", "0"), ("—", ""), ("—", "")
        elif comparison is None or comparison.images == 0:
            delta = ci = win = ("", "")
        else:
            delta = (f"{comparison.difference:+.2f}", repr(comparison.difference))
            ci = (f"[{comparison.ci_low:+.2f}, {comparison.ci_high:+.2f}]"
                  + ("" if comparison.ci_low > 0 or comparison.ci_high < 0 else " includes 0"),
                  repr(comparison.ci_high))
            win = (f"{comparison.win_rate:.0%} of {comparison.images}", repr(comparison.win_rate))
        cells = [
            (html.escape(str(row.method)), html.escape(str(row.method))),
            (html.escape(method_kind(folder, row.method)), html.escape(method_kind(folder, row.method))),
            _number(row.score, 2), _number(row.psnr, 3), _number(row.ssim, 4), _number(row.ssim_col, 4),
            (_significant(row.seconds_per_image), _sort_key(row.seconds_per_image)),
            (_significant(row.mp_per_second), _sort_key(row.mp_per_second)),
            (str(row.images), str(row.images)), (str(row.failures), str(row.failures)),
            delta, ci, win,
            ("yes" if front[position] else "", "1" if front[position] else "0"),
        ]
        tds = "".join(f'<td{_TEXT_CLASS if column < 2 else ""} data-sort="{key}">{text}</td>'
                      for column, (text, key) in enumerate(cells))
        marker = ' class="best"' if row.method == best else ""
        rows.append(f"<tr{marker}>{tds}</tr>")
    ths = "".join(f'<th scope="col"{_TEXT_CLASS if column < 2 else ""}{_title_attribute(titles.get(h))}>'
                  f'<button type="button">{html.escape(h)}</button></th>' for column, h in enumerate(headers))
    explain = (
        f"<p>Mean over each method's successful images (Score = (0.8·max(PSNR−30,0)/30 + 0.2·max(SSIM−0.8,0)/0.2)·100 "
        "per image, on the written-back uint16 mosaic). Click a column header to sort; click again to reverse.</p>"
        f"<p>ΔScore is each method's mean Score minus that of the best method (<b>{html.escape(str(best))}</b>) over the "
        f"images both succeeded on. Its 95% confidence interval is a paired bootstrap: the images are resampled with "
        f"replacement ({BOOTSTRAP_RESAMPLES} times, fixed seed), the same images for both methods, and the 2.5th and "
        "97.5th percentiles of the mean difference are shown. An interval that does not include 0 means the gap is "
        "larger than the image-to-image spread explains; with few images the interval is only approximate. "
        "The win rate is the fraction of images on which the method's Score beats the best method's (ties count half).</p>"
    )
    return (f'<section id="leaderboard"><h2>Leaderboard</h2>{explain}<div class="scroll">'
            f'<table class="sortable"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            "</div></section>")


_TEXT_CLASS = ' class="text"'


def _sort_key(value: float) -> str:
    return repr(float(value)) if value is not None and np.isfinite(value) else ""


def _title_attribute(text: str | None) -> str:
    return f' title="{html.escape(text)}"' if text else ""


def _speed_html(summary: pd.DataFrame, front: np.ndarray) -> str:
    image = speed_plot(summary, front)
    if image is None:
        return ('<section id="speed"><h2>Score against speed</h2>'
                "<p>No method has both a Score and a time, so there is nothing to plot.</p></section>")
    on_front = ", ".join(html.escape(str(m)) for m, keep in zip(summary["method"], front) if keep)
    return ('<section id="speed"><h2>Score against speed</h2>'
            "<p>Seconds per megapixel is the total time of the denoise calls over the total megapixels. "
            f"Pareto front (no other method is both faster and better): <b>{on_front}</b>.</p>"
            f'<img class="plot" alt="Score against seconds per megapixel, log scale, Pareto front marked" '
            f'data-plot="speed" src="data:image/png;base64,{image}"></section>')


def _noise_section(folder: RunFolder, methods: list[str]) -> str:
    heading = '<section id="noise"><h2>Score by noise level</h2>'
    profiles, source = _noise_profiles(folder)
    if profiles is None:
        return f"{heading}<p>No noise profile is available for this run ({html.escape(source)}).</p></section>"
    images = list(dict.fromkeys(folder.per_image["image"]))
    profiles = profiles[profiles["image"].isin(images)].drop_duplicates("image")
    if profiles.empty:
        return f"{heading}<p>The noise profiles ({html.escape(source)}) name none of the run's images.</p></section>"
    groups = noise_groups(profiles)
    ok = folder.per_image[folder.per_image["status"] == "ok"].merge(groups[["image", "group"]], on="image")
    group_scores = ok.pivot_table(index="group", columns="method", values="score", aggfunc="mean")
    group_scores = group_scores.reindex(index=sorted(groups["group"].unique()),
                                        columns=[m for m in methods if m in group_scores.columns])
    labels = [groups.loc[groups["group"] == g, "label"].iloc[0] for g in group_scores.index]
    counts = [int((groups["group"] == g).sum()) for g in group_scores.index]
    ths = f'<th scope="col"{_TEXT_CLASS}>noise group</th>' + "".join(
        f'<th scope="col">{html.escape(str(h))}</th>' for h in ["images", *group_scores.columns])
    rows = []
    for label, count, (_, values) in zip(labels, counts, group_scores.iterrows()):
        cells = "".join(f"<td>{_number(v, 2)[0]}</td>" for v in values)
        rows.append(f"<tr><th scope=\"row\">{html.escape(label)}</th><td>{count}</td>{cells}</tr>")
    unmatched = len(images) - len(profiles)
    missing = f" {unmatched} image(s) have no profile and are left out." if unmatched else ""
    plot = noise_plot(group_scores, labels)
    return (f"{heading}<p>Mean Score of each method per noise group. Noise profiles: {html.escape(source)}; "
            "σ is the noise standard deviation at mid-grey, √(a·0.5 + b), in normalised units "
            f"(1 = white level − black level).{missing}</p>"
            f'<div class="scroll"><table class="plain"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody>'
            '</table></div><img class="plot" alt="mean Score per noise group for each method" data-plot="noise" '
            f'src="data:image/png;base64,{plot}"></section>')


def _noise_profiles(folder: RunFolder) -> tuple[pd.DataFrame | None, str]:
    """(image, a, b) table and where it comes from: the dataset's true profiles (noise_profile.csv) when the
    dataset can be opened and has them, else the run's noise.csv."""
    try:
        dataset = open_run_dataset(folder.record)
        true = dataset.true_noise
    except Exception as exc:
        true, why = {}, f"the dataset cannot be opened ({one_line(exc)})"
    else:
        why = "the dataset has no noise_profile.csv"
    if true:
        table = pd.DataFrame([{"image": k, "a": v.a, "b": v.b} for k, v in true.items()])
        return table, "the dataset's true profiles (noise_profile.csv)"
    if folder.noise is not None:
        return folder.noise[["image", "a", "b"]], f"estimated by the run (noise.csv), because {why}"
    return None, f"{why}, and the run has no usable noise.csv{': ' + folder.noise_problem if folder.noise_problem else ''}"


def _crops_html(crops: CropSection) -> str:
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in crops.notes)
    parts = ['<section id="crops"><h2>Crops</h2>',
             f"<p>{CROP_SIZE}×{CROP_SIZE} sensor pixels at the most detailed part of the ground truth, shown at 2×. "
             "Simple ISP, the same for every panel of an image: Malvar demosaic, grey-world white balance and "
             "exposure measured on the ground truth, sRGB gamma; no colour matrix, no sharpening.</p>", notes]
    for row in crops.rows:
        top, left, height, width = row.window
        parts.append(f'<div class="crop-row"><h3>Image {html.escape(row.image_id)} — {html.escape(row.role)}</h3>'
                     f'<p class="where">rows {top}–{top + height - 1}, columns {left}–{left + width - 1}</p>'
                     '<div class="panels">')
        parts.append(f'<figure class="overview"><img alt="whole ground truth of image {html.escape(row.image_id)} '
                     f'with the crop outlined" src="data:image/png;base64,{row.overview_base64}">'
                     "<figcaption><b>where</b><br>whole image, crop in red</figcaption></figure>")
        for panel in row.panels:
            caption = f"<b>{html.escape(panel.title)}</b><br>{html.escape(panel.caption) or '&nbsp;'}"
            if panel.png_base64:
                parts.append(f'<figure><img class="crop" alt="{html.escape(panel.title)}, image '
                             f'{html.escape(row.image_id)}" src="data:image/png;base64,{panel.png_base64}">'
                             f"<figcaption>{caption}</figcaption></figure>")
            else:
                parts.append(f'<figure><div class="placeholder">{html.escape(panel.placeholder)}</div>'
                             f"<figcaption>{caption}</figcaption></figure>")
        parts.append("</div></div>")
    parts.append("</section>")
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<link rel="icon" href="data:,">\n'
            f"<title>{html.escape(title)}</title>\n<style>\n{_static('report.css')}</style>\n</head>\n<body>\n{body}\n"
            f"<script>\n{_static('report.js')}</script>\n</body>\n</html>\n")


def _static(name: str) -> str:
    """The text of ``static/<name>`` (shipped as package data), read at each render."""
    return resources.files("bench.report").joinpath("static", name).read_text(encoding="utf-8")
