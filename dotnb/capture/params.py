"""Params of a run: literal assignments in a cell, ``--param NAME=VALUE`` options and
their overrides of a cell's assignments.

Everything recorded must be JSON (runs are canonical JSON manifests), so values
go through :func:`to_jsonable`, which :mod:`dotnb.capture.api` also uses for
``dotnb.param()`` and which metrics can share.

Kept free of heavy imports: this module is imported into every user kernel and by
the CLI.  IPython is imported only when a cell is not plain Python.
"""

from __future__ import annotations

import ast
import json
import keyword
import math
import numbers
import re
from typing import Any

from dotnb.capture.assignments import BIND, DELETE, UPDATE, affected_names, top_level

__all__ = [
    "NotJsonableError",
    "ParamOverride",
    "literal_assignments",
    "parse_param_option",
    "to_jsonable",
]


class NotJsonableError(TypeError):
    """Raised by :func:`to_jsonable` for a value with no faithful JSON form.

    A ``TypeError`` subclass so that ``except (TypeError, ValueError)`` callers
    written against ``json.dumps`` keep working.
    """


def to_jsonable(value: Any) -> Any:
    """Return a JSON-safe copy of ``value``, or raise :class:`NotJsonableError`.

    Raising (rather than returning a sentinel) is deliberate: ``None`` is itself a
    valid JSON value, so no return value could mean "unsupported".

    Conversions:

    - ``None``, ``bool``, ``int``, ``str`` as is (subclasses such as ``IntEnum``
      become the plain base type); finite floats as is; ``nan``/``inf``/``-inf``
      become the strings ``"nan"``/``"inf"``/``"-inf"``;
    - tuples and lists become lists; sets and frozensets become sorted lists
      (sorted by value, or by their JSON text when the values do not compare);
    - dicts keep ``str`` keys; ``int`` keys become their decimal string, as
      ``json.dumps`` would do (a dict whose keys then collide is unsupported);
    - NumPy/PyTorch-style 0-d scalars (anything with ``.item()`` and an empty
      ``.shape``) become their Python value, other ``numbers.Integral`` /
      ``numbers.Real`` become ``int`` / ``float`` — without importing NumPy.

    Unsupported (raises): bytes, complex, other key types, cyclic containers,
    arrays and any other object.
    """
    return _convert(value, set())


def _convert(value: Any, active: set[int]) -> Any:
    # Exact-type checks first: they are the common case and the cheapest.
    if value is None or value is True or value is False:
        return value
    if isinstance(value, bool):  # bool subclasses (none in practice) before int.
        return bool(value)
    if isinstance(value, int):
        return value if type(value) is int else int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value if type(value) is float else float(value)
        # Non-finite floats are not JSON; manifests record them as strings.
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        # str() of a (str, Enum) member is "Cls.NAME"; str.__str__ gives its value.
        return value if type(value) is str else str.__str__(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        # Guard against self-referential containers (possible from dotnb.param).
        if id(value) in active:
            raise NotJsonableError("cyclic container is not JSON-serialisable")
        active.add(id(value))
        try:
            return _convert_container(value, active)
        finally:
            active.discard(id(value))
    if isinstance(value, (bytes, bytearray, memoryview, complex)):
        raise NotJsonableError(f"{type(value).__name__} is not JSON-serialisable")
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        # 0-d NumPy scalars/arrays, torch scalars: .item() gives a Python scalar.
        return _convert(item(), active)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return _convert(float(value), active)
    raise NotJsonableError(f"{type(value).__name__} is not JSON-serialisable")


def _convert_container(value: Any, active: set[int]) -> Any:
    if isinstance(value, (list, tuple)):
        return [_convert(v, active) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if isinstance(k, str):
                key = k if type(k) is str else str.__str__(k)
            elif isinstance(k, int) and not isinstance(k, bool):
                key = str(int(k))
            else:
                raise NotJsonableError(f"dict key of type {type(k).__name__} is not a JSON key")
            if key in out:
                raise NotJsonableError(f"dict keys collide as JSON key {key!r}")
            out[key] = _convert(v, active)
        return out
    # set / frozenset: JSON has no sets; a sorted list is stable across runs.
    items = [_convert(v, active) for v in value]
    try:
        return sorted(items)
    except TypeError:
        # Mixed types (e.g. {1, "a"}) do not compare; order by canonical JSON text.
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))


# --------------------------------------------------------------------------- cells

# Cell magics whose body is Python run in the user namespace, so the body's
# assignments become kernel variables; their first line is dropped and the body
# parsed.  Other cell magics (%%bash, %%timeit, ...) yield no params.
_PYTHON_BODY_CELL_MAGICS = frozenset({"track", "time", "capture"})
_CELL_MAGIC_LINE = re.compile(r"[ \t]*%%([A-Za-z_][\w.]*)(?:[ \t].*)?$")

_transformer: Any = None


def _strip_python_cell_magics(code: str) -> str:
    while True:
        lines = code.splitlines(keepends=True)
        # IPython also ignores leading blank lines when looking for a cell magic.
        i = 0
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i == len(lines):
            return code
        m = _CELL_MAGIC_LINE.match(lines[i].rstrip("\r\n"))
        if m is None or m.group(1) not in _PYTHON_BODY_CELL_MAGICS:
            return code
        code = "".join(lines[i + 1 :])


def _parse_cell(code: str) -> ast.Module | None:
    code = _strip_python_cell_magics(code)
    try:
        # Plain Python (the common case) parses directly: ~20x cheaper than
        # IPython's transformer, which matters inside the per-cell budget.
        return ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: null bytes (3.11)
        pass
    except RecursionError:
        return None
    global _transformer
    try:
        if _transformer is None:
            from IPython.core.inputtransformer2 import TransformerManager

            _transformer = TransformerManager()
        transformed = _transformer.transform_cell(code)
    except Exception:
        # IPython's transformer on arbitrary (possibly broken) input is not ours to
        # trust; a cell we cannot read simply has no literal params.
        return None
    try:
        return ast.parse(transformed)
    except (SyntaxError, ValueError, RecursionError):
        return None


_LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, MemoryError, RecursionError)
_MISSING = object()


def _literal(node: ast.expr) -> Any:
    """The JSON form of a literal expression node, or ``_MISSING``."""
    try:
        return to_jsonable(ast.literal_eval(node))
    except _LITERAL_ERRORS:  # NotJsonableError is a TypeError
        return _MISSING


class _Collector:
    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        # Re-insert so that the order reflects the last assignment.
        self.params.pop(name, None)
        if value is not _MISSING:
            self.params[name] = value

    def forget(self, target: ast.expr) -> None:
        # A later non-literal (re)binding or mutation makes an earlier literal stale
        # (``cfg["lr"] = 1`` mutates ``cfg``: its recorded literal would be stale too).
        for name in affected_names(target):
            self.params.pop(name, None)

    def bind_node(self, target: ast.expr, value: ast.expr) -> None:
        """Bind ``target = value`` element-wise where both sides are displays.

        So ``a, b = 1, f()`` still records ``a``.
        """
        if isinstance(target, ast.Name):
            self.set(target.id, _literal(value))
            return
        if (
            isinstance(target, (ast.Tuple, ast.List))
            and isinstance(value, (ast.Tuple, ast.List))
            and len(target.elts) == len(value.elts)
            and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
        ):
            for t, v in zip(target.elts, value.elts, strict=True):
                self.bind_node(t, v)
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            py = _literal(value)
            if py is not _MISSING and self.bind_value(target, py):
                return
        self.forget(target)

    def bind_value(self, target: ast.expr, value: Any) -> bool:
        """Unpack an already-evaluated (JSON) value; False when Python would not."""
        if isinstance(target, ast.Name):
            self.set(target.id, value)
            return True
        if not isinstance(target, (ast.Tuple, ast.List)) or not isinstance(value, list):
            # Unpacking strings/dicts/sets is legal Python but never a param idiom.
            return False
        starred = [i for i, e in enumerate(target.elts) if isinstance(e, ast.Starred)]
        if len(starred) > 1:
            return False
        if not starred:
            if len(value) != len(target.elts):
                return False
            pairs = list(zip(target.elts, value, strict=True))
        else:
            s = starred[0]
            after = len(target.elts) - s - 1
            if len(value) < s + after:
                return False
            rest = value[s : len(value) - after]
            star = target.elts[s]
            assert isinstance(star, ast.Starred)
            pairs = [
                *zip(target.elts[:s], value[:s], strict=True),
                (star.value, rest),
                *zip(target.elts[s + 1 :], value[len(value) - after :], strict=True),
            ]
        for t, v in pairs:
            if not self.bind_value(t, v):
                self.forget(t)
        return True


def literal_assignments(code: str) -> dict[str, Any]:
    """Top-level ``NAME = <literal>`` assignments of a cell, as JSON-safe values.

    Handles plain, chained (``a = b = 1``), tuple-unpacking (``a, b = 1, 2``,
    ``a, *rest = [1, 2, 3]``) and annotated (``lr: float = 0.1``) assignments whose
    value :func:`ast.literal_eval` accepts; values go through :func:`to_jsonable`
    (tuples become lists, sets sorted lists, non-finite floats strings).

    Only module-level statements count: assignments inside ``def``/``class``,
    loops, ``if``/``with``/``try`` blocks may not run (or not once), so they are
    ignored.  The last top-level assignment wins, and a later top-level rebinding
    that is not a literal (``lr = lr * 2``, ``lr += 1``, ``del lr``, or a value
    such as bytes with no JSON form) drops the name, as does an item or attribute
    assignment (``cfg["lr"] = x``), since the recorded value would no longer be
    what the cell left in the variable.  (Mutation through calls such as
    ``layers.append(8)`` is not detected.)

    IPython syntax (``!cmd``, ``%magic``, ``x?``) is transformed as IPython would;
    a leading ``%%track`` (or ``%%time``/``%%capture``) line is skipped.  Returns
    ``{}`` for a cell that cannot be parsed.  Never raises for any ``str``.
    """
    tree = _parse_cell(code)
    if tree is None:
        return {}
    c = _Collector()
    for kind, targets, stmt in top_level(tree):
        if kind == BIND:
            assert isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None
            for target in targets:
                c.bind_node(target, stmt.value)
        elif kind in (UPDATE, DELETE):
            for target in targets:
                c.forget(target)
        # (DECLARE: `x: int` alone binds nothing)
    return c.params


class ParamOverride(ast.NodeTransformer):
    """Replaces the value of top-level ``NAME = literal`` assignments for overridden params.

    Registered in ``ip.ast_transformers``: it sees every cell's parsed code (IPython
    syntax already transformed) and leaves it alone while ``overrides`` is empty.
    Only bare-name targets are replaced (not ``a, b = …``); ``replaced`` keeps the
    expression each replaced, for the run line.
    """

    def __init__(self) -> None:
        self.overrides: dict[str, Any] = {}
        self.replaced: dict[str, str] = {}

    def visit_Module(self, node: ast.Module) -> ast.Module:
        if not self.overrides:
            return node
        for kind, targets, stmt in top_level(node):
            if kind != BIND:
                continue
            assert isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None
            for target in targets:
                if isinstance(target, ast.Name) and target.id in self.overrides:
                    # Read from the statement each time: in `a = b = 1` with both
                    # overridden, the second target sees the first one's replacement.
                    self.replaced[target.id] = ast.unparse(stmt.value)
                    stmt.value = ast.copy_location(_literal_node(self.overrides[target.id]), stmt.value)
        return node


def _literal_node(value: Any) -> ast.expr:
    try:
        node = ast.parse(repr(value), mode="eval").body
        ast.literal_eval(node)
        return node
    except (SyntaxError, ValueError):
        return ast.Constant(value=value)


# ------------------------------------------------------------------------- options

# JSON spellings a CI user may type (`-p debug=true`); Python's are accepted too.
_JSON_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


def parse_param_option(text: str) -> tuple[str, Any]:
    """Parse ``NAME=VALUE`` from ``--param``/``-p`` into ``(name, value)``.

    ``NAME`` must be a Python identifier and not a keyword (params are injected
    into cells as assignments).  ``VALUE`` is read with :func:`ast.literal_eval`
    (``0.3``, ``[64, 32]``, ``'adam'``, ``None``), then the JSON words ``true``,
    ``false``, ``null``; anything else is kept as the raw string, so
    ``-p opt=adam`` gives ``"adam"``.  Whitespace around name and value is
    ignored; quote the value to keep it.

    Raises ``ValueError`` with a message fit for the user when the text is not
    ``NAME=VALUE``, the name is not an identifier, or the value is a literal with
    no JSON form (bytes, complex).  Returned values are already JSON-safe.
    """
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError(f"invalid param {text!r}: expected NAME=VALUE, e.g. lr=0.1")
    if not name:
        raise ValueError(f"invalid param {text!r}: missing NAME before '=' (expected NAME=VALUE)")
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"invalid param {text!r}: {name!r} is not a valid Python variable name")
    raw = raw.strip()
    try:
        value = ast.literal_eval(raw)
    except _LITERAL_ERRORS:
        return name, _JSON_KEYWORDS.get(raw, raw)
    try:
        return name, to_jsonable(value)
    except NotJsonableError as exc:
        raise ValueError(f"invalid param {text!r}: {exc}") from None
