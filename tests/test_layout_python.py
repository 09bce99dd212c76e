"""The Python package's imports point one way (read from the source with ast).

building blocks (activations, losses, initializers, layers, optimizers, schedules, _validation;
  _svg, the charts of plain numbers)
  -> _history (Callback, History, ProgressBar) -> _engine (the core handle and the fit loop)
  -> model (Sequential, a facade) -> what acts on a model (callbacks, io, explain, diagnostics,
     distributed, sklearn, bench, cli, plot), which use the engine's public surface.

``_core`` (the compiled module) and ``reference`` (the NumPy twin, which imports nothing of the
package) sit below all of them. Section of issue 15; the C++ include direction is tested in
tests/test_layout.py.
"""
from __future__ import annotations

import ast
import pathlib
from typing import Dict, Iterator, List, Set, Tuple

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "pybackprop"

BUILDING_BLOCKS = {"activations", "losses", "metrics", "initializers", "layers", "optimizers", "schedules",
                   "_validation"}
BELOW_ALL = {"_core", "reference"}
#: pure helpers of numbers (SVG charts) that any level may draw with
HELPERS = {"_svg"}
LEVEL: Dict[str, int] = {**{m: 0 for m in BUILDING_BLOCKS | BELOW_ALL | HELPERS}, "_history": 1, "_engine": 2, "model": 3}
#: the facade's convenience methods (save, explain, pickling) call these lazily, inside the method
MODEL_CALLS_UP = {"io", "explain", "export"}
#: the modules allowed to use the underscore names of Sequential, the Engine and the layers
OWNERS = {"model", "_engine", "layers"}


def modules() -> Iterator[Tuple[str, pathlib.Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        if parts and parts[0] == "reference":
            continue  # tested in test_reference.py: it imports nothing of pybackprop at all
        yield (".".join(parts) or "__init__"), path


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(path: pathlib.Path, module: str) -> List[Tuple[str, List[str], str]]:
    """(imported top-level module of the package, names imported from it, where: "top", "function"
    or "typing")."""
    tree = ast.parse(path.read_text())
    parts = [] if module == "__init__" else module.split(".")
    package = parts if path.name == "__init__.py" else parts[:-1]  # the package the module is in
    found: List[Tuple[str, List[str], str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            here = where
            if isinstance(child, ast.If) and _is_type_checking(child):
                here = "typing"
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and where == "top":
                here = "function"
            if isinstance(child, ast.ImportFrom):
                names = [a.name for a in child.names]
                if child.level:
                    full = package[:len(package) - (child.level - 1)] + (child.module or "").split(".")
                    full = [p for p in full if p]
                elif (child.module or "").startswith("pybackprop"):
                    full = (child.module or "").split(".")[1:]
                else:
                    full = None
                if full:
                    found.append((full[0], names, here))
                elif full is not None:  # from . import a, b
                    found.extend((n, [], here) for n in names)
            elif isinstance(child, ast.Import):
                for a in child.names:
                    if a.name.startswith("pybackprop."):
                        found.append((a.name.split(".")[1], [], here))
            visit(child, here)

    visit(tree, "top")
    return found


def test_the_levels_cover_the_package():
    names = {m.split(".")[0] for m, _ in modules()}
    assert BUILDING_BLOCKS | {"_history", "_engine", "model"} <= names, sorted(names)


@pytest.mark.parametrize("module, path", list(modules()), ids=[m for m, _ in modules()])
def test_imports_point_one_way(module, path):
    top = module.split(".")[0]
    level = LEVEL.get(top, 4)  # 4: what acts on a model (and __init__, which re-exports everything)
    for target, _names, where in imports(path, module):
        if target == top or target in BELOW_ALL:
            continue
        target_level = LEVEL.get(target, 4)
        if top == "__init__" or level == 4:
            continue  # the top may import any level
        if where == "typing" and level >= 1:
            continue  # annotations of the engine level may name the model they serve
        if top == "model" and where == "function" and target in MODEL_CALLS_UP:
            continue
        assert target_level < level or (target_level == level == 0), \
            f"{module} (level {level}) imports {target} (level {target_level}) [{where}]: imports point down"


def private_names(module: str, classes: Set[str]) -> Set[str]:
    """Underscore attributes a class of ``module`` defines (methods, properties, self._x assignments)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out: Set[str] = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name in classes):
        for node in ast.walk(cls):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = node.name
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                name = node.attr
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                name = node.target.id
            else:
                continue
            if name.startswith("_") and not name.startswith("__"):
                out.add(name)
    return out


def test_private_names_are_found():
    model = private_names("model", {"Sequential"})
    engine = private_names("_engine", {"Engine"})
    layers = private_names("layers", {"Layer", "Dense", "Dropout"})
    assert {"_engine", "_net"} <= model and {"_configure_core", "_reduced_epoch"} <= engine
    assert {"_model", "_index"} <= layers


@pytest.mark.parametrize("module, path", list(modules()), ids=[m for m, _ in modules()])
def test_only_the_owners_use_the_private_names_of_sequential_engine_and_layers(module, path):
    if module in OWNERS:
        return
    forbidden = (private_names("model", {"Sequential"}) | private_names("_engine", {"Engine"})
                 | private_names("layers", {"Layer", "Dense", "Dropout"}))
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in forbidden:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue  # a class of this module with a name of its own
            pytest.fail(f"{module}.py:{node.lineno} uses .{node.attr}, a private name of Sequential, the "
                        "Engine or a layer: use model.engine's public surface")
    for target, names, _where in imports(path, module):
        if target in ("model", "_engine"):
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{module} imports private names {private} of {target}"
