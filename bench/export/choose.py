"""Which method a submission is made from: named by hand, or the best exportable one of a scored run
(``bench export --best``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.core.errors import BenchError
from bench.run_record import RunRecord

EXPORTABLE_KINDS = ("classical", "learned")


@dataclass(frozen=True)
class Choice:
    """The method to export and where it was chosen.

    name, params: registered method and parameter values (others keep their defaults).
    run_dir: the scored run it was picked from (``--best``), or None when named by hand.
    score: its mean Score in that run. table: that run's summary table (Markdown).
    kind: the kind the choice was narrowed to (``--kind``), if any.
    noise_mode: the noise mode of that run ("estimate" or "oracle").
    """

    name: str
    params: dict
    run_dir: Path | None = None
    score: float | None = None
    table: str = ""
    kind: str | None = None
    noise_mode: str = "estimate"


def best_in_run(run_dir: Path, kind: str | None = None) -> Choice:
    """The exportable method with the highest mean Score in the run folder ``run_dir`` (``bench run``'s
    output), with the parameters it ran with. Methods with any failed image are passed over (a submission
    must denoise every image); ``kind`` ("classical" or "learned") narrows the choice."""
    run_dir = Path(run_dir)
    record = RunRecord.read(run_dir)
    try:
        summary = pd.read_csv(run_dir / "summary.csv")
    except OSError as exc:
        raise BenchError(f"{run_dir}: not a finished run folder ({exc.strerror}: {Path(exc.filename).name})") from None
    except pd.errors.ParserError as exc:
        raise BenchError(f"{run_dir}: summary.csv is damaged ({exc})") from None
    kinds = (kind,) if kind else EXPORTABLE_KINDS
    candidates = []
    for row in summary.itertuples():
        method = record.methods.get(row.method)
        if method and method.kind in kinds and row.failures == 0 and row.images > 0 and not math.isnan(row.score):
            candidates.append((row.score, row.method, method.params))
    if not candidates:
        wanted = f"{kind} " if kind else "classical or learned "
        raise BenchError(f"{run_dir}: no {wanted}method scored every image in this run")
    score, name, params = max(candidates, key=lambda c: c[0])
    table_file = run_dir / "summary.md"
    table = table_file.read_text() if table_file.is_file() else summary.to_string(index=False)
    return Choice(name, dict(params), run_dir, float(score), table, kind, record.noise)
