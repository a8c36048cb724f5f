"""Black and white levels: which stored values are 0 and 1 once normalised, and where a run takes them from.

* ``normalize`` / ``denormalize``: the organisers' arithmetic, ``(raw - black) / (white - black)`` in
  float32 and back through ``clip(x, 0, 1) * (white - black) + black`` truncated to uint16. ``black`` is
  one level, or four, one per packed plane (``PLANE_OFFSETS`` order): those apply to the last axis of a
  packed ``(..., 4)`` array, or to the 2x2 CFA phases of a 2-D mosaic (a window of one that starts on an
  even row and column keeps its phases);
* ``Levels``: one frame's levels, a black level per packed plane and the white level;
* ``LevelPolicy``: where the levels of a file come from. ``competition`` (the default) fixes 1024 / 16383
  for every file whatever its DNG tags say, as the organisers did; ``file`` takes each file's own tags
  (rawpy's ``black_level_per_channel`` mapped to the planes through ``raw_pattern``, and ``white_level``).
  ``--black-level`` / ``--white-level`` override either part.

Numpy only, so that an exported script can carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.errors import BenchError

COMPETITION_BLACK_LEVEL = 1024
COMPETITION_WHITE_LEVEL = 16383
#: Largest value a 16-bit mosaic can hold, so the highest possible white level.
MAX_LEVEL = 65535
LEVEL_MODES = ("competition", "file")
#: The options that set levels, named in messages.
LEVEL_OPTIONS = "--levels file (the files' own DNG tags) or --black-level/--white-level"


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def level_range_problem(black_level, white_level) -> str | None:
    """What is wrong with a black level (one, or four per plane) and white level for 16-bit data, as one
    phrase, or None when ``0 <= black < white <= 65535`` holds for integers (for every plane's black)."""
    blacks = tuple(black_level) if isinstance(black_level, (tuple, list)) else (black_level,)
    if len(blacks) not in (1, 4) or not all(_is_int(b) for b in blacks) or not _is_int(white_level):
        return f"black level {black_level!r} and white level {white_level!r} must be integers"
    if not all(0 <= b < white_level <= MAX_LEVEL for b in blacks):
        return (f"black level {black_text(blacks)} and white level {white_level} must satisfy "
                f"0 <= black < white <= {MAX_LEVEL}")
    return None


def black_text(black_level) -> str:
    """``1024`` for one black level (or four equal ones), ``1000/1010/1020/1030`` for four per plane."""
    blacks = tuple(black_level) if isinstance(black_level, (tuple, list)) else (black_level,)
    if len(set(blacks)) == 1:
        return str(int(blacks[0]))
    return "/".join(str(int(b)) for b in blacks)


def _per_sample_black(black_level, shape: tuple[int, ...]) -> np.ndarray:
    """Four per-plane black levels as an int64 array that broadcasts against an array of ``shape``: the last
    axis of a packed ``(..., 4)`` array, or the 2x2 CFA phases of a 2-D mosaic."""
    black = np.asarray(black_level, dtype=np.int64)
    if black.shape != (4,):
        raise ValueError(f"black level must be one value or four (one per plane), got {black_level!r}")
    if len(shape) == 2:
        rows, cols = shape
        return np.tile(black.reshape(2, 2), ((rows + 1) // 2, (cols + 1) // 2))[:rows, :cols]
    if not shape or shape[-1] != 4:
        raise ValueError(f"per-plane black levels need a 2-D mosaic or a packed (..., 4) array, got shape {shape}")
    return black


def normalize(raw: np.ndarray, black_level, white_level: int) -> np.ndarray:
    """Competition normalisation ``(raw - black) / (white - black)`` in float32 (not clipped); ``black_level``
    one level or four per plane (module docstring)."""
    if np.ndim(black_level) == 0:
        return (raw.astype(np.float32) - np.float32(black_level)) / np.float32(white_level - black_level)
    black = _per_sample_black(black_level, np.shape(raw))
    return (raw.astype(np.float32) - black.astype(np.float32)) / (white_level - black).astype(np.float32)


def denormalize(x: np.ndarray, black_level, white_level: int) -> np.ndarray:
    """Competition inverse: ``clip(x, 0, 1) * (white - black) + black`` in float32, then truncating
    ``astype(uint16)`` (no rounding), exactly as the organisers' code does on a float32 network output;
    ``black_level`` one level or four per plane (module docstring)."""
    if np.ndim(black_level) == 0:
        scaled = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * np.float32(white_level - black_level)
        return (scaled + np.float32(black_level)).astype(np.uint16)
    black = _per_sample_black(black_level, np.shape(x))
    scaled = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0) * (white_level - black).astype(np.float32)
    return (scaled + black.astype(np.float32)).astype(np.uint16)


@dataclass(frozen=True)
class Levels:
    """The levels one frame is normalised with: ``black``, the black level of each packed plane
    (``PLANE_OFFSETS`` order, four integers), and ``white``, the white level. ValueError unless
    ``0 <= black < white <= 65535`` for every plane."""

    black: tuple[int, int, int, int]
    white: int

    def __post_init__(self):
        problem = level_range_problem(tuple(self.black), self.white)
        if problem is None and len(self.black) != 4:
            problem = f"black level {self.black!r} must be four values, one per plane"
        if problem:
            raise ValueError(problem)
        object.__setattr__(self, "black", tuple(int(b) for b in self.black))
        object.__setattr__(self, "white", int(self.white))

    @classmethod
    def of(cls, black_level, white_level: int) -> "Levels":
        """Levels from one black level (every plane's) or four, and the white level."""
        if isinstance(black_level, (tuple, list)):
            return cls(tuple(black_level), white_level)
        return cls((black_level,) * 4, white_level)

    @property
    def uniform(self) -> bool:
        """True when all four planes share one black level (as in the competition)."""
        return len(set(self.black)) == 1

    @property
    def black_level(self):
        """What ``normalize`` takes: the one black level when the planes share it, else the four."""
        return self.black[0] if self.uniform else self.black

    @property
    def white_level(self) -> int:
        return self.white

    @property
    def dn_step(self) -> float:
        """One stored level (DN) in the normalised domain, ``1 / (white - black)`` (with the planes' mean
        black where they differ): what the blind noise estimator models the truncation to whole DN with."""
        if self.uniform:
            return 1.0 / (self.white - self.black[0])
        return 1.0 / (self.white - sum(self.black) / 4.0)

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` (a packed ``(..., 4)`` array or a 2-D mosaic) normalised, float32, not clipped."""
        return normalize(raw, self.black_level, self.white)

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        """The organisers' write-back of ``x`` (packed or a 2-D mosaic) to uint16 in these levels."""
        return denormalize(x, self.black_level, self.white)

    def describe(self) -> str:
        """``black 1024, white 16383`` (``black 1000/1010/1020/1030 per plane, ...`` where they differ)."""
        per_plane = "" if self.uniform else " per plane"
        return f"black {black_text(self.black)}{per_plane}, white {self.white}"

    def as_dict(self) -> dict:
        """``{"black": [four ints], "white": int}``, for records."""
        return {"black": list(self.black), "white": self.white}


@dataclass(frozen=True)
class LevelPolicy:
    """Where each file's levels come from (module docstring): ``mode`` "competition" or "file", and
    ``black`` / ``white`` the levels fixed for every file (``--black-level`` / ``--white-level``, or the
    competition's 1024 / 16383, which "competition" fills in), None where each file's own tag is used.
    BenchError for an unknown mode or impossible levels."""

    mode: str = "competition"
    black: int | None = None
    white: int | None = None

    def __post_init__(self):
        if self.mode not in LEVEL_MODES:
            raise BenchError(f"--levels must be one of {', '.join(LEVEL_MODES)}, got {self.mode!r}")
        if self.mode == "competition":
            object.__setattr__(self, "black", COMPETITION_BLACK_LEVEL if self.black is None else self.black)
            object.__setattr__(self, "white", COMPETITION_WHITE_LEVEL if self.white is None else self.white)
        if self.black is not None and self.white is not None:
            problem = level_range_problem(self.black, self.white)
            if problem:
                raise BenchError(f"{problem} (--black-level/--white-level)")
        for name, value in (("black", self.black), ("white", self.white)):
            if value is not None and (not _is_int(value) or not 0 <= value <= MAX_LEVEL):
                raise BenchError(f"--{name}-level {value!r} must be an integer from 0 to {MAX_LEVEL}")
            object.__setattr__(self, name, None if value is None else int(value))

    @property
    def fixed(self) -> Levels | None:
        """The levels of every file when the policy fixes both parts (no file is needed), else None."""
        if self.black is None or self.white is None:
            return None
        return Levels.of(self.black, self.white)

    def resolve(self, path, tag_black: tuple[int, ...], tag_white: int) -> Levels:
        """The levels of the file at ``path`` whose DNG tags give ``tag_black`` (per plane) and ``tag_white``;
        BenchError naming the file when they are no valid levels."""
        black = (self.black,) * 4 if self.black is not None else tuple(tag_black)
        white = self.white if self.white is not None else tag_white
        problem = level_range_problem(black, white)
        if problem:
            raise BenchError(f"{path}: levels from its DNG tags ({tags_text(tag_black, tag_white)}) do not "
                             f"work: {problem}; pass --black-level/--white-level for this sensor")
        return Levels.of(black, white)

    def tag_note(self, path, used: Levels, tag_black: tuple[int, ...], tag_white: int) -> str | None:
        """One line saying that the file at ``path`` is normalised with other levels than its DNG tags give,
        or None when they agree (always under "file" without overrides)."""
        if tuple(tag_black) == used.black and tag_white == used.white:
            return None
        why = ("--levels competition fixes them as the organisers did; --levels file uses the tags"
               if self.mode == "competition" else "--black-level/--white-level override them")
        return (f"{path}: its DNG tags give {tags_text(tag_black, tag_white)}, but it is normalised with "
                f"{used.describe()} ({why})")

    def describe(self) -> str:
        """One phrase, e.g. ``competition (black 1024, white 16383 for every file)`` or ``file (each file's
        DNG tags)``."""
        if self.mode == "competition":
            return f"competition (black {self.black}, white {self.white} for every file, whatever its tags say)"
        parts = [f"black {self.black}" if self.black is not None else "black from each file's DNG tags",
                 f"white {self.white}" if self.white is not None else "white from each file's DNG tags"]
        return f"file ({', '.join(parts)})"

    def as_dict(self) -> dict:
        """``{"mode", "black", "white"}`` (None where each file's tag is used), for records and cache keys."""
        return {"mode": self.mode, "black": self.black, "white": self.white}


def tags_text(tag_black: tuple[int, ...], tag_white: int) -> str:
    """``black 1000/1010/1020/1030, white 4095``: what a file's DNG tags say."""
    return f"black {black_text(tuple(tag_black))}, white {tag_white}"
