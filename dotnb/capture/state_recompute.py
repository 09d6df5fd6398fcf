"""Values a run's kernel state could not store (open files, connections,
generators…), recomputed by re-running the lineage cells that produce them.

For each such name, the producing cell is the last cell of the run's lineage
(up to and including the run's own cell) whose code binds the name.  The names
that cell reads must be available after the checkout (restored, or still in the
kernel: modules, for instance) or be recomputable the same way; the cells chosen
are re-run in lineage order, in the kernel's namespace, after the checkout's
values are in place.  Cells re-run with the run's final values of what they read,
and their side effects (files they write) happen again.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_BUILTINS = frozenset(dir(builtins))


def bound_names(tree: ast.AST) -> set[str]:
    """Names the code binds (assignments, loops, ``with … as``, imports, defs)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).partition(".")[0])
    return names


def read_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@dataclass
class LineageCell:
    execution_count: int | None
    source: str  # Python, after IPython's transforms
    tree: ast.Module | None = None


@dataclass
class RecomputePlan:
    cells: list[LineageCell] = field(default_factory=list)  # in lineage order
    producers: dict[str, int | None] = field(default_factory=dict)  # name -> its cell's count
    impossible: dict[str, str] = field(default_factory=dict)  # name -> why not


def plan_recompute(
    missing: set[str], lineage: list[LineageCell], available: Callable[[str], bool]
) -> RecomputePlan:
    """The fewest lineage cells to re-run for ``missing``; ``available(name)``: whether
    a name will hold the run's value without re-running anything."""
    for cell in lineage:
        if cell.tree is None:
            try:
                cell.tree = ast.parse(cell.source)
            except SyntaxError:
                cell.tree = ast.Module(body=[], type_ignores=[])
    binds = [bound_names(c.tree) for c in lineage if c.tree is not None]
    plan = RecomputePlan()
    chosen: set[int] = set()
    failed: dict[str, str] = {}

    def need(name: str, before: int, path: tuple[str, ...]) -> str | None:
        """None when ``name`` can be had (its producing cell, before lineage index
        ``before``, chosen); else why not."""
        producer = next((i for i in range(before - 1, -1, -1) if name in binds[i]), None)
        if producer is None:
            return "no cell of the run's lineage assigns it"
        if producer in chosen:
            return None
        tree = lineage[producer].tree
        assert tree is not None
        for dep in sorted(read_names(tree) - _BUILTINS - {name}):
            if dep in binds[producer]:
                continue  # bound by the cell itself (taken as bound before it is read)
            if available(dep) or dep in path:
                continue
            if dep in failed:
                return f"it needs {dep!r}, which cannot be recomputed either"
            why = need(dep, producer, (*path, name))
            if why is not None:
                failed[dep] = why
                return f"it needs {dep!r} ({why})"
        chosen.add(producer)
        return None

    for name in sorted(missing):
        why = need(name, len(lineage), ())
        if why is None:
            producer = max(i for i in chosen if name in binds[i])
            plan.producers[name] = lineage[producer].execution_count
        else:
            plan.impossible[name] = why
    plan.cells = [lineage[i] for i in sorted(chosen)]
    return plan


def rerun(plan: RecomputePlan, namespace: dict[str, Any]) -> None:
    """Run the plan's cells in ``namespace``, in order (their exceptions propagate)."""
    for cell in plan.cells:
        label = f"<dotnb: re-run of cell [{cell.execution_count}]>"
        exec(compile(cell.source, label, "exec"), namespace)


def names_bound_by(plan: RecomputePlan) -> set[str]:
    found: set[str] = set()
    for cell in plan.cells:
        if cell.tree is not None:
            found |= bound_names(cell.tree)
    return found


def lineage_cells(codes: list[tuple[int | None, str]], transform: Callable[[str], str]) -> list[LineageCell]:
    """The run's lineage as Python (``transform``: IPython's cell transform)."""
    cells = []
    for count, raw in codes:
        try:
            source = transform(raw)
        except Exception:
            source = ""
        cells.append(LineageCell(count, source))
    return cells


def restorable(target: Mapping[str, dict[str, Any]], namespace: Mapping[str, Any]) -> Callable[[str], bool]:
    """``available`` for :func:`plan_recompute`: stored in the target state, or a name
    the target does not track (a module, say) present in the kernel now."""

    def available(name: str) -> bool:
        entry = target.get(name)
        if entry is not None:
            return bool(entry["status"] == "stored")
        return name in namespace

    return available
