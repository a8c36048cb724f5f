"""The one interface every denoiser implements, classical, burst or learned.

A method is a dataclass whose fields are its parameters, declared with :func:`param` so that
``bench list``, ``--params`` files and tuning can see their type, default, range and meaning::

    @register_method("my_filter")
    @dataclass
    class MyFilter(Method):
        \"\"\"One line saying what it does.\"\"\"
        kind = "classical"
        strength: float = param(1.0, "multiplier on the noise level", low=0.25, high=4.0, valid=above(0))

        def denoise(self, raw: NoisyRaw) -> np.ndarray:
            ...

Every ``int`` and ``float`` parameter declares its *valid* range (``valid=``: the values the method can
honestly run with, checked by ``create_method``), which is distinct from the *tuning* range ``low``..``high``
that ``bench tune`` searches and must lie inside it.

The harness builds one ``NoisyRaw`` per image and calls ``denoise`` on it; nothing else (``bench speed``
also times ``library_call``, the direct library call of a method that wraps one, as its baseline).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import typing
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from bench.core.cfa import check_bayer
from bench.core.noise_model import NoiseProfile

#: The kinds of method the registry knows. "burst" methods use every frame of ``NoisyRaw.frames``.
METHOD_KINDS = ("reference", "classical", "burst", "learned")


@dataclass(frozen=True)
class ValidRange:
    """The values a numeric parameter may take at all: ``minimum``..``maximum``, each end included unless
    ``minimum_open`` / ``maximum_open``; ``math.inf`` / ``-math.inf`` for no limit (NaN and infinity are
    never valid values)."""

    minimum: float = -math.inf
    maximum: float = math.inf
    minimum_open: bool = False
    maximum_open: bool = False

    def contains(self, value: float) -> bool:
        """True when ``value`` is a finite number inside the range."""
        if not math.isfinite(value):
            return False
        above_minimum = value > self.minimum if self.minimum_open else value >= self.minimum
        below_maximum = value < self.maximum if self.maximum_open else value <= self.maximum
        return above_minimum and below_maximum

    def __str__(self) -> str:
        """Interval notation, e.g. ``[1, inf)``, ``(0, inf)``, ``[0, 1]``."""
        left = "(" if self.minimum_open or math.isinf(self.minimum) else "["
        right = ")" if self.maximum_open or math.isinf(self.maximum) else "]"
        return f"{left}{_number_text(self.minimum)}, {_number_text(self.maximum)}{right}"


def _number_text(value: float) -> str:
    return "inf" if value == math.inf else "-inf" if value == -math.inf else f"{value:g}"


def at_least(minimum: float) -> ValidRange:
    """Valid range ``[minimum, inf)``."""
    return ValidRange(minimum)


def above(minimum: float) -> ValidRange:
    """Valid range ``(minimum, inf)``: e.g. a sigma or strength that must be positive."""
    return ValidRange(minimum, minimum_open=True)


def between(minimum: float, maximum: float) -> ValidRange:
    """Valid range ``[minimum, maximum]``."""
    return ValidRange(minimum, maximum)


def param(default: Any, doc: str, low: float | None = None, high: float | None = None,
          choices: tuple | None = None, valid: ValidRange | None = None):
    """Declare a method parameter: its default, a one-line meaning, and optionally its tuning range
    (``low``..``high`` for numbers, searched by ``bench tune``), its allowed ``choices``, and, for numbers,
    its ``valid`` range (every ``int``/``float`` parameter must declare one; ``create_method`` refuses
    values outside it)."""
    return field(default=default, metadata={"doc": doc, "low": low, "high": high, "choices": choices,
                                            "valid": valid})


class NoisyRaw:
    """What a method receives for one image.

    frames: ``(N, h, w, 4)`` float32 in [0, 1], read-only: normalised packed frames, frame 0 the
        reference (N = 1 outside burst runs). ``packed`` is ``frames[0]``.
    cfa: colour of each of the 4 planes, e.g. "BGGR": any 2x2 Bayer pattern (``bench.core.cfa``; BenchError
        naming the image otherwise). What a method does across planes must hold for every Bayer layout.
    noise: the noise profile of the frames (estimated from frame 0 or the dataset's true one, as the run
        chose); computed the first time a method asks for it.
    image_id: the dataset's id of the image (for messages only; methods must not key behaviour on it).
    """

    def __init__(self, frames: np.ndarray, cfa: str, noise: Callable[[], NoiseProfile], image_id: str):
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 4 or frames.shape[-1] != 4:
            raise ValueError(f"frames must be (N, h, w, 4), got {frames.shape}")
        frames.setflags(write=False)
        self.frames = frames
        self.cfa = check_bayer(cfa, f"image {image_id}")
        self.image_id = image_id
        self._noise_fn = noise

    @property
    def packed(self) -> np.ndarray:
        """``(h, w, 4)`` float32 in [0, 1]: the reference frame."""
        return self.frames[0]

    @cached_property
    def noise(self) -> NoiseProfile:
        return self._noise_fn()

    def reference_only(self) -> "NoisyRaw":
        """This input cut to frame 0 (what single-frame methods receive in a burst run); the noise profile
        is shared, so it is computed at most once."""
        if len(self.frames) == 1:
            return self
        return NoisyRaw(self.frames[:1], self.cfa, lambda: self.noise, self.image_id)


@dataclass(frozen=True)
class ParamSpec:
    """A declared parameter as seen by the command line and tuning."""

    name: str
    type: type
    default: Any
    doc: str
    low: float | None
    high: float | None
    choices: tuple | None
    valid: ValidRange | None = None

    def bounds_text(self) -> str:
        """What ``bench list`` shows after the default: the choices, or the valid and tuning ranges, e.g.
        ``"valid [1, inf), tuning range [3, 15]"``; empty when nothing is declared."""
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        parts = []
        if self.valid is not None:
            parts.append(f"valid {self.valid}")
        if self.low is not None or self.high is not None:
            parts.append(f"tuning range [{self.low}, {self.high}]")
        return ", ".join(parts)


class Method:
    """Base class of all denoisers. Subclasses are dataclasses whose fields are ``param(...)``s."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "classical"
    #: Packages the method imports when it runs: import name -> pip package name.
    requires: ClassVar[dict[str, str]] = {}
    #: Classical methods: the module-level function ``f(packed, profile, <each parameter by name>)`` ->
    #: denoised ``(h, w, 4)`` float32 that ``denoise`` calls. ``bench export`` copies it, with everything it
    #: uses, into a self-contained ``alg.py``; so it may import only third-party packages and module-level
    #: ``bench``/``methods`` names. None: the method cannot be exported as an ``alg.py``.
    packed_function: ClassVar[Callable | None] = None
    #: A method that wraps one library call: that call's name (e.g. ``"cv2.bilateralFilter"``), with
    #: ``library_call`` running it; ``bench speed`` times it next to the method. None: it wraps no library.
    wrapped_library: ClassVar[str | None] = None

    def denoise(self, raw: NoisyRaw) -> np.ndarray:
        """Return the denoised reference frame: ``(h, w, 4)`` float in [0, 1], same shape as ``raw.packed``."""
        raise NotImplementedError

    def library_call(self, packed: np.ndarray, sigma: float) -> np.ndarray:
        """The library call named by ``wrapped_library``, made directly and once on the ``(h, w, 4)`` float32
        packed image in [0, 1] with this method's settings and noise std ``sigma`` (normalised units):
        one call on the 4-plane image, the library's own threading, no variance stabilisation, no tiling.
        Returns the library's ``(h, w, 4)`` result as it comes (its dtype and scale). It is the baseline
        ``bench speed`` compares the method's speed with, not a denoiser: the method adds what it leaves out."""
        raise NotImplementedError(f"method {self.name!r} wraps no library call")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this method cannot run here (missing package, missing weights), or None if it can.
        Must be cheap: check, do not import heavy packages. By default, checks ``requires``."""
        for module, package in cls.requires.items():
            if importlib.util.find_spec(module) is None:
                return f"the {package} package is not installed (pip install {package})"
        return None

    @classmethod
    def describe(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def params(cls) -> list[ParamSpec]:
        hints = typing.get_type_hints(cls)
        specs = []
        for f in dataclasses.fields(cls):
            meta = f.metadata
            specs.append(ParamSpec(f.name, hints[f.name], f.default, meta.get("doc", ""),
                                   meta.get("low"), meta.get("high"), meta.get("choices"), meta.get("valid")))
        return specs

    def resource_files(self) -> list[Path]:
        """Files besides the image that decide this method's output (e.g. weights); their content is part
        of the result cache's key."""
        return []

    def param_values(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
