"""The Experiments table: runs as rows, their params and metrics as columns, sorted,
filtered and paged in SQLite so that a history of many thousands of runs never
travels whole to the browser (``GET table``).

A filter is ``COLUMN OP VALUE``: ``acc > 0.9``, ``lr = 0.1``, ``status != ok``,
``name ~ adam`` (contains), ``tag = baseline``.  COLUMN is a metric, a param or one
of :data:`BUILTIN` (``metric:NAME`` and ``param:NAME`` say which when a name is
both).  A sort key is a builtin column, ``metric:NAME`` or ``param:NAME``; runs
without a value sort last whichever the direction.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dotnb.store.index import IN_CHUNK, Index
from dotnb.store.listing import with_annotations
from dotnb.store.query import BadQuery

# The run before ``r``: the latest earlier-started run of the same notebook and kind
# (ids sort by start time); the index on (notebook, id) finds it.
_PREVIOUS = (
    "(SELECT p.id FROM runs p WHERE p.notebook = r.notebook AND p.kind = r.kind"
    " AND p.id < r.id ORDER BY p.id DESC LIMIT 1)"
)


def _changed_sql(table: str) -> str:
    """How many of run ``r``'s rows in ``table`` (``inputs`` or ``outputs``: one per
    file, or per folder recorded as a tree) the run before it has not got with the
    same path and the same hash: files whose bytes changed, and new files.  A run
    with no run before it counts every file.  The run before is found once per run
    (the one-row subquery ``q``: ``LIMIT`` keeps SQLite from flattening it into a
    look-up per file), then each file costs one look-up on the (hash, run_id,
    path) key: about 5 µs a run, 45 ms over 10,000 runs of 5 files."""
    return (
        f"(SELECT COUNT(*) FROM (SELECT {_PREVIOUS} AS id LIMIT 1) q, {table} c"
        f" WHERE c.run_id = r.id AND NOT EXISTS (SELECT 1 FROM {table} b"
        " WHERE b.hash = c.hash AND b.run_id = q.id AND b.path = c.path))"
    )


# Builtin columns: the SQL of their value (over ``runs r`` and ``run_annotations a``)
# and whether it is a number.
BUILTIN: dict[str, tuple[str, bool]] = {
    "number": ("r.number", True),
    "started": ("r.id", False),
    "duration": ("json_extract(r.summary, '$.duration_s')", True),
    "name": ("r.name", False),
    "status": ("r.status", False),
    "author": ("r.author", False),
    "notebook": ("r.notebook", False),
    "kind": ("r.kind", False),
    "tags": ("a.tags", False),
    "inputs_changed": (_changed_sql("inputs"), True),
    "outputs_changed": (_changed_sql("outputs"), True),
}
# Computed per row of a page and added to its summary (the other builtins are in it).
CHANGE_COLUMNS = ("inputs_changed", "outputs_changed")
MAX_FILTERS = 20
# What the table can group runs by: a column's SQL.  A sweep's runs carry the tag
# sweep:<id> (dotnb.sweep.task.sweep_tag); a run has at most one.
GROUPS = {
    "notebook": "r.notebook",
    "name": "r.name",
    "sweep": "(SELECT MIN(value) FROM json_each(a.tags) WHERE value LIKE 'sweep:%')",
}
_FILTER = re.compile(r"^\s*(.+?)\s*(>=|<=|==|!=|>|<|=|~)\s*(.*?)\s*$", re.S)
_NUMERIC_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", "==": "=", "!=": "!="}


@dataclass(frozen=True)
class Condition:
    """One parsed filter: a column (``metric:``, ``param:``, a builtin or ``tag``), an
    operator and a value (a float when it reads as a finite number)."""

    column: str
    op: str
    value: float | str


def parse_filter(text: str, metrics: Callable[[], set[str]], params: Callable[[], set[str]]) -> Condition:
    """A filter's condition; ``metrics`` and ``params`` give the names recorded (asked
    only when the column is neither prefixed nor builtin: listing params reads every
    summary)."""
    match = _FILTER.match(text)
    if not match:
        raise BadQuery(f"filter {text!r} must look like COLUMN OP VALUE (operators: > >= < <= = != ~)")
    name, op, raw = match.groups()
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        value: float | str = raw[1:-1]
    else:
        try:
            number = float(raw)
        except ValueError:
            value = raw
        else:
            value = number if math.isfinite(number) else raw
    if name.startswith(("metric:", "param:")) or name == "tag":
        column = name
    elif name in metrics():
        column = f"metric:{name}"
    elif name in BUILTIN:
        column = name
    elif name in params():
        column = f"param:{name}"
    else:
        raise BadQuery(f"filter {text!r}: no metric, param or column is called {name!r}")
    if op in (">", ">=", "<", "<=") and not isinstance(value, float):
        raise BadQuery(f"filter {text!r}: {op} needs a number")
    if column.startswith("metric:") and op != "~" and not isinstance(value, float):
        raise BadQuery(f"filter {text!r}: metrics compare with numbers")
    return Condition(column, op, value)


def _condition_sql(cond: Condition) -> tuple[str, list[Any]]:
    op, value = cond.op, cond.value
    if cond.column == "tag":
        sub = "r.id IN (SELECT run_id FROM run_tags WHERE tag=?)"
        if op in ("=", "=="):
            return sub, [str(value if isinstance(value, str) else _text(value))]
        if op == "!=":
            return f"NOT {sub}", [str(value if isinstance(value, str) else _text(value))]
        if op == "~":
            return "r.id IN (SELECT run_id FROM run_tags WHERE instr(lower(tag), ?) > 0)", [
                _text(value).lower()
            ]
        raise BadQuery("tag filters use =, != or ~")
    if cond.column.startswith("metric:"):
        name = cond.column[len("metric:") :]
        if op == "~":
            raise BadQuery("metrics compare with numbers (> >= < <= = !=)")
        return (
            f"r.id IN (SELECT run_id FROM metric_values WHERE name=? AND value {_NUMERIC_OPS[op]} ?)",
            [name, value],
        )
    expr, args = _column_sql(cond.column)
    if cond.column in CHANGE_COLUMNS and isinstance(value, float) and op != "~":
        # Always an integer: the count is computed once, not again for a type check.
        return f"{expr} {_NUMERIC_OPS[op]} ?", [*args, value]
    if op == "~":
        return f"instr(lower(CAST({expr} AS TEXT)), ?) > 0", [*args, _text(value).lower()]
    if isinstance(value, float):
        # A number compares with numbers only (SQLite ranks any text above any number).
        return (
            f"(typeof({expr}) IN ('integer', 'real') AND {expr} {_NUMERIC_OPS[op]} ?)",
            [*args, *args, value],
        )
    if op not in ("=", "==", "!="):
        raise BadQuery(f"{op} needs a number")
    if op == "!=":
        return f"({expr} IS NULL OR CAST({expr} AS TEXT) != ?)", [*args, *args, value]
    return f"CAST({expr} AS TEXT) = ?", [*args, value]


def _text(value: float | str) -> str:
    return value if isinstance(value, str) else repr(value)


def _column_sql(column: str) -> tuple[str, list[Any]]:
    """The SQL value of a sortable or filterable column, and its arguments."""
    if column.startswith("param:"):
        key = column[len("param:") :]
        if '"' not in key and "\\" not in key:
            # json_extract reads one value; json_each would build a row per param.
            return "json_extract(r.summary, ?)", [f'$.params."{key}"']
        return "(SELECT value FROM json_each(r.summary, '$.params') WHERE key=?)", [key]
    if column.startswith("metric:"):
        return "(SELECT value FROM metric_values WHERE run_id=r.id AND name=?)", [column[len("metric:") :]]
    if column in BUILTIN:
        return BUILTIN[column][0], []
    raise BadQuery(
        f"cannot sort or filter on {column!r}: a column is {', '.join(BUILTIN)}, metric:NAME or param:NAME"
    )


# Params and metrics recorded, by (index file, notebook, change cursor): listing params
# reads every summary, and the cursor changes whenever a run is added or replaced.
_COLUMNS_CACHE: dict[tuple[str, str | None, int], dict[str, list[str]]] = {}


# The run ids a query keeps, in its order, by (index file, query, runs' change state):
# the pages of one query (a scroll through the table, 200 rows a page) sort once, not
# once a page.  Adding, replacing or annotating a run moves its seq (the change feed),
# and rebuilding the rows renumbers them, so the state (max and sum of seq, count)
# moves whenever a query's answer can.
_ORDER_CACHE: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()
_ORDER_CACHE_LOCK = threading.Lock()
ORDER_CACHE_QUERIES = 8
# A query keeping more runs than this sorts for each page instead (memory).
ORDER_CACHE_MAX_RUNS = 200_000


class RunTable:
    """The Experiments table over a store's index."""

    def __init__(self, index: Index, keep_order: bool = True) -> None:
        self.index = index
        # Whether a query's order is kept for its next pages (see _ORDER_CACHE).
        self.keep_order = keep_order

    def columns(self, notebook: str | None = None) -> dict[str, list[str]]:
        """The params and metrics some run (of ``notebook``) recorded, by name."""
        cursor = int(self.index.query("SELECT COALESCE(MAX(seq), 0) FROM runs")[0][0])
        key = (str(self.index.path), notebook, cursor)
        cached = _COLUMNS_CACHE.get(key)
        if cached is None:
            cached = {"params": self._param_names(notebook), "metrics": self._metric_names(notebook)}
            if len(_COLUMNS_CACHE) > 32:
                _COLUMNS_CACHE.clear()
            _COLUMNS_CACHE[key] = cached
        return {"params": list(cached["params"]), "metrics": list(cached["metrics"])}

    def _param_names(self, notebook: str | None) -> list[str]:
        where, args = ("WHERE r.notebook=?", (notebook,)) if notebook is not None else ("", ())
        rows = self.index.query(
            f"SELECT DISTINCT p.key FROM runs r, json_each(r.summary, '$.params') p {where} ORDER BY p.key",
            args,
        )
        return [str(r[0]) for r in rows]

    def _metric_names(self, notebook: str | None) -> list[str]:
        where, args = ("WHERE notebook=?", (notebook,)) if notebook is not None else ("", ())
        rows = self.index.query(f"SELECT DISTINCT name FROM metric_values {where} ORDER BY name", args)
        return [str(r[0]) for r in rows]

    def _changes(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        """``inputs_changed`` and ``outputs_changed`` of each run of a page."""
        changes: dict[str, dict[str, int]] = {}
        columns = ", ".join(BUILTIN[c][0] for c in CHANGE_COLUMNS)
        for start in range(0, len(run_ids), IN_CHUNK):
            chunk = run_ids[start : start + IN_CHUNK]
            for row in self.index.query(
                f"SELECT r.id, {columns} FROM runs r WHERE r.id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            ):
                changes[str(row[0])] = dict(zip(CHANGE_COLUMNS, (int(v) for v in row[1:]), strict=True))
        return changes

    def query(
        self,
        notebook: str | None = None,
        kind: str | None = "run",
        filters: list[str] | tuple[str, ...] = (),
        tags: list[str] | tuple[str, ...] = (),
        text: str | None = None,
        sort: str = "started",
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
        with_columns: bool = False,
        group: str | None = None,
    ) -> dict[str, Any]:
        """One page of the table: ``{"total", "offset", "runs", "columns"?}``; ``runs``
        are summaries as ``GET runs`` gives them (tags and note included).  ``group``
        (``notebook``, ``name`` or ``sweep``: the ``sweep:<id>`` tag) keeps each group's
        runs together, groups in alphabetical order (runs without one last), sorted
        within."""
        if len(filters) > MAX_FILTERS:
            raise BadQuery(f"at most {MAX_FILTERS} filters")
        if group is not None and group not in GROUPS:
            raise BadQuery(f"group must be one of {', '.join(GROUPS)}")
        state = tuple(self.index.query("SELECT COALESCE(MAX(seq), 0), TOTAL(seq), COUNT(*) FROM runs")[0])
        key = (
            str(self.index.path),
            notebook,
            kind,
            tuple(filters),
            tuple(tags),
            text,
            sort,
            descending,
            group,
            state,
        )
        with _ORDER_CACHE_LOCK:
            ordered = _ORDER_CACHE.get(key) if self.keep_order else None
            if ordered is not None:
                _ORDER_CACHE.move_to_end(key)
        if ordered is None:
            ordered, total, page_ids = self._order(
                notebook, kind, filters, tags, text, sort, descending, group, offset, limit, self.keep_order
            )
            if ordered is not None:
                with _ORDER_CACHE_LOCK:
                    _ORDER_CACHE[key] = ordered
                    while len(_ORDER_CACHE) > ORDER_CACHE_QUERIES:
                        _ORDER_CACHE.popitem(last=False)
        if ordered is not None:
            total, page_ids = len(ordered), ordered[offset : offset + limit]
        return self._page(notebook, total, offset, page_ids, with_columns)

    def _order(
        self,
        notebook: str | None,
        kind: str | None,
        filters: list[str] | tuple[str, ...],
        tags: list[str] | tuple[str, ...],
        text: str | None,
        sort: str,
        descending: bool,
        group: str | None,
        offset: int,
        limit: int,
        whole: bool,
    ) -> tuple[list[str] | None, int, list[str]]:
        """Sort the runs the query keeps: (with ``whole``, every id in order, else or when
        they are more than ORDER_CACHE_MAX_RUNS None; how many; the ids of the page)."""
        where: list[str] = []
        args: list[Any] = []
        if notebook is not None:
            where.append("r.notebook=?")
            args.append(notebook)
        if kind is not None:
            where.append("r.kind=?")
            args.append(kind)
        if text:
            where.append("(instr(r.search, ?) > 0 OR instr(lower(COALESCE(a.note, '')), ?) > 0)")
            args += [text.lower(), text.lower()]
        for tag in tags:
            where.append("r.id IN (SELECT run_id FROM run_tags WHERE tag=?)")
            args.append(tag)
        for text_filter in filters:
            condition = parse_filter(
                text_filter,
                lambda: set(self._metric_names(notebook)),
                lambda: set(self.columns(notebook)["params"]),
            )
            sql, sql_args = _condition_sql(condition)
            where.append(sql)
            args += sql_args
        base = "FROM runs r LEFT JOIN run_annotations a ON a.run_id = r.id"
        where_sql = (" WHERE " + " AND ".join(where)) if where else ""
        total = int(self.index.query(f"SELECT COUNT(*) {base}{where_sql}", tuple(args))[0][0])
        direction = "DESC" if descending else "ASC"
        sort_args: list[Any] = []
        if sort.startswith("metric:"):
            # A join on the (run_id, name) key: the sort reads one index entry per run.
            base += " LEFT JOIN metric_values s ON s.run_id = r.id AND s.name = ?"
            args = [sort[len("metric:") :], *args]
            sort_expr = "s.value"
        else:
            sort_expr, sort_args = _column_sql(sort)
        if sort in CHANGE_COLUMNS:
            # Never null: the count is computed once per row.
            order = f" ORDER BY {sort_expr} {direction}, r.id {direction}"
        else:
            order = f" ORDER BY ({sort_expr}) IS NULL, {sort_expr} {direction}, r.id {direction}"
            sort_args = [*sort_args, *sort_args]
        if group is not None:
            grouped = GROUPS[group]
            order = f" ORDER BY COALESCE({grouped}, '') = '', {grouped} ASC," + order[len(" ORDER BY") :]
        # Two steps: sort narrow rows (ids), then read only the page's summaries;
        # sorting whole summaries would move every row's JSON through the sorter.
        if whole and total <= ORDER_CACHE_MAX_RUNS:
            ordered = [
                str(r[0])
                for r in self.index.query(f"SELECT r.id {base}{where_sql}{order}", (*args, *sort_args))
            ]
            return ordered, len(ordered), ordered[offset : offset + limit]
        page_ids = [
            str(r[0])
            for r in self.index.query(
                f"SELECT r.id {base}{where_sql}{order} LIMIT ? OFFSET ?",
                (*args, *sort_args, limit, offset),
            )
        ]
        return None, total, page_ids

    def _page(
        self, notebook: str | None, total: int, offset: int, page_ids: list[str], with_columns: bool
    ) -> dict[str, Any]:
        """The page's runs: summaries with tags, note and change counts."""
        texts: dict[str, str] = {}
        for start in range(0, len(page_ids), IN_CHUNK):
            chunk = page_ids[start : start + IN_CHUNK]
            rows = self.index.query(
                "SELECT r.id, r.summary, a.tags, a.note FROM runs r"
                " LEFT JOIN run_annotations a ON a.run_id = r.id"
                f" WHERE r.id IN ({','.join('?' * len(chunk))})",
                tuple(chunk),
            )
            texts.update((str(r[0]), with_annotations(r[1], r[2], r[3])) for r in rows)
        changes = self._changes(page_ids)
        result: dict[str, Any] = {
            "total": total,
            "offset": offset,
            "runs": [{**json.loads(texts[i]), **changes.get(i, {})} for i in page_ids if i in texts],
        }
        if with_columns:
            result["columns"] = self.columns(notebook)
        return result
