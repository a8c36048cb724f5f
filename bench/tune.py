"""``bench tune``: fit a method's declared parameters to the user's own training pairs.

Coordinate search: starting from the defaults, each tunable parameter in turn is tried at every value of
its grid (numbers: ``grid`` points over the declared ``low``..``high``, geometric when the range spans
a factor of 4 or more; choices: every choice) with the others held, and the best mean Score is kept.
``rounds`` passes are made over all parameters. Images are read and their noise profiles found once.
The Score reported is measured on the tuning images themselves (in-sample).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from bench.datasets import Dataset
from bench.core.errors import BenchError, first_line
from bench.burst import BurstSpec
from bench.evaluation import evaluate, load_inputs, make_noisy_raw, noise_for
from bench.runner import check_scorable
from methods.base import ParamSpec
from methods.registry import create_method, get_method_class


@dataclass
class TuneResult:
    method: str
    best_params: dict[str, Any]
    best_score: float
    default_score: float
    trials: pd.DataFrame  # one row per evaluated setting: the parameters, score, psnr, seconds


def tunable_params(name: str) -> list[ParamSpec]:
    """The parameters of method ``name`` that declare a range or choices."""
    return [s for s in get_method_class(name).params()
            if s.choices is not None or (s.low is not None and s.high is not None)]


def candidate_values(spec: ParamSpec, grid: int) -> list:
    """The values of one parameter that the search tries, in increasing order."""
    if spec.choices is not None:
        return list(spec.choices)
    low, high = float(spec.low), float(spec.high)
    if low > 0 and high / low >= 4:
        values = np.geomspace(low, high, grid)
    else:
        values = np.linspace(low, high, grid)
    if spec.type is int:
        return sorted({int(round(v)) for v in values})
    return [float(f"{v:.4g}") for v in values]


def tune(name: str, dataset: Dataset, noise_mode: str = "estimate", grid: int = 5, rounds: int = 1,
         log: Callable[[str], None] = print, burst: BurstSpec | None = None) -> TuneResult:
    """Search ``name``'s declared parameter ranges for the best mean Score on ``dataset`` (on ``burst``
    inputs when given, as ``bench run --burst`` makes them)."""
    specs = tunable_params(name)
    if not specs:
        raise BenchError(f"method {name!r} declares no parameter with a tuning range")
    reason = get_method_class(name).unavailable_reason()
    if reason:
        raise BenchError(f"method {name!r} cannot run here: {reason}")
    check_scorable(dataset, noise_mode)
    for message in dataset.check_files(burst_frames=burst.frames if burst else 1):
        log(f"warning: {message}")

    loaded = [load_inputs(dataset, item, burst) for item in dataset.items]
    inputs = [make_noisy_raw(one, dataset, noise_for(one, dataset, noise_mode), burst) for one in loaded]
    trials: list[dict] = []
    scored: dict[tuple, float] = {}

    def mean_score_of(values: dict[str, Any]) -> float:
        key = tuple(sorted(values.items()))
        if key in scored:
            return scored[key]
        method = create_method(name, values)
        scores, psnrs, seconds = [], [], 0.0
        started = time.perf_counter()
        try:
            for one, raw in zip(loaded, inputs):
                evaluation = evaluate(method, raw, one.pair.gt.mosaic, one.pair.noisy.levels)
                scores.append(evaluation.scores.score)
                psnrs.append(evaluation.scores.psnr)
                seconds += evaluation.seconds
            mean_score, error = float(np.mean(scores)), ""
        except Exception as exc:  # a setting that breaks the method just loses
            mean_score, error = -math.inf, first_line(exc)
        scored[key] = mean_score
        trials.append({**values, "score": mean_score, "psnr": float(np.mean(psnrs)) if psnrs else math.nan,
                       "seconds": seconds, "error": error})
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        log(f"trial {len(trials):3d}: {shown}  ->  score {mean_score:.3f}"
            f"  ({time.perf_counter() - started:.1f} s){'  ' + error if error else ''}")
        return mean_score

    current = create_method(name).param_values()
    default_score = best_score = mean_score_of(current)
    for _ in range(rounds):
        for spec in specs:
            for value in candidate_values(spec, grid):
                candidate = {**current, spec.name: value}
                candidate_score = mean_score_of(candidate)
                if candidate_score > best_score:
                    best_score, current = candidate_score, candidate
    return TuneResult(name, current, best_score, default_score, pd.DataFrame(trials))


def write_params(path: Path, result: TuneResult) -> None:
    """Write ``{"method": {param: value}}`` — the format ``bench run --params`` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({result.method: result.best_params}, indent=2) + "\n")
