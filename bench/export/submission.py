"""``bench export``: the submission of one method, written in the competition layout, zipped, and verified.

The DNGs are written by the harness itself through ``bench.pipeline``, the script by ``bench.export.script``,
the record by ``bench.export.record``; this module adds ``model.pth``, the method report
(``algorithm/README.md``) and ``result.zip``.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench import pipeline, provenance
from bench.core.errors import BenchError, first_line
from bench.core.files import atomic_write, file_sha256
from bench.core.levels import LevelPolicy
from bench.core.rawio import inspect_dng, read_dng_levels
from bench.export.choose import Choice
from bench.export.record import ExportRecord, ImageRecord, InputsRecord
from bench.export.script import exportable, script_source
from bench.export.verify import MAX_MODEL_BYTES, verify_submission
from methods.base import Method, NoisyRaw
from methods.registry import create_method


def write_model_file(method: Method, path: Path) -> int:
    """Save the learned ``method``'s network as ``model.pth`` (config + state_dict + model card); returns
    its size in bytes."""
    from methods.toolkit.checkpoint import Checkpoint

    card = Checkpoint.load(method.weights_path()).card
    Checkpoint.of(method.network, method.loaded_network(), card).save(path)
    return path.stat().st_size


@dataclass(frozen=True)
class ExportResult:
    result_dir: Path
    zip_path: Path
    script: str
    seconds: list[float]
    problems: list[str]


def export_submission(choice: Choice, data: Path, result_dir: Path, levels: LevelPolicy | None = None,
                      command: str = "", log: Callable[[str], None] = print) -> ExportResult:
    """Write the submission of ``choice`` for the noisy images of ``data`` (see ``pipeline.find_noisy_inputs``)
    into ``result_dir`` (which must not hold anything yet), each read with the levels ``levels`` gives it
    (default: the competition's) and written back in them, zip it, and verify it (``verify_submission``).
    Input problems raise BenchError before anything is written; an input normalised with other levels than
    its tags give is one warning line."""
    levels = levels or LevelPolicy()
    result_dir = Path(result_dir)
    zip_path = result_dir.parent / "result.zip"
    if result_dir.exists() and (not result_dir.is_dir() or any(result_dir.iterdir())):
        raise BenchError(f"{result_dir}: already exists and is not empty; choose another --out or remove it")
    if zip_path.exists():
        raise BenchError(f"{zip_path}: already exists; move it away or choose another --out")
    method = create_method(choice.name, choice.params)
    reason = type(method).unavailable_reason()
    if reason:
        raise BenchError(f"method {method.name} cannot run here: {reason}")
    script = exportable(method)
    inputs = pipeline.find_noisy_inputs(data)
    input_levels = {}
    for _, path in inputs:
        layout = inspect_dng(path)
        if not layout.is_contiguous_uncompressed_16bit:
            raise BenchError(f"{path}: the byte splice needs an uncompressed contiguous 16-bit DNG")
        input_levels[path], tags = read_dng_levels(path, levels)
        note = levels.tag_note(path, input_levels[path], *tags)
        if note:
            log(f"warning: {note}")
    source = script_source(method, choice, levels)

    models = result_dir / "algorithm" / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / script).write_text(source)
    model_bytes = None
    if script == "network.py":
        model_bytes = write_model_file(method, models / "model.pth")
        if model_bytes > MAX_MODEL_BYTES:
            raise BenchError(f"{models / 'model.pth'}: {model_bytes} bytes, over the {MAX_MODEL_BYTES}-byte limit")

    def denoise_image(packed: np.ndarray, profile, cfa: str) -> np.ndarray:
        return method.denoise(NoisyRaw(packed[None], cfa, lambda: profile, image_id="export"))

    seconds = []
    files = []
    for position, (image_id, path) in enumerate(inputs, start=1):
        out = result_dir / "data" / pipeline.output_name(image_id)
        try:
            seconds.append(pipeline.denoise_file(path, out, denoise_image, levels))
        except BenchError:
            raise
        except Exception as exc:  # the method's fault: one line, and the half-written folder stays to look at
            raise BenchError(f"{path}: {method.name} failed on it ({first_line(exc)}); "
                             f"{result_dir} is incomplete and has no result.zip") from None
        log(f"[{position}/{len(inputs)}] {path.name} -> data/{out.name}  {seconds[-1]:.1f} s")
        used = input_levels[path]
        files.append(ImageRecord(image_id, path.name, file_sha256(path), out.name, file_sha256(out),
                                 list(used.black), used.white))
    record = ExportRecord(
        created=dt.datetime.now().isoformat(timespec="seconds"),
        method=method.name, kind=method.kind, params=method.param_values(), script=script,
        script_sha256=file_sha256(models / script),
        model_sha256=file_sha256(models / "model.pth") if script == "network.py" else None,
        chosen_from=str(choice.run_dir) if choice.run_dir else None, chosen_score=choice.score,
        levels=levels.mode, black_level=levels.black, white_level=levels.white,
        inputs=InputsRecord(str(Path(inputs[0][1]).parent.resolve()), files),
        seconds_per_image=seconds, model_bytes=model_bytes,
        command=command, versions=provenance.package_versions(), git_commit=provenance.git_commit(),
    )
    record.write(result_dir)
    (result_dir / "algorithm" / "README.md").write_text(_report(method, choice, record))
    write_zip(result_dir, zip_path)
    log(f"wrote {result_dir} and {zip_path}; verifying in a fresh process")
    problems = verify_submission(result_dir, log=log)
    return ExportResult(result_dir, zip_path, script, seconds, problems)


def _report(method: Method, choice: Choice, record: ExportRecord) -> str:
    params = record.params
    seconds = record.seconds_per_image
    versions = record.versions
    lines = [
        f"# {method.name}: {type(method).describe()}",
        "",
        "## Method",
        "",
        f"- kind: {method.kind}; submission file{'s' if record.script == 'network.py' else ''}: "
        + ("`models/network.py` + `models/model.pth` "
           f"({record.model_bytes / 1e6:.2f} MB)" if record.script == "network.py" else "`models/alg.py`"),
        "- parameters:",
        *(f"  - `{k}` = `{v!r}`" for k, v in params.items()),
        "- noise: the profile (a, b) is estimated from each noisy image alone (blind), as on the test set",
        f"- normalisation: {record.level_policy().describe()}; output written back in each file's levels, "
        "truncated to uint16 and spliced into a copy of each noisy DNG (its tags kept)",
        "",
        "## How it was chosen",
        "",
    ]
    if choice.run_dir is not None:
        lines += [f"Highest mean Score ({choice.score:.2f}) in `{choice.run_dir}` among the methods that "
                  "could be exported and scored every image. That run's table:", "", _demote(choice.table), ""]
        if choice.noise_mode == "oracle":
            lines += ["Note: that run gave the methods the true noise profile (`--noise oracle`); this submission "
                      "estimates it from each image, so expect somewhat lower scores than the table's.", ""]
    else:
        lines += ["Named by hand (`--method`); no benchmark run was given.", ""]
    model_card = ""
    if record.script == "network.py":
        card_file = method.weights_path().with_suffix(".md")
        model_card = card_file.read_text() if card_file.is_file() else ""
    if model_card:
        lines += ["## Model card", "", _demote(model_card), ""]
    lines += [
        "## This export",
        "",
        f"- inputs: {len(record.inputs.files)} images from `{record.inputs.folder}` "
        "(SHA-256 of each in `export.json`)",
        f"- time: {np.mean(seconds):.1f} s per image on average (whole file: read, noise estimate, denoise, "
        f"write), {sum(seconds):.1f} s in all",
        f"- created {record.created} by `{record.command or 'bench export'}`",
        f"- code: {record.git_commit or 'not a git checkout'}",
        "",
        "## Environment",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, {_device_line()}",
        *(f"- {name}: {version}" for name, version in versions.items()),
        "",
        "## How to reproduce",
        "",
        "- the whole export: " + (f"`{record.command}`" if record.command else "`python -m bench export ...`"),
        f"- the outputs alone, without raw-bench: `python models/{record.script} INPUT_DIR OUTPUT_DIR`",
        "- check this folder: `python -m bench verify RESULT_DIR` (re-runs the script in a fresh process and "
        "requires byte-identical DNGs)",
        "",
    ]
    return "\n".join(lines)


def _demote(markdown: str) -> str:
    """``markdown`` with every heading two levels lower, to sit under the report's own ``##`` headings."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.strip().splitlines())


def _device_line() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return "no GPU"


def write_zip(result_dir: Path, zip_path: Path) -> None:
    """Zip every file of ``result_dir`` under the top folder ``result/`` (atomically: a temporary file
    renamed into place)."""
    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in result_dir.rglob("*") if p.is_file()):
                archive.write(path, "result/" + path.relative_to(result_dir).as_posix())

    atomic_write(zip_path, write)
