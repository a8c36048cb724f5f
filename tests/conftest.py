"""Shared fixtures. Nothing here reads outside the repository and pytest's temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import write_pair_folder


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Point the suite's cache (embedded dataset) at a temporary folder for the whole session."""
    previous = os.environ.get("RAW_BENCH_CACHE")
    os.environ["RAW_BENCH_CACHE"] = str(tmp_path_factory.mktemp("raw-bench-cache"))
    yield Path(os.environ["RAW_BENCH_CACHE"])
    if previous is None:
        os.environ.pop("RAW_BENCH_CACHE", None)
    else:
        os.environ["RAW_BENCH_CACHE"] = previous


@pytest.fixture(autouse=True)
def isolated_result_cache(tmp_path, monkeypatch):
    """Each test starts with an empty result cache, so no test sees results another one computed (also in
    the subprocesses it starts, which inherit the variable)."""
    monkeypatch.setenv("RAW_BENCH_RESULT_CACHE", str(tmp_path / "result-cache"))


@pytest.fixture
def pair_folder(tmp_path) -> Path:
    """Three small (64x96) noisy / ground-truth DNG pairs in the competition layout."""
    return write_pair_folder(tmp_path / "pairs")
