"""Reading a ``bench run`` folder for the report: ``per_image.csv``, ``run.json`` and ``noise.csv``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import tables
from bench.core.errors import BenchError, first_line
from bench.run_record import RunRecord


@dataclass
class RunFolder:
    """A ``bench run`` folder as read from disk.

    per_image: the rows of ``per_image.csv`` (``tables.PER_IMAGE_COLUMNS``; ``image`` as str).
    record: ``run.json``. noise: ``noise.csv`` (image, a, b, ...) or None when absent or unreadable.
    """

    path: Path
    record: RunRecord
    per_image: pd.DataFrame
    noise: pd.DataFrame | None
    noise_problem: str = ""


def load_run_folder(run_dir: Path) -> RunFolder:
    """Read ``per_image.csv``, ``run.json`` and (when present) ``noise.csv``; BenchError naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: run folder not found")
    per_image_path = run_dir / "per_image.csv"
    if not per_image_path.is_file():
        raise BenchError(f"{run_dir}: not a `bench run` folder (no per_image.csv)")
    try:
        per_image = pd.read_csv(per_image_path, dtype={"method": str, "image": str, "status": str, "error": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise BenchError(f"{per_image_path}: not readable as a CSV table ({exc})") from None
    missing = [c for c in tables.PER_IMAGE_COLUMNS if c not in per_image.columns]
    if missing:
        raise BenchError(f"{per_image_path}: missing columns {', '.join(missing)}")
    if per_image.empty:
        raise BenchError(f"{per_image_path}: has no rows, so there is nothing to report")
    for column in ("psnr", "ssim", "ssim_col", "score", "seconds", "megapixels"):  # failed rows hold "nan"
        per_image[column] = pd.to_numeric(per_image[column], errors="coerce")
    per_image["error"] = per_image["error"].fillna("")
    record = RunRecord.read(run_dir)
    noise, noise_problem = None, ""
    noise_path = run_dir / "noise.csv"
    if noise_path.is_file():
        try:
            noise = pd.read_csv(noise_path, dtype={"image": str})
            if not {"image", "a", "b"} <= set(noise.columns):
                noise, noise_problem = None, f"{noise_path.name} has no columns image,a,b"
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            noise, noise_problem = None, f"{noise_path.name} is not readable ({exc})"
    return RunFolder(run_dir, record, per_image, noise, noise_problem)


def method_order(folder: RunFolder) -> list[str]:
    """The run's methods: those named in run.json first (in its order), then any others in per_image.csv."""
    recorded = list(folder.record.methods)
    present = list(dict.fromkeys(folder.per_image["method"]))
    return [m for m in recorded if m in present] + [m for m in present if m not in recorded]


def method_kind(folder: RunFolder, method: str) -> str:
    """The kind run.json records for ``method`` ("" when it names no such method)."""
    recorded = folder.record.methods.get(method)
    return recorded.kind if recorded else ""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, after its type name (BenchErrors read as they are)."""
    text = str(exc).strip()
    if isinstance(exc, BenchError) and text:
        return text.splitlines()[0]
    return first_line(exc)
