"""The typed field reader the suite's JSON records (run.json, export.json) are read with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.core.errors import BenchError


class RecordFields:
    """Typed access to one JSON object read from ``path`` (``where`` names it in messages): ``get`` returns a
    field of the given type or raises BenchError naming the file and the field; a bool is never taken for
    an int."""

    def __init__(self, data: Any, path: Path, where: str):
        if not isinstance(data, dict):
            raise BenchError(f"{path}: {where} is not a JSON object")
        self.data, self.path, self.where = data, path, where

    def get(self, name: str, kind: type | tuple[type, ...], optional: bool = False):
        if name not in self.data or self.data[name] is None:
            if optional:
                return None
            raise BenchError(f"{self.path}: {self.where} has no {name!r}")
        value = self.data[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise BenchError(f"{self.path}: {self.where}.{name} is {value!r}, not {_names(kind)}")
        return value


def _as_tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))
