"""``algorithm/export.json``: what a submission was made from and what ``bench verify`` checks it against
(the method, its kind and parameters, the script and the SHA-256 of it and of ``model.pth``, the level
policy, and every input and output with its SHA-256 and levels), plus how the export went. Written by
``bench export``; read back, and checked, by ``bench verify``: a damaged file, or one of another format, is a
BenchError naming the file and the field at fault, never a default silently put in its place."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError
from bench.core.files import atomic_write_text
from bench.core.levels import LEVEL_MODES, LevelPolicy, Levels, level_range_problem
from bench.record_fields import RecordFields

#: The format this bench writes and reads. -1 lacked script_sha256 and model_sha256; -2 had one black and
#: white level for all files, and no levels per file.
MANIFEST_FORMAT = "raw-bench-export-3"
#: Where the record lies in a submission folder.
EXPORT_FILE = Path("algorithm") / "export.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageRecord:
    """One test image: its id, the input file's name and the output's (``denoise{id}.dng``), each with
    its SHA-256, and the levels the input was normalised and the output written with (``black`` one per
    plane, ``white``)."""

    id: str
    input: str
    input_sha256: str
    output: str
    output_sha256: str
    black: list[int]
    white: int

    @property
    def levels(self) -> Levels:
        return Levels.of(self.black, self.white)


@dataclass(frozen=True)
class InputsRecord:
    """The folder the inputs were read from, and every image."""

    folder: str
    files: list[ImageRecord]


@dataclass(frozen=True)
class ExportRecord:
    """Everything ``export.json`` holds. ``model_sha256`` and ``model_bytes`` are those of ``model.pth`` for
    a learned method (None for a classical one); ``chosen_from`` and ``chosen_score`` the run the method was
    picked from with ``--best`` and its mean Score there (None when named by hand). ``levels`` is the level
    mode ("competition" or "file") and ``black_level`` / ``white_level`` the levels it fixed for every file
    (None where each file's own tag was used)."""

    created: str
    method: str
    kind: str
    params: dict[str, Any]
    script: str
    script_sha256: str
    model_sha256: str | None
    chosen_from: str | None
    chosen_score: float | None
    levels: str
    black_level: int | None
    white_level: int | None
    inputs: InputsRecord
    seconds_per_image: list[float]
    model_bytes: int | None
    command: str
    versions: dict[str, str]
    git_commit: str | None

    def write(self, result_dir: Path) -> None:
        """Write ``result_dir/algorithm/export.json`` atomically (the folder must exist)."""
        data = {"format": MANIFEST_FORMAT, **dataclasses.asdict(self)}
        atomic_write_text(Path(result_dir) / EXPORT_FILE, json.dumps(data, indent=2) + "\n")

    def level_policy(self) -> LevelPolicy:
        """The LevelPolicy the submission read its inputs with."""
        return LevelPolicy(self.levels, self.black_level, self.white_level)

    @classmethod
    def read(cls, result_dir: Path) -> "ExportRecord":
        """Read and check ``result_dir/algorithm/export.json``; BenchError naming the file and the field on
        any problem, and one saying to export again for a record of another format."""
        path = Path(result_dir) / EXPORT_FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise BenchError(f"{path}: cannot read the export record ({exc})") from None
        top = RecordFields(data, path, "export.json")
        written = top.get("format", str, optional=True)
        if written != MANIFEST_FORMAT:
            raise BenchError(f"{path}: format is {written!r}, not {MANIFEST_FORMAT!r}: written by another version "
                             "of bench export, whose record this one does not read; export again")
        mode = top.get("levels", str)
        if mode not in LEVEL_MODES:
            raise BenchError(f"{path}: levels is {mode!r}, not one of {LEVEL_MODES}")
        fixed = (top.get("black_level", int, optional=True), top.get("white_level", int, optional=True))
        if None not in fixed and level_range_problem(*fixed):
            raise BenchError(f"{path}: black_level/white_level: {level_range_problem(*fixed)}")
        if mode == "competition" and None in fixed:
            raise BenchError(f"{path}: levels is 'competition', which fixes black_level and white_level, but "
                             "one of them is missing")
        inputs = RecordFields(top.get("inputs", dict), path, "inputs")
        files = [_image(item, path, f"inputs.files[{index}]")
                 for index, item in enumerate(inputs.get("files", list))]
        for field in ("input", "output"):
            seen: dict[str, int] = {}
            for index, image in enumerate(files):
                name = getattr(image, field)
                if name in seen:
                    raise BenchError(f"{path}: inputs.files[{index}].{field} {name!r} is also "
                                     f"inputs.files[{seen[name]}].{field}")
                seen[name] = index
        seconds = top.get("seconds_per_image", list)
        for index, value in enumerate(seconds):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise BenchError(f"{path}: seconds_per_image[{index}] is {value!r}, not a number")
        versions = top.get("versions", dict)
        for name, version in versions.items():
            if not isinstance(version, str):
                raise BenchError(f"{path}: versions.{name} is {version!r}, not str")
        return cls(top.get("created", str), top.get("method", str), top.get("kind", str),
                   top.get("params", dict), top.get("script", str), _sha256(top, "script_sha256"),
                   _sha256(top, "model_sha256", optional=True), top.get("chosen_from", str, optional=True),
                   top.get("chosen_score", (int, float), optional=True), mode, *fixed,
                   InputsRecord(inputs.get("folder", str), files),
                   list(seconds), top.get("model_bytes", int, optional=True), top.get("command", str),
                   versions, top.get("git_commit", str, optional=True))


def _image(data: Any, path: Path, where: str) -> ImageRecord:
    fields = RecordFields(data, path, where)
    black, white = fields.get("black", list), fields.get("white", int)
    problem = level_range_problem(black, white)
    if problem or len(black) != 4:
        raise BenchError(f"{path}: {where}.black/white: {problem or 'black must be four levels, one per plane'}")
    return ImageRecord(fields.get("id", str), fields.get("input", str), _sha256(fields, "input_sha256"),
                       fields.get("output", str), _sha256(fields, "output_sha256"), black, white)


def _sha256(fields: RecordFields, name: str, optional: bool = False) -> str | None:
    """The hex SHA-256 ``fields`` holds under ``name`` (None when optional and absent)."""
    value = fields.get(name, str, optional)
    if value is not None and not _SHA256.match(value):
        raise BenchError(f"{fields.path}: {fields.where}.{name} is {value!r}, not a hex SHA-256")
    return value
