"""The three layers of ARCHITECTURE.md hold: the raw core (``bench/core``) imports nothing of the rest of
``bench`` nor ``methods``; the methods and their toolkit import only the core; the harness (the rest of
``bench``) may import both. No import cycle between modules. Read from the source with ``ast``, imports
inside functions included."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def own_modules() -> dict[str, Path]:
    return {module_name(p): p for package in ("bench", "methods") for p in sorted((REPO / package).rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a.b import c`` counts as a.b.c when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name in known:
                found.add(name)
    return found


def layer(module: str) -> str:
    if module == "bench.core" or module.startswith("bench.core."):
        return "core"
    if module == "methods" or module.startswith("methods."):
        return "methods"
    return "harness"


ALLOWED = {"core": {"core"}, "methods": {"core", "methods"}, "harness": {"core", "methods", "harness"}}


def graph() -> dict[str, set[str]]:
    modules = own_modules()
    known = set(modules)
    edges = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path, known) if m != name and not name.startswith(m + ".")}
        # a package's __init__ is imported with its modules; it must not be a hidden edge back up
    return edges


def test_each_layer_imports_only_the_layers_below_it():
    wrong = [f"{module} ({layer(module)}) imports {target} ({layer(target)})"
             for module, targets in graph().items() for target in sorted(targets)
             if layer(target) not in ALLOWED[layer(module)]]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target):] + [target]) if target in stack else target)
            elif target not in state:
                visit(target, stack + [target])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("command", [["list"], ["list", "bm3d"]])
def test_listing_methods_imports_no_heavy_package(command):
    code = ("import sys\nfrom bench.cli import main\nmain(%r)\n"
            "heavy = sorted(m for m in ('scipy', 'torch', 'bm3d', 'cv2', 'pandas', 'skimage', 'matplotlib') "
            "if m in sys.modules)\nprint('HEAVY', heavy)\n") % command
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout[-500:]


def test_no_source_file_over_600_lines():
    """Short modules, one concern each. The generated root alg.py (a copy of the harness's own code, tested
    equal to a fresh export) is the one exception."""
    long = [f"{path.relative_to(REPO)}: {n} lines" for path in own_modules().values()
            if (n := len(path.read_text().splitlines())) > 600]
    assert not long, "\n".join(long)
