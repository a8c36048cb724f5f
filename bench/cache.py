"""The result cache that makes runs resumable: one small JSON file per measured fact.

A fact is what was measured for one (method, parameters, code, input content): the scores and timing of a
result, or the blind noise estimate of a noisy file. It never holds the image id, the dataset or the run:
those come from the run that reads it, so the same files under other names (a renumbered copy, a subset
folder) get their own ids and the same numbers.

A fact is stored under a key that hashes everything it depends on:

* the method's name and parameter values, and the content of its weights file (learned methods);
* the content (SHA-256) of every input file it read, hashed from the very bytes that were decoded: noisy
  image, ground truth, real burst frames;
* how the input was given to it: noise mode (and the true profile, for "oracle"), burst settings, the
  level policy (``--levels`` and the overrides; with the file's content, which holds its tags, it decides
  the levels);
* the code: a fingerprint over every ``.py`` file of ``bench/`` and ``methods/``, so any code change
  invalidates every cached result rather than risk a stale number.

Every entry is an envelope ``{"schema", "kind", "key", "body", "checksum"}``: the checksum is the SHA-256 of
the other four, and the caller validates the body against its own schema. An entry that is unreadable, of
another schema, stored under another key, edited (checksum) or whose body fails validation is a miss: the
fact is computed again and the entry replaced. A cache that cannot be written (read-only folder, full disk)
becomes a cache that stores nothing, with one warning; the run goes on.

Entries are written atomically (a temporary file renamed into place) the moment a result arrives, so a run
stopped by Ctrl-C or ``kill -9`` leaves only whole entries behind. Failed results are never cached.

The cache lives in ``<cache root>/results/`` (``RAW_BENCH_CACHE``, default ``~/.cache/raw-bench``), or in
``RAW_BENCH_RESULT_CACHE`` when that is set; deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from functools import cache
from pathlib import Path
from typing import Callable

from bench.embedded import cache_root
from bench.core.files import atomic_write_text

_PACKAGE_DIRS = ("bench", "methods")
#: Version of the envelope and of the bodies the suite stores; entries of any other schema are misses.
SCHEMA = 2


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


def make_key(parts: dict) -> str:
    """A cache key: SHA-256 of ``parts`` (JSON-serialisable) as canonical JSON, plus the code fingerprint."""
    text = json.dumps({"code": code_fingerprint(), **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def default_folder() -> Path:
    """``$RAW_BENCH_RESULT_CACHE`` when set, else ``<cache root>/results``."""
    if os.environ.get("RAW_BENCH_RESULT_CACHE"):
        return Path(os.environ["RAW_BENCH_RESULT_CACHE"])
    return cache_root() / "results"


class InvalidEntry(ValueError):
    """A cache entry's body does not have the schema its kind requires (raised by body validators)."""


def require_number(body: dict, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    """``body[name]`` as a finite float within [low, high]; InvalidEntry otherwise (a validator helper)."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidEntry(f"{name} is {value!r}, not a finite number")
    if not low <= value <= high:
        raise InvalidEntry(f"{name} = {value} outside [{low}, {high}]")
    return float(value)


def _checksum(kind: str, key: str, body: dict) -> str:
    text = json.dumps({"schema": SCHEMA, "kind": kind, "key": key, "body": body}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """Entries ``<folder>/<kind>/<key[:2]>/<key>.json``.

    enabled: False makes every lookup a miss (``--fresh``) while still storing what is computed.
    warn: called once, with one line, when the cache cannot be written; after that nothing is stored.
    """

    def __init__(self, folder: Path | None = None, enabled: bool = True,
                 warn: Callable[[str], None] | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()
        self.enabled = enabled
        self.writable = True
        self._warn = warn or (lambda message: None)

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / kind / key[:2] / f"{key}.json"

    def get(self, kind: str, key: str, validate: Callable[[dict], dict]) -> dict | None:
        """The body stored under ``key``, checked by ``validate`` (which returns the body to use or raises
        InvalidEntry), or None: disabled, absent, unreadable, foreign or damaged entries are all misses."""
        if not self.enabled:
            return None
        try:
            entry = json.loads(self._path(kind, key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("schema") != SCHEMA or entry.get("kind") != kind \
                or entry.get("key") != key or not isinstance(entry.get("body"), dict):
            return None
        if entry.get("checksum") != _checksum(kind, key, entry["body"]):
            return None
        try:
            return validate(entry["body"])
        except (InvalidEntry, KeyError, TypeError, ValueError):
            return None

    def put(self, kind: str, key: str, body: dict) -> None:
        """Store ``body`` atomically; on a write failure, warn once and store nothing from then on."""
        if not self.writable:
            return
        entry = {"schema": SCHEMA, "kind": kind, "key": key, "body": body, "checksum": _checksum(kind, key, body)}
        path = self._path(kind, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(entry))
        except OSError as exc:
            self.writable = False
            self._warn(f"warning: {self.folder}: result cache cannot be written ({exc.strerror or exc}); "
                       "this run goes on without storing results in it")
