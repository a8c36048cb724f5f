"""The exported script: ``alg.py`` (classical) or ``network.py`` (learned), assembled from the harness's own
source by ``bench.codegen`` (the method's function or network, the inference helpers and
``bench.pipeline.script_main`` with everything they use), under a docstring that declares the method and
a tail that runs it with its parameters. ``script_declares`` reads that declaration back for verification.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path
from typing import Callable

from bench import codegen, pipeline
from bench.core.errors import BenchError
from bench.core.files import atomic_write_text
from bench.core.levels import LevelPolicy
from bench.export.choose import Choice
from methods.base import Method
from methods.registry import create_method

#: The docstring line where an exported script declares its method (written by ``_script_docstring``).
_METHOD_LINE = re.compile(r"^Method: (\S+) \((\w+)\), parameters:$", re.MULTILINE)
#: The literal each exported script runs its method with (written by ``_classical_tail``/``_learned_tail``).
_PARAMETERS_CONSTANT = {"alg.py": "PARAMETERS", "network.py": "INFERENCE"}
#: Names the generated tail of a script defines; a copied definition with one of these names is an error.
_SCRIPT_NAMES = ("LEVELS", "PARAMETERS", "INFERENCE", "DESCRIPTION", "denoise_image", "load_model", "main")
#: pip package of each import name that differs from it.
_PIP_NAMES = {"cv2": "opencv-python-headless", "skimage": "scikit-image"}


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


def script_source(method: Method, choice: Choice, levels: LevelPolicy | None = None) -> str:
    """The text of the self-contained ``alg.py`` (classical) or ``network.py`` (learned) for ``method``, which
    reads each input with the levels ``levels`` gives it (default: the competition's). Deterministic: the
    same method, parameters, choice and levels give the same text."""
    levels = levels or LevelPolicy()
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
    head = _script_docstring(method, choice, script, params, _requirements(code, imports), levels)
    constants = "\n".join(["#: Where each input's black and white levels come from (see LevelPolicy).",
                           f"LEVELS = {levels!r}", f"DESCRIPTION = {_describe(method, params)!r}"])
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


def _script_docstring(method: Method, choice: Choice, script: str, params: dict, requirements: list[str],
                      levels: LevelPolicy) -> str:
    if choice.run_dir is not None:
        chosen = (f"Chosen from: {_display_path(choice.run_dir)}, the highest mean Score there "
                  f"({choice.score:.2f}) among the methods `bench export --best` could consider.")
        regenerate = f"--best {_display_path(choice.run_dir)}" + (f" --kind {choice.kind}" if choice.kind else "")
    else:
        chosen = "Chosen by hand (`bench export --method`)."
        regenerate = f"--method {method.name} --params PARAMS.json"
    regenerate += _level_options(levels)
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
        "normalise each plane with its black level and the white level LEVELS gives the file, estimate the",
        "noise profile var = a*x + b from the image alone, denoise, clip to [0, 1], scale back to the same",
        "levels and truncate to uint16, and write the pixels into a byte-for-byte copy of the noisy file",
        "(its tags, levels included, kept).",
        f"Levels: {levels.describe()}.",
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


def _level_options(levels: LevelPolicy) -> str:
    """The ``bench export`` options that give ``levels`` (empty for the default, the competition's)."""
    default = LevelPolicy()
    options = f" --levels {levels.mode}" if levels.mode != default.mode else ""
    for name, value, usual in (("black", levels.black, default.black), ("white", levels.white, default.white)):
        if value is not None and (levels.mode == "file" or value != usual):
            options += f" --{name}-level {value}"
    return options


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
    return script_main(argv, denoise_image, LEVELS, DESCRIPTION)


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
        return network_denoise(model, packed, lambda: profile, cfa=cfa, **INFERENCE)

    return script_main(argv, denoise_image, LEVELS, DESCRIPTION)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


def write_script_only(choice: Choice, path: Path, levels: LevelPolicy | None = None) -> str:
    """Write just the exported script of ``choice`` (reading inputs with ``levels``, default the
    competition's) to ``path`` (e.g. the repository's ``alg.py``); returns which script it is ("alg.py" or
    "network.py")."""
    method = create_method(choice.name, choice.params)
    script = exportable(method)
    if Path(path).name != script:
        raise BenchError(f"{path}: method {method.name} exports as {script}; name the file so")
    atomic_write_text(path, script_source(method, choice, levels))
    return script


def script_declares(script_path: Path) -> tuple[str, str, dict, dict | None]:
    """The method name and kind an exported script declares (its docstring's ``Method: NAME (KIND),
    parameters:`` line), the parameters it runs with (its ``PARAMETERS`` or ``INFERENCE`` literal, the
    last assignment if several) and its levels (the keywords of its ``LEVELS = LevelPolicy(...)``, as
    ``LevelPolicy.as_dict`` gives them; None when it has no such literal); BenchError naming what is
    missing."""
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
    return match[1], match[2], params, _declared_levels(module)


def _declared_levels(module: ast.Module) -> dict | None:
    """The keyword literals of the script's last ``LEVELS = LevelPolicy(mode=..., black=..., white=...)``."""
    levels = None
    for node in module.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LEVELS" for t in node.targets)
                and isinstance(node.value, ast.Call) and not node.value.args):
            try:
                levels = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
            except ValueError:
                levels = None
    return levels
