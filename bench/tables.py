"""Per-image rows -> per-method summary tables (CSV and Markdown)."""

from __future__ import annotations

import math

import pandas as pd

from bench.core.metrics import PSNR_CAP_DB, score

PER_IMAGE_COLUMNS = ["method", "image", "psnr", "ssim", "ssim_col", "score", "seconds", "megapixels",
                     "status", "error"]
SUMMARY_COLUMNS = ["method", "score", "psnr", "ssim", "ssim_col", "seconds_per_image", "mp_per_second",
                   "images", "failures"]
_MARKDOWN_FORMATS = {"score": "{:.2f}", "psnr": "{:.3f}", "ssim": "{:.4f}", "ssim_col": "{:.4f}",
                     "seconds_per_image": "{:.3f}", "mp_per_second": "{:.2f}", "images": "{:d}", "failures": "{:d}"}
_MARKDOWN_HEADERS = {"method": "method", "score": "Score", "psnr": "PSNR (dB)", "ssim": "SSIM",
                     "ssim_col": "SSIM (col)", "seconds_per_image": "s / image", "mp_per_second": "MP/s",
                     "images": "images", "failures": "failures"}


def summarize(per_image: pd.DataFrame, method_order: list[str] | None = None) -> pd.DataFrame:
    """Mean metrics per method over its successful images, sorted by Score (best first).

    per_image: rows with ``PER_IMAGE_COLUMNS``. ``mp_per_second`` is total megapixels over total seconds.
    Methods with no successful image keep a row with empty metrics. A row whose PSNR is above
    ``bench.core.metrics.PSNR_CAP_DB`` (infinite, from a table written before the cap) counts at the cap, with
    its Score recomputed from the capped PSNR, so no mean is ever infinite.
    """
    rows = []
    methods = method_order or list(dict.fromkeys(per_image["method"]))
    for method in methods:
        mine = per_image[per_image["method"] == method]
        ok = _psnr_capped(mine[mine["status"] == "ok"])
        seconds = ok["seconds"].sum()
        rows.append({
            "method": method,
            "score": ok["score"].mean() if len(ok) else math.nan,
            "psnr": ok["psnr"].mean() if len(ok) else math.nan,
            "ssim": ok["ssim"].mean() if len(ok) else math.nan,
            "ssim_col": ok["ssim_col"].mean() if len(ok) else math.nan,
            "seconds_per_image": ok["seconds"].mean() if len(ok) else math.nan,
            "mp_per_second": ok["megapixels"].sum() / seconds if len(ok) and seconds > 0 else math.nan,
            "images": int(len(ok)),
            "failures": int(len(mine) - len(ok)),
        })
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return summary.sort_values("score", ascending=False, na_position="last", kind="stable").reset_index(drop=True)


def _psnr_capped(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with PSNR above the cap set to the cap and their Score recomputed from it; other rows as
    they are (the same object when no row is above the cap)."""
    over = rows["psnr"] > PSNR_CAP_DB
    if not over.any():
        return rows
    rows = rows.copy()
    rows.loc[over, "psnr"] = PSNR_CAP_DB
    rows.loc[over, "score"] = [score(PSNR_CAP_DB, ssim) for ssim in rows.loc[over, "ssim"]]
    return rows


def to_markdown(summary: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a summary; empty cells for missing values."""
    header = "| " + " | ".join(_MARKDOWN_HEADERS[c] for c in SUMMARY_COLUMNS) + " |"
    rule = "|" + "|".join("---" if c == "method" else "---:" for c in SUMMARY_COLUMNS) + "|"
    lines = [header, rule]
    for _, row in summary.iterrows():
        cells = []
        for column in SUMMARY_COLUMNS:
            value = row[column]
            if column == "method":
                cells.append(str(value))
            elif value is None or (isinstance(value, float) and math.isnan(value)):
                cells.append("")
            else:
                fmt = _MARKDOWN_FORMATS[column]
                cells.append(fmt.format(int(value)) if fmt.endswith("d}") else fmt.format(float(value)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def eta_text(elapsed: float, done: int, total: int) -> str:
    """``"  ETA 1h02m"``: the time left if the remaining tasks take as long on average as the finished ones
    (empty when nothing is left)."""
    if done >= total or done == 0:
        return ""
    left = round(elapsed / done * (total - done))
    hours, rest = divmod(left, 3600)
    return f"  ETA {hours}h{rest // 60:02d}m" if hours else f"  ETA {rest // 60}m{rest % 60:02d}s"


def progress_line(prefix: str, row: dict) -> str:
    if row["status"] != "ok":
        return f"{prefix} {row['method']:<12} FAILED: {row['error']}"
    return (f"{prefix} {row['method']:<12} psnr {row['psnr']:7.3f} dB  ssim {row['ssim']:.4f}  "
            f"score {row['score']:6.2f}  {row['seconds']:.2f} s")


def summary_markdown(summary: pd.DataFrame, record) -> str:
    """The run's ``summary.md``: the table under a heading, what Score means, and ``record`` (its
    ``bench.run_record.RunRecord``): status, levels, fingerprint, code, command."""
    dataset, burst = record.dataset, record.burst
    frames = (f", {burst.frames}-frame bursts ({burst.source}; single-frame methods get frame 0)"
              if burst else "")
    return "\n".join([
        f"# {dataset.name}: {dataset.images} images, noise profile: {record.noise}{frames}",
        "",
        to_markdown(summary),
        "",
        "Score = (0.8*max(PSNR-30,0)/30 + 0.2*max(SSIM-0.8,0)/0.2)*100 per image (2-D SSIM), averaged; "
        "PSNR/SSIM on the written-back uint16 mosaic, data_range = white level. "
        "SSIM (col) is the 2022 column-wise SSIM. s / image is the denoise call alone.",
        "",
        f"- status: {record.status}, started {record.started}",
        f"- levels: {record.level_policy().describe()}",
        f"- dataset fingerprint: {record.dataset_fingerprint or ''}",
        f"- code: {record.git_commit or 'not a git checkout'}",
        f"- regenerate: `{record.command}`",
        "",
    ])
