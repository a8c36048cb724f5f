"""``run.json``: what a run was (command, dataset, levels, noise mode, bursts, methods and their parameters,
versions, code) and how it ended. Written by ``bench run``; read back by ``bench report`` and
``bench export --best``. One dataclass per part, each checked when read: a damaged or foreign file is a
BenchError naming it and the field at fault, never a default silently put in its place."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.burst import BurstSpec
from bench.core.errors import BenchError
from bench.core.files import atomic_write_text
from bench.core.levels import LEVEL_MODES, LevelPolicy, level_range_problem
from bench.record_fields import RecordFields

RUN_FILE = "run.json"
STATUSES = ("running", "finished", "interrupted")


def _legacy_origin(name: str) -> str:
    """The origin of a dataset in a run.json written before ``origin`` was recorded (2026-12): the
    embedded set was the one named "embedded"."""
    return "embedded" if name == "embedded" else "folder"


@dataclass(frozen=True)
class DatasetRecord:
    """The dataset a run scored: ``origin`` "embedded" (the suite's own, rebuilt on demand) or "folder".
    ``black_level`` / ``white_level``: the levels the run fixed for every file (the competition's, or
    ``--black-level`` / ``--white-level``), None where each file's own tag was used (``--levels file``)."""

    name: str
    root: str
    images: int
    black_level: int | None
    white_level: int | None
    origin: str = "folder"


@dataclass(frozen=True)
class LevelsRecord:
    """How a run chose each file's levels (``mode``, "competition" or "file"; the fixed values are the
    dataset record's) and the levels each file it read was normalised with: relative file name ->
    ``{"black": [one per plane], "white": n}``, plus ``"tags"`` in that form where the file's DNG tags give
    other levels."""

    mode: str
    files: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class MethodRecord:
    """One method of a run: its kind, the parameter values it ran with, why it could not run (or None)."""

    kind: str
    params: dict
    unavailable: str | None = None


@dataclass(frozen=True)
class BurstRecord:
    """The frames burst methods received: real ones from the dataset, or synthetic ones made with these
    settings (``bench.burst``)."""

    frames: int
    source: str
    max_shift_pixels: float | None = None
    max_rotation_degrees: float | None = None
    seed: int | None = None
    generator_noise: str | None = None

    @classmethod
    def of(cls, spec: BurstSpec | None, real_frames_folder: Path | None) -> "BurstRecord | None":
        """The record of ``spec`` (None for one-frame runs); ``real_frames_folder`` when the frames are real."""
        if spec is None or spec.frames == 1:
            return None
        if real_frames_folder is not None:
            return cls(spec.frames, f"real frames from {real_frames_folder}")
        return cls(spec.frames, "synthetic (bench.burst)", spec.max_shift, spec.max_rotation, spec.seed,
                   "the dataset's true profile where known, else estimated from frame 0")

    def spec(self) -> BurstSpec:
        """The BurstSpec that makes these frames again."""
        if self.max_shift_pixels is None:  # real frames: only their number matters
            return BurstSpec(self.frames)
        return BurstSpec(self.frames, self.max_shift_pixels, self.max_rotation_degrees, self.seed)


@dataclass
class RunRecord:
    """Everything ``run.json`` holds. ``finished``, ``dataset_fingerprint``, ``results`` and ``execution``
    are set when the run ends (also when interrupted)."""

    command: str
    started: str
    status: str
    dataset: DatasetRecord
    noise: str
    burst: BurstRecord | None
    methods: dict[str, MethodRecord]
    versions: dict[str, str]
    git_commit: str | None
    finished: str | None = None
    dataset_fingerprint: str | None = None
    results: dict[str, int] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)
    #: None in a run.json written before levels were recorded (2026-12): those runs used the dataset
    #: record's fixed levels for every file.
    levels: LevelsRecord | None = None

    def level_policy(self) -> LevelPolicy:
        """The LevelPolicy the run read its files with."""
        mode = self.levels.mode if self.levels else "competition"
        return LevelPolicy(mode, self.dataset.black_level, self.dataset.white_level)

    def write(self, run_dir: Path) -> None:
        """Write ``run_dir/run.json`` atomically."""
        atomic_write_text(Path(run_dir) / RUN_FILE, json.dumps(dataclasses.asdict(self), indent=2, default=str) + "\n")

    @classmethod
    def read(cls, run_dir: Path) -> "RunRecord":
        """Read and check ``run_dir/run.json``; BenchError naming the file and the field on any problem."""
        path = Path(run_dir) / RUN_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise BenchError(f"{run_dir}: not a `bench run` folder (no {RUN_FILE})") from None
        except (OSError, ValueError) as exc:
            raise BenchError(f"{path}: cannot be read ({exc})") from None
        top = RecordFields(data, path, "run.json")
        status = top.get("status", str)
        if status not in STATUSES:
            raise BenchError(f"{path}: status is {status!r}, not one of {STATUSES}")
        noise = top.get("noise", str)
        if noise not in ("estimate", "oracle"):
            raise BenchError(f"{path}: noise is {noise!r}, not 'estimate' or 'oracle'")
        ds = RecordFields(top.get("dataset", dict), path, "dataset")
        levels = None
        if top.get("levels", dict, optional=True) is not None:
            lv = RecordFields(data["levels"], path, "levels")
            mode = lv.get("mode", str)
            if mode not in LEVEL_MODES:
                raise BenchError(f"{path}: levels.mode is {mode!r}, not one of {LEVEL_MODES}")
            levels = LevelsRecord(mode, lv.get("files", dict))
        fixed = (ds.get("black_level", int, optional=levels is not None),
                 ds.get("white_level", int, optional=levels is not None))
        if None not in fixed and level_range_problem(*fixed):
            raise BenchError(f"{path}: dataset.black_level/white_level: {level_range_problem(*fixed)}")
        dataset = DatasetRecord(ds.get("name", str), ds.get("root", str), ds.get("images", int), *fixed,
                                ds.get("origin", str, optional=True) or _legacy_origin(ds.get("name", str)))
        methods = {}
        for name, value in top.get("methods", dict).items():
            m = RecordFields(value, path, f"methods.{name}")
            methods[name] = MethodRecord(m.get("kind", str), m.get("params", dict), m.get("unavailable", str, True))
        burst = None
        if top.get("burst", dict, optional=True) is not None:
            b = RecordFields(data["burst"], path, "burst")
            burst = BurstRecord(b.get("frames", int), b.get("source", str),
                                b.get("max_shift_pixels", (int, float), True), b.get("max_rotation_degrees", (int, float), True),
                                b.get("seed", int, True), b.get("generator_noise", str, True))
        return cls(top.get("command", str), top.get("started", str), status, dataset, noise, burst, methods,
                   top.get("versions", dict, optional=True) or {}, top.get("git_commit", str, optional=True),
                   top.get("finished", str, optional=True), top.get("dataset_fingerprint", str, optional=True),
                   top.get("results", dict, optional=True) or {}, top.get("execution", dict, optional=True) or {},
                   levels)
