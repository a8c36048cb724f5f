"""bench tune: the search finds better settings than the defaults and writes a file bench run can load."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from bench.cli import load_params_file
from bench.datasets import open_dataset
from bench.core.errors import BenchError
from bench.runner import RunConfig, run_benchmark
from bench.tune import candidate_values, tune, write_params
from methods.base import Method, ParamSpec, param
from tests.helpers import box_blur3, register_for_test


@dataclass
class _Blend(Method):
    """Blend of the noisy image and its 3x3 box blur; weight 0 is the identity."""

    kind = "classical"
    weight: float = param(0.0, "blur weight", low=0.0, high=1.0)
    mode: str = param("box", "filter", choices=("box", "broken"))

    def denoise(self, raw):
        if self.mode == "broken":
            raise RuntimeError("this setting fails")
        return (1 - self.weight) * raw.packed + self.weight * box_blur3(raw.packed)


@pytest.fixture
def blend(monkeypatch):
    return register_for_test(monkeypatch, "_blend", _Blend)


def test_candidate_values():
    spec = ParamSpec("x", float, 1.0, "", 0.5, 8.0, None)
    assert candidate_values(spec, 5) == [0.5, 1.0, 2.0, 4.0, 8.0]  # geometric over a factor of 16
    spec = ParamSpec("x", float, 1.0, "", 0.0, 1.0, None)
    assert candidate_values(spec, 3) == [0.0, 0.5, 1.0]
    spec = ParamSpec("n", int, 3, "", 1, 9, None)
    assert candidate_values(spec, 5) == [1, 2, 3, 5, 9]
    spec = ParamSpec("m", str, "a", "", None, None, ("a", "b"))
    assert candidate_values(spec, 5) == ["a", "b"]


def test_tune_beats_defaults_and_its_file_reproduces_the_score(blend, pair_folder, tmp_path):
    dataset = open_dataset(pair_folder)
    result = tune(blend, dataset, noise_mode="oracle", grid=5, log=lambda m: None)
    assert result.best_params["weight"] > 0 and result.best_params["mode"] == "box"
    assert result.best_score > result.default_score + 1.0
    trials = result.trials
    assert len(trials) == 1 + 4 + 1  # defaults, 4 new weights, the failing mode (box again is cached)
    assert (trials.loc[trials["mode"] == "broken", "error"].str.contains("this setting fails")).all()
    assert trials["score"].max() == result.best_score

    path = tmp_path / "tuned.json"
    write_params(path, result)
    params = load_params_file(path)
    assert params == {"_blend": result.best_params}
    run = run_benchmark(RunConfig([blend], dataset, out_root=tmp_path / "out", noise_mode="oracle",
                                  params=params), log=lambda m: None)
    assert run.summary.loc[0, "score"] == pytest.approx(result.best_score, abs=1e-9)
    record = json.loads((run.run_dir / "run.json").read_text())
    assert record["methods"]["_blend"]["params"] == result.best_params


def test_tune_refuses_method_without_ranges(pair_folder):
    with pytest.raises(BenchError, match="declares no parameter with a tuning range"):
        tune("noisy", open_dataset(pair_folder), log=lambda m: None)
