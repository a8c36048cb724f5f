"""``bench export`` and ``bench verify``: a competition submission made from one method, and checked.

Layout written (DESIGN.md section 1)::

    RESULT_DIR/data/denoise{i}.dng            one per input noisy{i}.dng, spliced into a copy of it
    RESULT_DIR/algorithm/models/alg.py        classical method: self-contained script
    RESULT_DIR/algorithm/models/network.py    learned method: network + inference, self-contained
    RESULT_DIR/algorithm/models/model.pth     learned method: its weights (at most 50 MB)
    RESULT_DIR/algorithm/README.md            method report
    RESULT_DIR/algorithm/export.json          what verification needs: inputs and their hashes, method
    RESULT_DIR/../result.zip                  all of it under a top folder result/

The scripts are assembled from the harness's own source (``bench.codegen``), and the DNGs are written by
the harness itself through ``bench.pipeline``; verification then runs the exported script alone, in a
fresh process that cannot import ``bench`` or ``methods``, in a temporary folder holding only copies of
``algorithm/models/`` and of the inputs, and requires byte-identical files. That re-run executes the
submission's code with the user's rights: verify only submissions you made or trust.
"""

from __future__ import annotations

import ast
import datetime as dt
import inspect
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from bench import codegen, pipeline, provenance
from bench.core.errors import BenchError, first_line
from bench.core.files import atomic_write, file_sha256
from bench.run_record import RunRecord
from bench.core.rawio import COMPETITION_BLACK_LEVEL, COMPETITION_WHITE_LEVEL, inspect_dng, read_dng
from methods.base import Method, NoisyRaw
from methods.registry import create_method

#: The competition's limit on model.pth, read strictly as 50 000 000 bytes (so that neither reading of
#: "50 MB" lets an oversized file through).
MAX_MODEL_BYTES = 50_000_000
MANIFEST_FORMAT = "raw-bench-export-1"
EXPORTABLE_KINDS = ("classical", "learned")
_OUTPUT_NAME = re.compile(r"^denoise(\d+)\.dng$")
#: The docstring line where an exported script declares its method (written by ``_script_docstring``).
_METHOD_LINE = re.compile(r"^Method: (\S+) \((\w+)\), parameters:$", re.MULTILINE)
#: The literal each exported script runs its method with (written by ``_classical_tail``/``_learned_tail``).
_PARAMETERS_CONSTANT = {"alg.py": "PARAMETERS", "network.py": "INFERENCE"}
#: The files of a submission besides data/denoise{i}.dng and algorithm/models/ (relative to RESULT_DIR).
_RECORD_FILES = (Path("algorithm/README.md"), Path("algorithm/export.json"))
#: Names the generated tail of a script defines; a copied definition with one of these names is an error.
_SCRIPT_NAMES = ("BLACK_LEVEL", "WHITE_LEVEL", "PARAMETERS", "INFERENCE", "DESCRIPTION", "denoise_image",
                 "load_model", "main")
#: pip package of each import name that differs from it.
_PIP_NAMES = {"cv2": "opencv-python-headless", "skimage": "scikit-image"}


@dataclass(frozen=True)
class Choice:
    """The method to export and where it was chosen.

    name, params: registered method and parameter values (others keep their defaults).
    run_dir: the scored run it was picked from (``--best``), or None when named by hand.
    score: its mean Score in that run. table: that run's summary table (Markdown).
    kind: the kind the choice was narrowed to (``--kind``), if any.
    noise_mode: the noise mode of that run ("estimate" or "oracle").
    """

    name: str
    params: dict
    run_dir: Path | None = None
    score: float | None = None
    table: str = ""
    kind: str | None = None
    noise_mode: str = "estimate"


def best_in_run(run_dir: Path, kind: str | None = None) -> Choice:
    """The exportable method with the highest mean Score in the run folder ``run_dir`` (``bench run``'s
    output), with the parameters it ran with. Methods with any failed image are passed over (a submission
    must denoise every image); ``kind`` ("classical" or "learned") narrows the choice."""
    run_dir = Path(run_dir)
    record = RunRecord.read(run_dir)
    try:
        summary = pd.read_csv(run_dir / "summary.csv")
    except OSError as exc:
        raise BenchError(f"{run_dir}: not a finished run folder ({exc.strerror}: {Path(exc.filename).name})") from None
    except pd.errors.ParserError as exc:
        raise BenchError(f"{run_dir}: summary.csv is damaged ({exc})") from None
    kinds = (kind,) if kind else EXPORTABLE_KINDS
    candidates = []
    for row in summary.itertuples():
        method = record.methods.get(row.method)
        if method and method.kind in kinds and row.failures == 0 and row.images > 0 and not math.isnan(row.score):
            candidates.append((row.score, row.method, method.params))
    if not candidates:
        wanted = f"{kind} " if kind else "classical or learned "
        raise BenchError(f"{run_dir}: no {wanted}method scored every image in this run")
    score, name, params = max(candidates, key=lambda c: c[0])
    table_file = run_dir / "summary.md"
    table = table_file.read_text() if table_file.is_file() else summary.to_string(index=False)
    return Choice(name, dict(params), run_dir, float(score), table, kind, record.noise)


def exportable(method: Method) -> str:
    """The script file ``method`` exports as ("alg.py" or "network.py"); BenchError saying why when it
    cannot be exported."""
    if method.kind == "learned":
        return "network.py"
    if method.kind == "classical" and type(method).packed_function is not None:
        return "alg.py"
    if method.kind == "burst":
        raise BenchError(f"method {method.name} needs bursts, and a competition test set has one frame per image")
    raise BenchError(f"method {method.name} ({method.kind}) cannot be exported: only classical methods with a "
                     "packed_function and learned methods can")


def script_source(method: Method, choice: Choice, black_level: int = COMPETITION_BLACK_LEVEL,
                  white_level: int = COMPETITION_WHITE_LEVEL) -> str:
    """The text of the self-contained ``alg.py`` (classical) or ``network.py`` (learned) for ``method``.
    Deterministic: the same method, parameters and choice give the same text."""
    script = exportable(method)
    params = method.param_values()
    entries = [pipeline.script_main]
    if script == "alg.py":
        function = type(method).packed_function
        _check_signature(method, function)
        entries.insert(0, function)
        tail = _classical_tail(function.__name__, params)
    else:
        from methods.toolkit.learned import load_model_file, network_class, network_denoise

        net_cls = network_class(method.network)
        entries = [net_cls, load_model_file, network_denoise] + entries
        inference = {k: v for k, v in params.items() if k != "weights"}
        tail = _learned_tail(net_cls.__name__, inference)
    code = codegen.assemble(entries)
    clash = sorted(set(_SCRIPT_NAMES) & set(_defined_names(code)))
    if clash:
        raise BenchError(f"cannot export {method.name}: copied code defines {clash[0]!r}, a name the script uses")
    imports = sorted(set(code.imports) | {"import sys", "from pathlib import Path"}, key=codegen.import_sort_key)
    head = _script_docstring(method, choice, script, params, _requirements(code, imports))
    constants = "\n".join([f"BLACK_LEVEL = {int(black_level)}", f"WHITE_LEVEL = {int(white_level)}",
                           f"DESCRIPTION = {_describe(method, params)!r}"])
    body = codegen.AssembledCode(imports, code.blocks).text()
    return "\n".join([head, "from __future__ import annotations", "", body, "",
                      "# ---- this submission", constants, "", tail])


def _check_signature(method: Method, function: Callable) -> None:
    names = list(inspect.signature(function).parameters)[2:]
    if sorted(names) != sorted(method.param_values()):
        raise BenchError(f"{method.name}: {function.__name__} takes {names}, but the method's parameters are "
                         f"{list(method.param_values())}")


def _defined_names(code: codegen.AssembledCode) -> list[str]:
    names = []
    for _, block in code.blocks:
        for node in ast.parse(block).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def _describe(method: Method, params: dict) -> str:
    settings = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{method.name} ({settings}): {type(method).describe()}"


def _requirements(code: codegen.AssembledCode, imports: list[str]) -> list[str]:
    """pip names of the third-party packages the script imports, at module level or inside functions."""
    modules = {line.split()[1].split(".")[0] for line in imports}
    for _, block in code.blocks:
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules.add(node.module.split(".")[0])
    third_party = sorted(m for m in modules if m not in sys.stdlib_module_names and m != "__future__")
    return [_PIP_NAMES.get(m, m) for m in third_party]


def _script_docstring(method: Method, choice: Choice, script: str, params: dict, requirements: list[str]) -> str:
    if choice.run_dir is not None:
        chosen = (f"Chosen from: {_display_path(choice.run_dir)}, the highest mean Score there "
                  f"({choice.score:.2f}) among the methods `bench export --best` could consider.")
        regenerate = f"--best {_display_path(choice.run_dir)}" + (f" --kind {choice.kind}" if choice.kind else "")
    else:
        chosen = "Chosen by hand (`bench export --method`)."
        regenerate = f"--method {method.name} --params PARAMS.json"
    settings = "\n".join(f"    {k} = {v!r}" for k, v in params.items()) or "    (none)"
    if script == "alg.py":
        usage = ["Usage:  python alg.py INPUT_DIR OUTPUT_DIR",
                 "",
                 "Denoises every INPUT_DIR/noisy{i}.dng (or {i}_noise.dng) into OUTPUT_DIR/denoise{i}.dng.",
                 "From Python: `denoise_image(packed, profile, cfa)` is the method itself."]
    else:
        usage = ["Usage:  python network.py INPUT_DIR OUTPUT_DIR      (model.pth beside this file)",
                 "",
                 "Denoises every INPUT_DIR/noisy{i}.dng (or {i}_noise.dng) into OUTPUT_DIR/denoise{i}.dng.",
                 "",
                 "Loading model.pth: `model = load_model('model.pth')` returns the network in eval mode on the",
                 "CPU (model.pth is a torch.save dictionary: 'config', the constructor arguments, and",
                 "'state_dict'; it loads with torch.load(path, weights_only=True)). The network maps a",
                 "(B, 8, H, W) float32 tensor, the 4 packed planes in [0, 1] then 4 planes of noise std",
                 "sqrt(a*x + b) (just the 4 planes when config['noise_map'] is false), to the (B, 4, H, W)",
                 "denoised planes; H and W must be multiples of model.size_multiple(). `network_denoise`",
                 "does the noise map, padding and tiling."]
    lines = [
        f'"""{method.name}: {type(method).describe()}',
        "",
        "A self-contained competition submission written by raw-bench's `bench export`.",
        "",
        *usage,
        "",
        "What it does to each image: read the mosaic (rawpy), pack the 2x2 Bayer phases into 4 planes,",
        "normalise with BLACK_LEVEL / WHITE_LEVEL, estimate the noise profile var = a*x + b from the image",
        "alone, denoise, clip to [0, 1], scale back and truncate to uint16, and write the pixels into a",
        "byte-for-byte copy of the noisy file.",
        "",
        f"Method: {method.name} ({method.kind}), parameters:",
        settings,
        chosen,
        "",
        f"Needs: {', '.join(requirements)}.",
        "",
        "Generated from raw-bench's own source (bench/codegen.py copies the functions the benchmark ran,",
        "unchanged, grouped by the file they come from); do not edit. Regenerate with",
        f"    python -m bench export {regenerate} --script {script}",
        '"""',
    ]
    return "\n".join(lines)


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies inside it (stable across checkouts)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def _classical_tail(function: str, params: dict) -> str:
    settings = ", ".join(f"{k!r}: {v!r}" for k, v in params.items())
    return f'''PARAMETERS = {{{settings}}}


def denoise_image(packed: np.ndarray, profile: NoiseProfile, cfa: str) -> np.ndarray:
    """``(h, w, 4)`` float32 normalised noisy image in [0, 1], its noise profile and the colour of each plane
    -> the denoised ``(h, w, 4)`` float32 in [0, 1]."""
    return {function}(packed, profile, **PARAMETERS)


def main(argv: list[str]) -> int:
    return script_main(argv, denoise_image, BLACK_LEVEL, WHITE_LEVEL, DESCRIPTION)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def _learned_tail(network: str, inference: dict) -> str:
    settings = ", ".join(f"{k!r}: {v!r}" for k, v in inference.items())
    return f'''#: Inference settings of the exported method (see ``network_denoise``).
INFERENCE = {{{settings}}}


def load_model(path: str | Path = Path(__file__).with_name("model.pth")) -> {network}:
    """The network with the weights of ``path`` (default: model.pth beside this file), in eval mode on the
    CPU."""
    return load_model_file(Path(path), {network})


def main(argv: list[str]) -> int:
    model = load_model()

    def denoise_image(packed: np.ndarray, profile: NoiseProfile, cfa: str) -> np.ndarray:
        """``(h, w, 4)`` float32 normalised noisy image in [0, 1], its noise profile and the colour of each
        plane -> the denoised ``(h, w, 4)`` float32 in [0, 1]."""
        return network_denoise(model, packed, lambda: profile, **INFERENCE)

    return script_main(argv, denoise_image, BLACK_LEVEL, WHITE_LEVEL, DESCRIPTION)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def write_model_file(method: Method, path: Path) -> int:
    """Save the learned ``method``'s network as ``model.pth`` (config + state_dict + model card); returns
    its size in bytes."""
    import torch

    from methods.toolkit.learned import CHECKPOINT_FORMAT, load_checkpoint

    net = method.loaded_network()
    card = load_checkpoint(method.weights_path()).get("card", {})
    torch.save({"format": CHECKPOINT_FORMAT, "network": method.network, "config": net.config,
                "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
                "card": card}, path)
    return path.stat().st_size


@dataclass(frozen=True)
class ExportResult:
    result_dir: Path
    zip_path: Path
    script: str
    seconds: list[float]
    problems: list[str]


def export_submission(choice: Choice, data: Path, result_dir: Path, black_level: int = COMPETITION_BLACK_LEVEL,
                      white_level: int = COMPETITION_WHITE_LEVEL, command: str = "",
                      log: Callable[[str], None] = print) -> ExportResult:
    """Write the submission of ``choice`` for the noisy images of ``data`` (see ``pipeline.find_noisy_inputs``)
    into ``result_dir`` (which must not hold anything yet), zip it, and verify it (``verify_submission``).
    Input problems raise BenchError before anything is written."""
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
    for _, path in inputs:
        layout = inspect_dng(path)
        if not layout.is_contiguous_uncompressed_16bit:
            raise BenchError(f"{path}: the byte splice needs an uncompressed contiguous 16-bit DNG")
    source = script_source(method, choice, black_level, white_level)

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
            seconds.append(pipeline.denoise_file(path, out, denoise_image, black_level, white_level))
        except BenchError:
            raise
        except Exception as exc:  # the method's fault: one line, and the half-written folder stays to look at
            raise BenchError(f"{path}: {method.name} failed on it ({first_line(exc)}); "
                             f"{result_dir} is incomplete and has no result.zip") from None
        log(f"[{position}/{len(inputs)}] {path.name} -> data/{out.name}  {seconds[-1]:.1f} s")
        files.append({"id": image_id, "input": path.name, "input_sha256": file_sha256(path), "output": out.name,
                      "output_sha256": file_sha256(out)})
    manifest = {
        "format": MANIFEST_FORMAT,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "method": method.name, "kind": method.kind, "params": method.param_values(), "script": script,
        "script_sha256": file_sha256(models / script),
        "model_sha256": file_sha256(models / "model.pth") if script == "network.py" else None,
        "chosen_from": str(choice.run_dir) if choice.run_dir else None, "chosen_score": choice.score,
        "black_level": black_level, "white_level": white_level,
        "inputs": {"folder": str(Path(inputs[0][1]).parent.resolve()), "files": files},
        "seconds_per_image": seconds, "model_bytes": model_bytes,
        "command": command, "versions": provenance.package_versions(), "git_commit": provenance.git_commit(),
    }
    (result_dir / "algorithm" / "export.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (result_dir / "algorithm" / "README.md").write_text(_report(method, choice, manifest))
    write_zip(result_dir, zip_path)
    log(f"wrote {result_dir} and {zip_path}; verifying in a fresh process")
    problems = verify_submission(result_dir, log=log)
    return ExportResult(result_dir, zip_path, script, seconds, problems)


def _report(method: Method, choice: Choice, manifest: dict) -> str:
    params = manifest["params"]
    seconds = manifest["seconds_per_image"]
    versions = manifest["versions"]
    lines = [
        f"# {method.name}: {type(method).describe()}",
        "",
        "## Method",
        "",
        f"- kind: {method.kind}; submission file{'s' if manifest['script'] == 'network.py' else ''}: "
        + ("`models/network.py` + `models/model.pth` "
           f"({manifest['model_bytes'] / 1e6:.2f} MB)" if manifest["script"] == "network.py" else "`models/alg.py`"),
        "- parameters:",
        *(f"  - `{k}` = `{v!r}`" for k, v in params.items()),
        "- noise: the profile (a, b) is estimated from each noisy image alone (blind), as on the test set",
        f"- normalisation: black level {manifest['black_level']}, white level {manifest['white_level']}; "
        "output truncated to uint16 and spliced into a copy of each noisy DNG",
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
    if manifest["script"] == "network.py":
        card_file = method.weights_path().with_suffix(".md")
        model_card = card_file.read_text() if card_file.is_file() else ""
    if model_card:
        lines += ["## Model card", "", _demote(model_card), ""]
    lines += [
        "## This export",
        "",
        f"- inputs: {len(manifest['inputs']['files'])} images from `{manifest['inputs']['folder']}` "
        "(SHA-256 of each in `export.json`)",
        f"- time: {np.mean(seconds):.1f} s per image on average (whole file: read, noise estimate, denoise, "
        f"write), {sum(seconds):.1f} s in all",
        f"- created {manifest['created']} by `{manifest['command'] or 'bench export'}`",
        f"- code: {manifest['git_commit'] or 'not a git checkout'}",
        "",
        "## Environment",
        "",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, {_device_line()}",
        *(f"- {name}: {version}" for name, version in versions.items()),
        "",
        "## How to reproduce",
        "",
        "- the whole export: " + (f"`{manifest['command']}`" if manifest["command"] else "`python -m bench export ...`"),
        f"- the outputs alone, without raw-bench: `python models/{manifest['script']} INPUT_DIR OUTPUT_DIR`",
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


def verify_submission(result_dir: Path, data: Path | None = None,
                      log: Callable[[str], None] = print) -> list[str]:
    """Check a submission folder; returns the problems found (empty: it is good).

    Checked: the layout and file names (``data/denoise{i}.dng``; ``algorithm/models/`` holding exactly
    ``alg.py`` or ``network.py`` + ``model.pth``; ``algorithm/README.md``; ``algorithm/export.json``; no other
    file), model.pth within 50 MB, export.json against the submission (the method, kind and parameters the
    script declares; the SHA-256 of the script, model.pth and every output), one output per input and none
    without an input, every output a DNG of its input's size with values within [black, white], the inputs
    unchanged since the export (SHA-256), then the script re-run alone on copies of the inputs (``data``,
    default: the folder recorded at export) must write byte-identical files, and ``result.zip`` beside the
    folder must hold exactly the folder under ``result/``.

    The re-run executes the submission's code with the caller's rights: verify only submissions you made or
    trust.
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        return [f"{result_dir}: submission folder not found"]
    problems: list[str] = []
    manifest_path = result_dir / "algorithm" / "export.json"
    manifest: dict = {}
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        problems.append(f"{manifest_path}: cannot read the export record ({exc})")
    if not isinstance(manifest, dict):
        problems.append(f"{manifest_path}: not a JSON object")
        manifest = {}
    black = int(manifest.get("black_level", COMPETITION_BLACK_LEVEL))
    white = int(manifest.get("white_level", COMPETITION_WHITE_LEVEL))

    script = _check_models(result_dir, problems)
    if not (result_dir / "algorithm" / "README.md").is_file():
        problems.append(f"{result_dir / 'algorithm' / 'README.md'}: method report missing")
    _check_stray_files(result_dir, problems)
    if manifest and script is not None:
        _check_record_against_script(manifest_path, manifest, result_dir / "algorithm" / "models" / script,
                                     problems)
    if manifest:
        _check_recorded_outputs(result_dir, manifest, problems)

    inputs: list[tuple[str, Path]] = []
    folder = Path(data) if data is not None else Path(manifest.get("inputs", {}).get("folder", ""))
    if data is None and not manifest.get("inputs"):
        problems.append("no input folder known: pass --data TEST_DIR")
    else:
        try:
            inputs = pipeline.find_noisy_inputs(folder)
        except BenchError as exc:
            problems.append(str(exc))
    recorded = {f["input"]: f.get("input_sha256") for f in _recorded_files(manifest) if "input" in f}
    for _, path in inputs:
        if path.name in recorded and file_sha256(path) != recorded[path.name]:
            problems.append(f"{path}: changed since the export (SHA-256 differs from export.json)")
    _check_outputs(result_dir, inputs, black, white, problems)

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


def _recorded_files(manifest: dict) -> list[dict]:
    """export.json's per-image records (input, output and their SHA-256); [] when it has none."""
    inputs = manifest.get("inputs")
    files = inputs.get("files") if isinstance(inputs, dict) else None
    return [f for f in files if isinstance(f, dict)] if isinstance(files, list) else []


def _check_record_against_script(manifest_path: Path, manifest: dict, script_path: Path,
                                 problems: list[str]) -> None:
    """export.json must name the submission's script, record the SHA-256 of it (and of model.pth beside a
    network.py), and give the method, kind and parameters the script declares and runs with."""
    script = script_path.name
    if manifest.get("script") != script:
        problems.append(f"{manifest_path}: script is {_recorded_value(manifest, 'script')}, but the submission's "
                        f"is {script!r}")
    hashed = [("script_sha256", script_path)]
    if script == "network.py":
        hashed.append(("model_sha256", script_path.with_name("model.pth")))
    for field, path in hashed:
        if not path.is_file():
            continue  # reported by _check_models
        if field not in manifest:
            problems.append(f"{manifest_path}: no {field} recorded (written by an older bench export; export again)")
        elif file_sha256(path) != manifest[field]:
            problems.append(f"{path}: SHA-256 differs from export.json's {field}")
    try:
        name, kind, params = _script_declares(script_path)
    except BenchError as exc:
        problems.append(str(exc))
        return
    for field, declared in (("method", name), ("kind", kind)):
        if manifest.get(field) != declared:
            problems.append(f"{manifest_path}: {field} is {_recorded_value(manifest, field)}, but {script} "
                            f"declares {declared!r}")
    recorded_params = manifest.get("params")
    if not isinstance(recorded_params, dict):
        problems.append(f"{manifest_path}: params is {_recorded_value(manifest, 'params')}, not an object")
        return
    if script == "network.py":  # the weights are model.pth, checked by its SHA-256
        recorded_params = {k: v for k, v in recorded_params.items() if k != "weights"}
    runs_with = json.loads(json.dumps(params, default=repr))  # as export.json would hold it (tuples as lists)
    for key in sorted(set(recorded_params) | set(runs_with)):
        if key not in recorded_params or key not in runs_with or recorded_params[key] != runs_with[key]:
            problems.append(f"{manifest_path}: params[{key!r}] is {_recorded_value(recorded_params, key)}, but "
                            f"{script} runs with {_recorded_value(runs_with, key)}")


def _recorded_value(record: dict, key: str) -> str:
    return repr(record[key]) if key in record else "absent"


def _script_declares(script_path: Path) -> tuple[str, str, dict]:
    """The method name and kind an exported script declares (its docstring's ``Method: NAME (KIND),
    parameters:`` line) and the parameters it runs with (its ``PARAMETERS`` or ``INFERENCE`` literal, the
    last assignment if several); BenchError naming what is missing."""
    try:
        module = ast.parse(script_path.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise BenchError(f"{script_path}: cannot be read as Python ({exc})") from None
    match = _METHOD_LINE.search(ast.get_docstring(module) or "")
    if not match:
        raise BenchError(f"{script_path}: declares no method (its docstring has no "
                         "'Method: NAME (KIND), parameters:' line)")
    constant = _PARAMETERS_CONSTANT[script_path.name]
    params = None
    for node in module.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == constant for t in node.targets):
            try:
                params = ast.literal_eval(node.value)
            except ValueError:
                params = None
    if not isinstance(params, dict):
        raise BenchError(f"{script_path}: declares no parameters (no {constant} = {{...}} literal at module level)")
    return match[1], match[2], params


def _check_recorded_outputs(result_dir: Path, manifest: dict, problems: list[str]) -> None:
    """Every ``data/denoise{i}.dng`` must have the SHA-256 export.json recorded for it."""
    recorded = {f.get("output"): f.get("output_sha256") for f in _recorded_files(manifest)}
    data_dir = result_dir / "data"
    if not data_dir.is_dir():
        return  # reported by _check_outputs
    for path in sorted(data_dir.iterdir()):
        if not _OUTPUT_NAME.match(path.name) or not path.is_file():
            continue  # reported by _check_outputs
        if recorded.get(path.name) is None:
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


def _check_outputs(result_dir: Path, inputs: list[tuple[str, Path]], black: int, white: int,
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
            mosaic = read_dng(out, black, white).mosaic
            reference = inspect_dng(noisy)
        except BenchError as exc:
            problems.append(str(exc))
            continue
        if mosaic.shape != (reference.height, reference.width):
            problems.append(f"{out}: {mosaic.shape[0]}x{mosaic.shape[1]}, but {noisy.name} is "
                            f"{reference.height}x{reference.width}")
        low, high = int(mosaic.min()), int(mosaic.max())
        if low < black or high > white:
            problems.append(f"{out}: values {low}..{high} outside [{black}, {white}]")


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


def write_script_only(choice: Choice, path: Path, black_level: int = COMPETITION_BLACK_LEVEL,
                      white_level: int = COMPETITION_WHITE_LEVEL) -> str:
    """Write just the exported script of ``choice`` to ``path`` (e.g. the repository's ``alg.py``); returns
    which script it is ("alg.py" or "network.py")."""
    method = create_method(choice.name, choice.params)
    script = exportable(method)
    if Path(path).name != script:
        raise BenchError(f"{path}: method {method.name} exports as {script}; name the file so")
    Path(path).write_text(script_source(method, choice, black_level, white_level))
    return script

