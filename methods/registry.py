"""Name -> method class registry, in the spirit of timm's ``register_model`` / ``list_models``.

Every module in the ``methods`` package (one file per method) is imported on first lookup, so a new
method is added by dropping a file here; the harness never changes. Method modules import only numpy
at module level; heavy packages (torch, bm3d) are imported inside ``denoise``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import math
import pkgutil
from typing import Any

from bench.core.errors import BenchError
from methods.base import METHOD_KINDS, Method

_REGISTRY: dict[str, type[Method]] = {}
_NOT_METHOD_MODULES = {"base", "registry", "networks", "toolkit"}
_discovered = False


def register_method(name: str):
    """Class decorator: register a ``Method`` dataclass under ``name``. Duplicate names are an error."""

    def decorator(cls: type[Method]) -> type[Method]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name {name!r} registered twice ({_REGISTRY[name].__module__} and {cls.__module__})")
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"{cls!r} registered as {name!r} is not a Method subclass")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"method {name!r} must be a @dataclass (its fields are its parameters)")
        if cls.kind not in METHOD_KINDS:
            raise ValueError(f"method {name!r} has kind {cls.kind!r}; expected one of {METHOD_KINDS}")
        _check_declared_ranges(name, cls)
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def _check_declared_ranges(name: str, cls: type[Method]) -> None:
    """A declared valid range must hold the parameter's default and its tuning range (ValueError if not)."""
    for spec in cls.params():
        if spec.valid is None:
            continue
        if spec.type not in (int, float):
            raise ValueError(f"method {name!r}: parameter {spec.name} is {spec.type.__name__}; only int and "
                             "float parameters take a valid range")
        for what, value in (("default", spec.default), ("tuning low", spec.low), ("tuning high", spec.high)):
            if value is not None and not spec.valid.contains(value):
                raise ValueError(f"method {name!r}: parameter {spec.name} {what} {value!r} is outside its "
                                 f"valid range {spec.valid}")


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    import methods

    for info in pkgutil.iter_modules(methods.__path__):
        if info.name not in _NOT_METHOD_MODULES and not info.name.startswith("_"):
            importlib.import_module(f"methods.{info.name}")
    _discovered = True


def list_methods(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style wildcard ``pattern``, sorted."""
    _discover()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_method_class(name: str) -> type[Method]:
    """The class registered as ``name``; BenchError listing the known names otherwise."""
    _discover()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BenchError(f"unknown method {name!r}.{hint} Known methods: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def resolve_method_names(spec: str) -> list[str]:
    """Comma-separated names or wildcards (``"bm3d,burst_*"``) -> registered names, in the given order."""
    names: list[str] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        matched = list_methods(item) if any(ch in item for ch in "*?[") else [get_method_class(item).name]
        if not matched:
            raise BenchError(f"no method matches {item!r}. Known methods: {', '.join(list_methods())}")
        names.extend(m for m in matched if m not in names)
    if not names:
        raise BenchError("no methods given (use --methods NAME[,NAME...]; `python -m bench list` shows them)")
    return names


def create_method(name: str, values: dict[str, Any] | None = None) -> Method:
    """Instantiate method ``name`` with parameter ``values`` (others keep their defaults).

    Values are checked against the declared parameters before anything runs: unknown names, wrong types,
    values outside declared choices, NaN or infinity for a float, and numbers outside the parameter's
    declared valid range are BenchErrors naming ``method.parameter``. Integers are accepted for float
    parameters.
    """
    cls = get_method_class(name)
    specs = {p.name: p for p in cls.params()}
    checked: dict[str, Any] = {}
    for key, value in (values or {}).items():
        if key not in specs:
            raise BenchError(f"method {name!r} has no parameter {key!r}; its parameters: {', '.join(specs) or 'none'}")
        spec = specs[key]
        if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            raise BenchError(f"parameter {name}.{key} must be {spec.type.__name__}, got {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise BenchError(f"parameter {name}.{key} must be one of {spec.choices}, got {value!r}")
        if spec.type is float and not math.isfinite(value):
            raise BenchError(f"parameter {name}.{key} must be a finite number, got {value!r}")
        if spec.valid is not None and not spec.valid.contains(value):
            raise BenchError(f"parameter {name}.{key} = {value!r} is outside its valid range {spec.valid}")
        checked[key] = value
    return cls(**checked)
