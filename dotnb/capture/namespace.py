"""Which of the kernel's names are the user's variables, which a cell may have
changed, and which must be stored together.

- :func:`user_variables`: the user's names (not modules, not IPython's own names,
  not ``_``-prefixed ones, not names matching the ignore patterns);
- :func:`names_in_code`: every name a cell's code mentions, plus the globals the
  notebook's own functions and classes it mentions use (a cell calling ``f()``
  may change the global ``f`` changes); cheap, run on the cell's path;
- :func:`co_variable_groups`: names whose values share an object (through
  lists, dicts, sets, tuples, instance attributes, numpy views of one base, numpy
  memory under a pandas object),
  found by a walk over ids; run off the cell's path (in the capture child).
"""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Names IPython (or the kernel) binds that are never the user's.
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})
# Values never walked into: immutable leaves, code, modules.
_LEAVES = (
    int,
    float,
    complex,
    bool,
    str,
    bytes,
    type(None),
    range,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.ModuleType,
    types.MethodType,
)
# A walk that meets more objects than this stops: the variable is then grouped by
# what was seen so far (sharing deeper down is not found).
WALK_LIMIT = 200_000


def user_variables(
    user_ns: Mapping[str, Any], hidden: Mapping[str, Any], ignored: Callable[[str], bool] | None = None
) -> dict[str, Any]:
    """The user's names and values; ``ignored(name)``: the name-ignore rules
    (:class:`dotnb.capture.state_ignore.NameRules`)."""
    found: dict[str, Any] = {}
    for name, value in user_ns.items():
        if name.startswith("_") or name in _KERNEL_NAMES:
            continue
        if name in hidden and hidden[name] is value:
            continue  # bound by IPython at start, unchanged since
        if isinstance(value, types.ModuleType):
            continue
        if ignored is not None and ignored(name):
            continue
        found[name] = value
    return found


def is_notebook_defined(value: Any) -> bool:
    """A function or class the notebook itself defined (module ``__main__``)."""
    return isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == "__main__"


_NAMES_MEMO: dict[str, frozenset[str] | None] = {}


def names_in_code(source: str) -> frozenset[str] | None:
    """Every identifier the (already IPython-transformed) code mentions; None when it
    does not parse (then any name may have changed)."""
    found = _NAMES_MEMO.get(source, ())
    if found != ():
        return found  # type: ignore[return-value]
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        result = None
    else:
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                names.update(node.names)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.alias):
                names.add((node.asname or node.name).partition(".")[0])
        result = frozenset(names)
    if len(_NAMES_MEMO) >= 512:
        _NAMES_MEMO.clear()
    _NAMES_MEMO[source] = result
    return result


def with_called_globals(names: Iterable[str], user_ns: Mapping[str, Any]) -> set[str]:
    """``names`` plus, transitively, the global names used by the notebook-defined
    functions and classes among them."""
    result = set(names)
    todo = list(result)
    while todo:
        value = user_ns.get(todo.pop())
        if not is_notebook_defined(value):
            continue
        for code in _codes_of(value):
            for name in _code_names(code):
                if name not in result:
                    result.add(name)
                    todo.append(name)
    return result


def _codes_of(value: Any) -> list[types.CodeType]:
    if isinstance(value, types.FunctionType):
        return [value.__code__]
    codes = []
    for attr in vars(value).values():
        func = getattr(attr, "__func__", attr)  # staticmethod, classmethod
        if isinstance(func, types.FunctionType):
            codes.append(func.__code__)
    return codes


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _chain(array: Any, ndarray: Any) -> list[int]:
    """Ids of ``array`` and of its bases: two arrays share memory only if their
    chains meet (at the object owning the memory)."""
    ids = [id(array)]
    base: Any = array.base
    while base is not None:
        ids.append(id(base))
        base = base.base if isinstance(base, ndarray) else None
    return ids


def pandas_memory(obj: Any, ndarray: Any) -> list[int]:
    """Ids on the base chains of the numpy memory under a pandas DataFrame or Series
    (its blocks, and the ndarrays inside its extension arrays).  They sit behind
    pandas' internal block manager, which the walk over ``__dict__`` does not enter."""
    try:
        arrays = list(obj._mgr.arrays)
    except Exception:
        return []
    ids: list[int] = []
    for array in arrays:
        if isinstance(array, ndarray):
            ids += _chain(array, ndarray)
            continue
        for attr in ("_ndarray", "_data", "_mask", "_codes"):
            inner = getattr(array, attr, None)
            if isinstance(inner, ndarray):
                ids += _chain(inner, ndarray)
    return ids


def reachable_ids(value: Any, limit: int = WALK_LIMIT, memory: set[int] | None = None) -> set[int]:
    """Ids of the mutable objects reachable from ``value`` (itself included).  With
    ``memory``, the ids of the numpy memory under the pandas objects met are added to
    it (see :func:`co_variable_groups` for why apart)."""
    ndarray = getattr(sys.modules.get("numpy"), "ndarray", None)
    pandas = sys.modules.get("pandas")
    frames = (pandas.DataFrame, pandas.Series) if pandas is not None and ndarray is not None else None
    seen: set[int] = set()
    stack = [value]
    while stack and len(seen) < limit:
        obj = stack.pop()
        if isinstance(obj, _LEAVES):
            continue
        key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        if ndarray is not None and isinstance(obj, ndarray):
            seen.update(_chain(obj, ndarray))  # views of one array share its memory
            continue
        if frames is not None and memory is not None and isinstance(obj, frames):
            memory.update(pandas_memory(obj, ndarray))
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        else:
            try:
                attrs = object.__getattribute__(obj, "__dict__")
            except Exception:
                continue
            if isinstance(attrs, dict):
                stack.extend(attrs.values())
    return seen


def co_variable_groups(variables: Mapping[str, Any]) -> list[list[str]]:
    """The names of ``variables`` partitioned into groups that share no object,
    each group sorted, groups in order of their first name.

    Memory under pandas objects joins a pandas object to the numpy arrays (and
    objects holding them) sharing it, so ``df = pd.DataFrame(a, copy=False)`` and
    ``v = df.values`` keep sharing ``a``'s memory after a load.  Two pandas objects
    sharing memory only with each other (``s = df["x"]``) are not joined: under
    pandas' copy-on-write they are logically copies, and the bookkeeping that makes
    a write to one copy first is not part of a pickle; loaded apart, they are copies."""
    parent: dict[str, str] = {name: name for name in variables}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def union(a: str, b: str) -> None:
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)

    owner: dict[int, str] = {}
    memory_users: dict[int, list[str]] = {}
    for name, value in variables.items():
        memory: set[int] = set()
        ids = reachable_ids(value, memory=memory)
        if isinstance(value, (type, types.FunctionType, types.MethodType)):
            ids.add(id(value))  # `alias = f` keeps `alias is f` (leaves are not walked)
        for key in ids:
            union(owner.setdefault(key, name), name)
        for key in memory:
            memory_users.setdefault(key, []).append(name)
    for key, names in memory_users.items():
        other = owner.get(key)
        if other is not None:
            for name in names:
                union(other, name)
    groups: dict[str, list[str]] = {}
    for name in variables:
        groups.setdefault(find(name), []).append(name)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def type_name(value: Any) -> str:
    t = type(value)
    module = t.__module__
    return t.__qualname__ if module in ("builtins", "__main__") else f"{module}.{t.__qualname__}"
