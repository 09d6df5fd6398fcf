"""Top-level assignments of a cell: which statements bind, rebind or unbind which names.

One reading of a cell's module-level statements, shared by the three places that
need it, each taking the kinds it acts on:

- literal params (:func:`dotnb.capture.params.literal_assignments`): ``BIND``
  records a literal, ``UPDATE`` and ``DELETE`` drop the name;
- ``--param`` overrides (:class:`dotnb.capture.params.ParamOverride`): ``BIND``
  statements whose target is a bare name get the override's value;
- ``dotnb run -p`` checking a ``parameters`` cell
  (:func:`dotnb.headless.notebooks.assigned_names`): every kind but ``DELETE``
  counts as assigning each name in its targets.

Only module-level statements count: assignments inside ``def``/``class``, loops,
``if``/``with``/``try`` blocks may not run (or not once).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import NamedTuple

__all__ = [
    "BIND",
    "DECLARE",
    "DELETE",
    "UPDATE",
    "Assignment",
    "affected_names",
    "target_names",
    "top_level",
]

BIND = 0  # `a = b = value`, `a: T = value`: each target is given `value`
DECLARE = 1  # `a: T`: an annotation alone, binds nothing
UPDATE = 2  # `a += value`: rebound (or mutated) from its own value
DELETE = 3  # `del a`


class Assignment(NamedTuple):
    kind: int
    targets: list[ast.expr]
    # The statement itself (Assign, AnnAssign, AugAssign or Delete): a transformer
    # may replace its value.
    statement: ast.stmt


def top_level(tree: ast.Module) -> Iterator[Assignment]:
    """The module-level assignment statements of ``tree``, in order."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            yield Assignment(BIND, stmt.targets, stmt)
        elif isinstance(stmt, ast.AnnAssign):
            yield Assignment(DECLARE if stmt.value is None else BIND, [stmt.target], stmt)
        elif isinstance(stmt, ast.AugAssign):
            yield Assignment(UPDATE, [stmt.target], stmt)
        elif isinstance(stmt, ast.Delete):
            yield Assignment(DELETE, stmt.targets, stmt)


def affected_names(target: ast.expr) -> list[str]:
    """Variables whose value an assignment to ``target`` replaces or mutates.

    ``cfg["lr"] = 1`` and ``cfg.lr = 1`` mutate ``cfg`` (not ``lr``); ``a, *b = …``
    binds both.
    """
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred | ast.Attribute | ast.Subscript):
        return affected_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in affected_names(elt)]
    return []


def target_names(target: ast.expr) -> set[str]:
    """Every name mentioned in ``target``, the index of ``cfg[key] = …`` included."""
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
