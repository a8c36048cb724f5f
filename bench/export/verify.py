"""``bench verify``: check a submission folder against the competition layout, its export record
(``export.json``) and, last, a re-run of its script alone.

The re-run executes the submission's code with the user's rights: verify only submissions you made or
trust.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from bench import codegen, pipeline
from bench.core.errors import BenchError
from bench.core.files import file_sha256
from bench.core.levels import LevelPolicy, black_text
from bench.core.rawio import inspect_dng, pack, read_dng, read_dng_levels
from bench.export.record import EXPORT_FILE, ExportRecord
from bench.export.script import script_declares

#: The competition's limit on model.pth, read strictly as 50 000 000 bytes (so that neither reading of
#: "50 MB" lets an oversized file through).
MAX_MODEL_BYTES = 50_000_000
_OUTPUT_NAME = re.compile(r"^denoise(\d+)\.dng$")
#: The files of a submission besides data/denoise{i}.dng and algorithm/models/ (relative to RESULT_DIR).
_RECORD_FILES = (Path("algorithm/README.md"), EXPORT_FILE)


def verify_submission(result_dir: Path, data: Path | None = None,
                      log: Callable[[str], None] = print, levels: str | None = None) -> list[str]:
    """Check a submission folder; returns the problems found (empty: it is good).

    Checked: the layout and file names (``data/denoise{i}.dng``; ``algorithm/models/`` holding exactly
    ``alg.py`` or ``network.py`` + ``model.pth``; ``algorithm/README.md``; ``algorithm/export.json``; no other
    file), model.pth within 50 MB, export.json readable and of this format (``ExportRecord.read``) and
    against the submission (the method, kind and parameters the script declares; the SHA-256 of the script,
    model.pth and every output), one output per input and none without an input, every output a DNG of its
    input's size, CFA and levels with values within each plane's [black, white] (the levels export.json's
    policy gives the input; ``levels``, a level mode, must be that policy's when given, and stands in for it
    when there is no readable record), the inputs unchanged since the export (SHA-256), then
    the script re-run alone on copies of the inputs (``data``, default: the folder recorded at export) must
    write byte-identical files, and ``result.zip`` beside the folder must hold exactly the folder under
    ``result/``.

    The re-run executes the submission's code with the caller's rights: verify only submissions you made or
    trust.
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        return [f"{result_dir}: submission folder not found"]
    problems: list[str] = []
    record: ExportRecord | None = None
    try:
        record = ExportRecord.read(result_dir)
    except BenchError as exc:  # one line; the checks that need the record are left out
        problems.append(str(exc))
    policy = record.level_policy() if record else LevelPolicy(levels or "competition")
    if record and levels is not None and levels != policy.mode:
        problems.append(f"{result_dir / EXPORT_FILE}: levels is {policy.mode!r}, but --levels {levels} was given")

    script = _check_models(result_dir, problems)
    if not (result_dir / "algorithm" / "README.md").is_file():
        problems.append(f"{result_dir / 'algorithm' / 'README.md'}: method report missing")
    _check_stray_files(result_dir, problems)
    if record and script is not None:
        _check_record_against_script(result_dir / EXPORT_FILE, record,
                                     result_dir / "algorithm" / "models" / script, problems)
    if record:
        _check_recorded_outputs(result_dir, record, problems)

    inputs: list[tuple[str, Path]] = []
    if data is not None or record:
        try:
            inputs = pipeline.find_noisy_inputs(Path(data) if data is not None else Path(record.inputs.folder))
        except BenchError as exc:
            problems.append(str(exc))
    recorded = {f.input: f.input_sha256 for f in record.inputs.files} if record else {}
    for _, path in inputs:
        if path.name in recorded and file_sha256(path) != recorded[path.name]:
            problems.append(f"{path}: changed since the export (SHA-256 differs from export.json)")
    _check_outputs(result_dir, inputs, policy, problems)

    if script is not None and inputs and not problems:
        log(f"re-running algorithm/models/{script} on copies of the {len(inputs)} inputs, alone in a fresh "
            "process and temporary folder; this executes the submission's code with your rights (verify only "
            "submissions you made or trust)")
        problems += _rerun_and_compare(result_dir, script, inputs)
    problems += _check_zip(result_dir)
    return problems


def _check_stray_files(result_dir: Path, problems: list[str]) -> None:
    """Every file that is not under ``data/`` or ``algorithm/models/`` (those have their own checks), nor
    ``algorithm/README.md`` or ``algorithm/export.json``, is a problem naming it."""
    checked_elsewhere = (Path("data"), Path("algorithm/models"))
    for path in sorted(result_dir.rglob("*")):
        relative = path.relative_to(result_dir)
        if path.is_dir() or relative in _RECORD_FILES or any(relative.is_relative_to(f) for f in checked_elsewhere):
            continue
        problems.append(f"{path}: unexpected file (a submission holds only data/denoise{{i}}.dng, "
                        "algorithm/README.md, algorithm/export.json and algorithm/models/)")


def _check_record_against_script(record_path: Path, record: ExportRecord, script_path: Path,
                                 problems: list[str]) -> None:
    """export.json must name the submission's script, record the SHA-256 of it (and of model.pth beside a
    network.py), and give the method, kind and parameters the script declares and runs with."""
    script = script_path.name
    if record.script != script:
        problems.append(f"{record_path}: script is {record.script!r}, but the submission's is {script!r}")
    hashed = [("script_sha256", script_path)]
    if script == "network.py":
        hashed.append(("model_sha256", script_path.with_name("model.pth")))
    for field, path in hashed:
        if not path.is_file():
            continue  # reported by _check_models
        if getattr(record, field) is None:
            problems.append(f"{record_path}: no {field} recorded")
        elif file_sha256(path) != getattr(record, field):
            problems.append(f"{path}: SHA-256 differs from export.json's {field}")
    try:
        name, kind, params, levels = script_declares(script_path)
    except BenchError as exc:
        problems.append(str(exc))
        return
    if levels != record.level_policy().as_dict():
        problems.append(f"{record_path}: levels are {record.level_policy().as_dict()}, but {script} runs with "
                        f"{levels if levels is not None else 'no LEVELS = LevelPolicy(...) literal'}")
    for field, declared in (("method", name), ("kind", kind)):
        if getattr(record, field) != declared:
            problems.append(f"{record_path}: {field} is {getattr(record, field)!r}, but {script} "
                            f"declares {declared!r}")
    recorded_params = record.params
    if script == "network.py":  # the weights are model.pth, checked by its SHA-256
        recorded_params = {k: v for k, v in recorded_params.items() if k != "weights"}
    runs_with = json.loads(json.dumps(params, default=repr))  # as export.json would hold it (tuples as lists)
    for key in sorted(set(recorded_params) | set(runs_with)):
        if key not in recorded_params or key not in runs_with or recorded_params[key] != runs_with[key]:
            problems.append(f"{record_path}: params[{key!r}] is {_recorded_value(recorded_params, key)}, but "
                            f"{script} runs with {_recorded_value(runs_with, key)}")


def _recorded_value(values: dict, key: str) -> str:
    return repr(values[key]) if key in values else "absent"


def _check_recorded_outputs(result_dir: Path, record: ExportRecord, problems: list[str]) -> None:
    """Every ``data/denoise{i}.dng`` must have the SHA-256 export.json recorded for it."""
    recorded = {f.output: f.output_sha256 for f in record.inputs.files}
    data_dir = result_dir / "data"
    if not data_dir.is_dir():
        return  # reported by _check_outputs
    for path in sorted(data_dir.iterdir()):
        if not _OUTPUT_NAME.match(path.name) or not path.is_file():
            continue  # reported by _check_outputs
        if path.name not in recorded:
            problems.append(f"{path}: export.json records no output_sha256 for it")
        elif file_sha256(path) != recorded[path.name]:
            problems.append(f"{path}: SHA-256 differs from export.json's output_sha256")


def _check_models(result_dir: Path, problems: list[str]) -> str | None:
    """Check ``algorithm/models``; returns the script's name, or None when there is no usable one."""
    models = result_dir / "algorithm" / "models"
    if not models.is_dir():
        problems.append(f"{models}: folder missing")
        return None
    names = sorted(p.name for p in models.iterdir())
    if "network.py" in names:
        expected = ["model.pth", "network.py"]
    elif "alg.py" in names:
        expected = ["alg.py"]
    else:
        problems.append(f"{models}: holds neither alg.py nor network.py (found: {', '.join(names) or 'nothing'})")
        return None
    for name in names:
        if name not in expected:
            problems.append(f"{models / name}: unexpected file (a submission holds exactly {' + '.join(expected)})")
    for name in expected:
        if name not in names:
            problems.append(f"{models / name}: missing")
    weights = models / "model.pth"
    if weights.is_file() and weights.stat().st_size > MAX_MODEL_BYTES:
        problems.append(f"{weights}: {weights.stat().st_size} bytes, over the 50 MB limit ({MAX_MODEL_BYTES} bytes)")
    return expected[-1]


def _check_outputs(result_dir: Path, inputs: list[tuple[str, Path]], policy: LevelPolicy,
                   problems: list[str]) -> None:
    data_dir = result_dir / "data"
    if not data_dir.is_dir():
        problems.append(f"{data_dir}: folder missing")
        return
    expected = {pipeline.output_name(image_id): path for image_id, path in inputs}
    for path in sorted(data_dir.iterdir()):
        if not _OUTPUT_NAME.match(path.name):
            problems.append(f"{path}: wrong name (outputs are named denoise{{i}}.dng)")
        elif inputs and path.name not in expected:
            problems.append(f"{path}: no input noisy image for it")
    for name, noisy in expected.items():
        out = data_dir / name
        if not out.is_file():
            problems.append(f"{out}: missing (the output for {noisy.name})")
            continue
        try:
            image = read_dng(out, policy)
            reference = inspect_dng(noisy)
            levels, _ = read_dng_levels(noisy, policy)
            cfa = read_dng(noisy).cfa
        except BenchError as exc:
            problems.append(str(exc))
            continue
        mosaic = image.mosaic
        if mosaic.shape != (reference.height, reference.width):
            problems.append(f"{out}: {mosaic.shape[0]}x{mosaic.shape[1]}, but {noisy.name} is "
                            f"{reference.height}x{reference.width}")
            continue
        if image.cfa != cfa or image.levels != levels:
            problems.append(f"{out}: CFA {image.cfa}, {image.levels.describe()}, but {noisy.name} has CFA {cfa}, "
                            f"{levels.describe()}")
        low, high = int(mosaic.min()), int(mosaic.max())
        packed = pack(mosaic)
        if (packed < np.asarray(levels.black)).any() or high > levels.white:
            problems.append(f"{out}: values {low}..{high} outside [{black_text(levels.black)}, {levels.white}]")


def _rerun_and_compare(result_dir: Path, script: str, inputs: list[tuple[str, Path]]) -> list[str]:
    """Run the exported script alone: in a fresh process that cannot import bench or methods, in a temporary
    folder holding only copies of ``algorithm/models/`` and of the inputs (so it cannot reach the shipped
    ``data/``); compare the files it writes with ``data/`` byte for byte."""
    problems = []
    script_path = result_dir / "algorithm" / "models" / script
    with tempfile.TemporaryDirectory(prefix="raw-bench-verify-") as tmp:
        tmp = Path(tmp)
        blocker = tmp / "blocked"
        for package in codegen.OWN_PACKAGES:
            (blocker / package).mkdir(parents=True)
            (blocker / package / "__init__.py").write_text(
                f"raise ImportError('exported code imported {package!s}, which a submission does not have')\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONPATH"] = str(blocker)
        # the submission's layout without its data/, so that paths relative to the script find nothing
        models_copy = tmp / "result" / "algorithm" / "models"
        inputs_copy, out_dir = tmp / "inputs", tmp / "out"
        models_copy.mkdir(parents=True)
        for path in sorted((result_dir / "algorithm" / "models").iterdir()):
            shutil.copyfile(path, models_copy / path.name)
        inputs_copy.mkdir()
        for _, path in inputs:
            shutil.copyfile(path, inputs_copy / path.name)
        completed = subprocess.run([sys.executable, str(models_copy / script), str(inputs_copy), str(out_dir)],
                                   cwd=tmp, env=env, capture_output=True, text=True)
        if completed.returncode != 0:
            lines = (completed.stderr or completed.stdout).strip().splitlines() or ["(no output)"]
            return [f"{script_path}: exited with status {completed.returncode} when run alone: {lines[-1]}"]
        for image_id, _ in inputs:
            name = pipeline.output_name(image_id)
            mine, theirs = result_dir / "data" / name, out_dir / name
            if not theirs.is_file():
                problems.append(f"{script_path}: run alone, it wrote no {name}")
            elif mine.read_bytes() != theirs.read_bytes():
                problems.append(f"{mine}: differs from what {script} writes when run alone ({_difference(mine, theirs)})")
    return problems


def _difference(first: Path, second: Path) -> str:
    try:
        a, b = read_dng(first).mosaic.astype(np.int32), read_dng(second).mosaic.astype(np.int32)
    except BenchError as exc:
        return str(exc)
    if a.shape != b.shape:
        return f"sizes {a.shape} and {b.shape}"
    differ = a != b
    if not differ.any():
        return "same pixels, other bytes"
    return f"{int(differ.sum())} pixels differ, by up to {int(np.abs(a - b).max())}"


def _check_zip(result_dir: Path) -> list[str]:
    zip_path = result_dir.parent / "result.zip"
    if not zip_path.is_file():
        return [f"{zip_path}: missing"]
    problems = []
    files = {"result/" + p.relative_to(result_dir).as_posix(): p for p in result_dir.rglob("*") if p.is_file()}
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = {info.filename: info for info in archive.infolist() if not info.is_dir()}
            for name in sorted(members):
                if not name.startswith("result/"):
                    problems.append(f"{zip_path}: {name} is outside the top folder result/")
                elif name not in files:
                    problems.append(f"{zip_path}: holds {name}, which the folder does not")
                elif archive.read(name) != files[name].read_bytes():
                    problems.append(f"{zip_path}: {name} differs from the folder's file")
            for name in sorted(set(files) - set(members)):
                problems.append(f"{zip_path}: lacks {name}")
    except zipfile.BadZipFile as exc:
        problems.append(f"{zip_path}: not a zip file ({exc})")
    return problems
