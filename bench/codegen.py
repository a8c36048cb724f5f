"""Assemble a self-contained Python script from the suite's own source code.

``bench export`` must hand over a submission that runs without ``bench`` or ``methods`` installed, yet does
exactly what the benchmarked method did. Rather than keep a second, hand-written copy of every algorithm
(which would drift), the script is built from the very source of the functions the harness runs:

* start from a few *entry* objects (module-level functions, classes or constants of ``bench`` / ``methods``);
* read each one's definition from its module's source (``ast``), with the comment lines just above it;
* follow every global name it uses, annotations included: a definition in one of our modules is copied
  too, recursively; a name imported from a third-party or standard module becomes an import line; a
  builtin is left alone;
* write the imports, then the definitions, each before its first user.

Refused, with the offending place named (``CodegenError``): an import of ``bench``/``methods`` inside a
copied function body, a name imported under an alias from our own modules, and two different definitions
with the same name (which would silently shadow each other in one file).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: Top-level packages whose code is copied rather than imported.
OWN_PACKAGES = ("bench", "methods")


class CodegenError(Exception):
    """The requested code cannot be made self-contained (see the module docstring)."""


@dataclass(frozen=True)
class _ModuleSource:
    """The parsed source of one of our modules: its lines, top-level definitions and imports."""

    name: str
    path: Path
    lines: list[str]
    definitions: dict[str, ast.stmt]
    #: local name -> (module, attribute or None for ``import module as name``)
    imports: dict[str, tuple[str, str | None]]


def _is_own(module: str) -> bool:
    return module.split(".")[0] in OWN_PACKAGES


@cache
def _module_source(module_name: str) -> _ModuleSource:
    module = importlib.import_module(module_name)
    path = Path(inspect.getsourcefile(module))
    text = path.read_text()
    tree = ast.parse(text, filename=str(path))
    definitions: dict[str, ast.stmt] = {}
    imports: dict[str, tuple[str, str | None]] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            definitions[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    definitions[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            definitions[node.target.id] = node
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    imports[alias.asname] = (alias.name, None)
                else:  # "import a.b" binds "a"
                    top = alias.name.split(".")[0]
                    imports[top] = (top, None)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                raise CodegenError(f"{path}:{node.lineno}: relative imports are not supported")
            for alias in node.names:
                imports[alias.asname or alias.name] = (node.module, alias.name)
    return _ModuleSource(module_name, path, text.splitlines(), definitions, imports)


def _used_names(node: ast.AST) -> set[str]:
    """Names read anywhere inside ``node``: bodies, defaults, decorators, base classes and annotations (the
    copied annotations should name something a reader can find in the script)."""
    return {inner.id for inner in ast.walk(node) if isinstance(inner, ast.Name)}


def _check_no_own_imports(module: _ModuleSource, node: ast.stmt) -> None:
    for inner in ast.walk(node):
        imported = []
        if isinstance(inner, ast.Import):
            imported = [alias.name for alias in inner.names]
        elif isinstance(inner, ast.ImportFrom):
            imported = [inner.module or ""]
        for name in imported:
            if _is_own(name):
                raise CodegenError(f"{module.path}:{inner.lineno}: imports {name} inside the code to be copied; "
                                   "import it at module level instead")


def _definition_text(module: _ModuleSource, node: ast.stmt) -> str:
    """The source lines of ``node`` (with its decorators and the comment lines right above it)."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    while first > 0 and module.lines[first - 1].lstrip().startswith("#"):
        first -= 1
    return "\n".join(module.lines[first:node.end_lineno])


def _import_line(local: str, module: str, attribute: str | None) -> str:
    if attribute is None:
        return f"import {module}" if local == module else f"import {module} as {local}"
    return f"from {module} import {attribute}" if local == attribute else f"from {module} import {attribute} as {local}"


@dataclass(frozen=True)
class AssembledCode:
    """Import lines and definition blocks, in an order that runs: ``imports`` sorted, ``blocks`` each after
    the definitions it uses (``(module name, source text)``)."""

    imports: list[str]
    blocks: list[tuple[str, str]]

    def text(self) -> str:
        """The imports, then the blocks, each group of blocks headed by the module it comes from."""
        parts = ["\n".join(self.imports)]
        previous = None
        for module, block in self.blocks:
            if module != previous:
                parts.append(f"# ---- from {module.replace('.', '/')}.py")
                previous = module
            parts.append(block)
        return "\n\n\n".join(parts) + "\n"


def assemble(entries: list[object]) -> AssembledCode:
    """Collect the definitions of ``entries`` (module-level functions or classes of our packages) and of
    everything they use; see the module docstring."""
    imports: set[str] = set()
    needed: set[tuple[str, str]] = set()
    owner_of_name: dict[str, str] = {}

    def add(module_name: str, name: str, used_at: str) -> None:
        if (module_name, name) in needed:
            return
        module = _module_source(module_name)
        if name not in module.definitions:
            if name in module.imports:
                source_module, attribute = module.imports[name]
                if attribute is not None and _is_own(source_module):
                    if attribute != name:
                        raise CodegenError(f"{module.path}: imports {source_module}.{attribute} as {name}; "
                                           "copied code must use the original name")
                    add(source_module, attribute, used_at)
                    return
                if _is_own(source_module):
                    raise CodegenError(f"{module.path}: uses module {source_module} as {name!r} in {used_at}; "
                                       "import the names themselves")
                imports.add(_import_line(name, source_module, attribute))
                return
            raise CodegenError(f"{module.path}: {name!r} (used by {used_at}) is not defined at module level")
        if owner_of_name.setdefault(name, module_name) != module_name:
            raise CodegenError(f"two definitions named {name!r}: in {owner_of_name[name]} and {module_name}; "
                               "rename one so they can live in one file")
        node = module.definitions[name]
        _check_no_own_imports(module, node)
        needed.add((module_name, name))
        for used in sorted(_used_names(node)):
            if used == name or (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and _is_local(node, used)):
                continue
            if used in module.definitions or used in module.imports:
                add(module_name, used, f"{module_name}.{name}")
            elif not hasattr(builtins, used):
                raise CodegenError(f"{module.path}: {name} uses {used!r}, which is neither defined, imported "
                                   "nor a builtin")

    for entry in entries:
        module_name = getattr(entry, "__module__", None)
        name = getattr(entry, "__name__", None)
        if not module_name or not name or not _is_own(module_name):
            raise CodegenError(f"{entry!r} is not a module-level function or class of {OWN_PACKAGES}")
        add(module_name, name, "the script")

    # Python itself runs a module's imports before its own body, and a body top to bottom; keeping both
    # orders therefore gives an order in which every constant, default value and base class exists in time.
    blocks: list[tuple[str, str]] = []
    for module_name in _import_order({module for module, _ in needed}):
        module = _module_source(module_name)
        nodes = {module.definitions[name] for mod, name in needed if mod == module_name}
        for node in sorted(nodes, key=lambda n: n.lineno):
            blocks.append((module_name, _definition_text(module, node)))
    return AssembledCode(sorted(imports, key=import_sort_key), blocks)


def _import_order(modules: set[str]) -> list[str]:
    """``modules`` ordered so that each comes after every own module it imports at module level, directly or
    through others."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(module_name: str) -> None:
        if module_name in order or module_name in visiting:
            return
        visiting.add(module_name)
        for source_module, _ in sorted(_module_source(module_name).imports.values(), key=str):
            if _is_own(source_module) and source_module != module_name:
                visit(source_module if _is_module(source_module) else source_module.rpartition(".")[0])
        visiting.discard(module_name)
        order.append(module_name)

    for module_name in sorted(modules):
        visit(module_name)
    return [m for m in order if m in modules]


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _is_local(node: ast.FunctionDef | ast.ClassDef, name: str) -> bool:
    """True when ``name`` is assigned or is a parameter somewhere inside ``node`` (a local variable, not a
    global): such names never refer to module-level definitions in our code base, which never shadows a
    global with a local of the same name on purpose."""
    for inner in ast.walk(node):
        if isinstance(inner, ast.arg) and inner.arg == name:
            return True
        if isinstance(inner, ast.Name) and inner.id == name and isinstance(inner.ctx, ast.Store):
            return True
        if isinstance(inner, (ast.FunctionDef, ast.ClassDef)) and inner is not node and inner.name == name:
            if isinstance(node, ast.ClassDef) and inner in node.body and not _used_at_class_scope(node, name):
                continue  # a method's name is not visible inside the methods: the class scope does not enclose them
            return True
        if isinstance(inner, ast.ExceptHandler) and inner.name == name:
            return True
        if isinstance(inner, ast.alias) and (inner.asname or inner.name.split(".")[0]) == name:
            return True
    return False


def _used_at_class_scope(node: ast.ClassDef, name: str) -> bool:
    """True when ``name`` is read in the body of class ``node`` itself (class-level statements, and the
    decorators and default values of its methods, which run in the class scope), not inside a method."""
    for statement in node.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            evaluated = [*statement.decorator_list, *statement.args.defaults,
                         *(d for d in statement.args.kw_defaults if d is not None)]
        else:
            evaluated = [statement]
        if any(isinstance(inner, ast.Name) and inner.id == name for part in evaluated for inner in ast.walk(part)):
            return True
    return False


def import_sort_key(line: str) -> tuple[int, str]:
    """``import x`` lines first, then ``from x import y``; alphabetical within each."""
    return (0 if line.startswith("import ") else 1, line)
