"""The house stays as docs/architecture.md draws it: imports point down the
layers, no two modules of dotnb import each other (directly or round a
circle), and no module takes another module's private (``_name``) names.

Read from the source with :mod:`ast`, so it sees imports inside functions and
under ``TYPE_CHECKING`` too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dotnb"

# Which top-level parts of dotnb each part may import (itself always).
LAYERS: dict[str, set[str]] = {
    "store": set(),
    "remote": {"store"},
    "capture": {"store"},
    "comparison": {"store"},
    "provenance": {"store"},
    "headless": {"store", "capture", "comparison"},
    "server": {"store", "remote", "comparison", "headless", "provenance", "sweep", "version"},
    "sweep": {"store", "remote", "capture", "headless"},
    "cli": {"store", "remote", "capture", "comparison", "headless", "provenance", "sweep", "version"},
}
# Libraries that only the layers above the store may import.
JUPYTER = ("IPython", "ipykernel", "tornado", "jupyter_server", "jupyter_client", "nbclient")
KERNEL_FREE = {
    "store": JUPYTER,
    "remote": JUPYTER,
    "comparison": JUPYTER,
    "provenance": JUPYTER,
    "capture": ("tornado", "jupyter_server"),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported module, dotted
    names: tuple[str, ...]  # names taken with ``from … import``
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "labextension" not in p.parts}


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    constants = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            names = tuple(a.name for a in node.names)
            # ``from dotnb.store import objects`` imports the module dotnb.store.objects.
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
            for sub in submodules:
                yield Import(name, sub, (), node.lineno)
            rest = tuple(n for n in names if f"{target}.{n}" not in known)
            if rest or not submodules:
                yield Import(name, target, rest, node.lineno)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "import_module" and node.args:
            # import_module("dotnb.x.y"), or import_module(f"dotnb.x.{part}") where the
            # parts are string constants of the same module (a table of command groups).
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield Import(name, arg.value, (), node.lineno)
            elif isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
                prefix = str(arg.values[0].value)
                for part in sorted(constants):
                    if f"{prefix}{part}" in known:
                        yield Import(name, f"{prefix}{part}", (), node.lineno)


def all_imports() -> list[Import]:
    mods = modules()
    known = set(mods)
    return [imp for name, path in mods.items() for imp in imports_of(name, path, known)]


def part(module: str) -> str | None:
    """The top-level part of dotnb a module belongs to (None: the package itself)."""
    pieces = module.split(".")
    if pieces[0] != "dotnb" or len(pieces) == 1:
        return None
    return pieces[1].removeprefix("_")


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for imp in all_imports():
        src, dst = part(imp.source), part(imp.target)
        if src is None or dst is None or src == dst or src not in LAYERS:
            continue
        if dst not in LAYERS[src]:
            wrong.append(f"{imp.source}:{imp.line} imports {imp.target} ({src} may not use {dst})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("layer", sorted(KERNEL_FREE))
def test_lower_layers_import_no_jupyter_server_code(layer: str) -> None:
    wrong = [
        f"{imp.source}:{imp.line} imports {imp.target}"
        for imp in all_imports()
        if part(imp.source) == layer and imp.target.split(".")[0] in KERNEL_FREE[layer]
    ]
    assert not wrong, "\n".join(wrong)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_between_modules() -> None:
    known = set(modules())
    graph: dict[str, set[str]] = {}
    for imp in all_imports():
        # A package's __init__ runs before any of its modules, so importing the
        # package from inside it is not a circle in the sense that matters.
        if imp.target in known and imp.target != imp.source and not imp.source.startswith(imp.target + "."):
            graph.setdefault(imp.source, set()).add(imp.target)
    assert circles(graph) == []


def test_no_module_takes_another_modules_private_names() -> None:
    wrong = [
        f"{imp.source}:{imp.line} takes {name} from {imp.target}"
        for imp in all_imports()
        if imp.target.startswith("dotnb")
        for name in imp.names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_a_circle_and_a_private_import() -> None:
    # The helpers above are what the house rests on: prove they catch what they must.
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    tree = {"dotnb.x", "dotnb.y", "dotnb.pkg", "dotnb.pkg.m"}
    src = Path(__file__).parent / "fixtures" / "architecture_probe.py.txt"
    found = list(imports_of("dotnb.pkg.m", src, tree))
    assert Import("dotnb.pkg.m", "dotnb.x", ("_secret", "public"), 1) in found
    assert Import("dotnb.pkg.m", "dotnb.y", (), 2) in found
    assert Import("dotnb.pkg.m", "dotnb.pkg", ("thing",), 7) in found
    # import_module(f"dotnb.{name}"), the names in the module's table
    assert Import("dotnb.pkg.m", "dotnb.x", (), 9) in found
    assert Import("dotnb.pkg.m", "dotnb.pkg", (), 9) not in found
