"""The result cache that makes runs resumable: one small JSON file per finished (method, image) result.

A result is stored under a key that hashes everything it depends on:

* the method's name and parameter values, and the content of its weights file (learned methods);
* the content (SHA-256) of every input file it read: noisy image, ground truth, real burst frames;
* how the input was given to it: noise mode (and the true profile, for "oracle"), burst settings,
  black and white levels;
* the code: a fingerprint over every ``.py`` file of ``bench/`` and ``methods/``, so any code change
  invalidates every cached result rather than risk a stale number.

Entries are written atomically (a temporary file renamed into place) the moment a result arrives, so a run
stopped by Ctrl-C or ``kill -9`` leaves only whole entries behind, and the next run with the same settings
picks them up. Failed results are never cached: they are retried. Blind noise estimates are cached the same
way, keyed by the noisy file's content and the code fingerprint.

The cache lives in ``<cache root>/results/`` (``RAW_BENCH_CACHE``, default ``~/.cache/raw-bench``), or in
``RAW_BENCH_RESULT_CACHE`` when that is set; deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path

from bench.embedded import cache_root

_PACKAGE_DIRS = ("bench", "methods")


@cache
def code_fingerprint() -> str:
    """SHA-256 over the relative path and content of every ``.py`` file of the ``bench`` and ``methods``
    packages (computed once per process)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in _PACKAGE_DIRS:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's content, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for piece in iter(lambda: f.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def make_key(parts: dict) -> str:
    """A cache key: SHA-256 of ``parts`` (JSON-serialisable) as canonical JSON, plus the code fingerprint."""
    text = json.dumps({"code": code_fingerprint(), **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def default_folder() -> Path:
    """``$RAW_BENCH_RESULT_CACHE`` when set, else ``<cache root>/results``."""
    if os.environ.get("RAW_BENCH_RESULT_CACHE"):
        return Path(os.environ["RAW_BENCH_RESULT_CACHE"])
    return cache_root() / "results"


class ResultCache:
    """Entries ``<folder>/<kind>/<key[:2]>/<key>.json``; ``enabled = False`` makes every lookup a miss
    (``--fresh``) while still storing what is computed."""

    def __init__(self, folder: Path | None = None, enabled: bool = True):
        self.folder = Path(folder) if folder is not None else default_folder()
        self.enabled = enabled

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str) -> dict | None:
        """The entry stored under ``key``, or None (also for an unreadable entry, which is then ignored)."""
        if not self.enabled:
            return None
        try:
            return json.loads(self._path(kind, key).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, kind: str, key: str, entry: dict) -> None:
        """Store ``entry`` atomically."""
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(entry, f)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
