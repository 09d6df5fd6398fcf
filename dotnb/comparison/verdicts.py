"""Comparing a reproduction with the run it reproduces: status, params, metrics, files, environment.

Pure store-level functions: both runs are in one store (the reproduction has
been imported), and the result is plain JSON, so the REST API can serve it.

One row per thing compared: ``{"kind", "name", "original", "reproduced",
"verdict", "detail", "ok"}``.  Verdicts:

- ``same``: equal (params, status, hashes, metrics bit for bit);
- ``within tolerance``: numbers, or CSV/Parquet contents, differ by no more than
  ``atol + rtol * |original|`` (the rule of ``numpy.isclose``);
- ``differs``, ``missing`` (only the original has it), ``new`` (only the
  reproduction has it): the run did not reproduce;
- ``not stored``: the original has no content for it (a file outside the project
  root, or over the size limit), so it cannot be checked: reported, and it does
  not fail the reproduction by itself; the results it changes do.

Environment differences (Python, platform, package versions) are returned apart:
they explain a difference, and do not by themselves make a run fail to
reproduce.  Host, user, interpreter path, CPU and memory, and git state (a
reproduction runs from the stored snapshot, not from a checkout) are not compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from dotnb.store.repo import Store
from dotnb.store.trees import expand_entries, is_tree
from dotnb.store.vocabulary import OK, no_content_reason

SAME = "same"
CLOSE = "within tolerance"
DIFFERS = "differs"
MISSING = "missing"
NEW = "new"
NOT_STORED = "not stored"

EXTERNAL_SAME = "outside the project root; re-read from disk: same size and mtime as in the original run"
EXTERNAL_CHANGED = "outside the project root; re-read from disk: changed since the original run"
EXTERNAL_UNREAD = "outside the project root; the reproduction did not read it"
EXTERNAL_NEW = "outside the project root; only the reproduction read it"

TABULAR = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
ENV_NOT_COMPARED = frozenset({"host", "user", "executable", "cpu_count", "memory_bytes"})


@dataclass(frozen=True)
class Tolerance:
    rtol: float = 1e-5
    atol: float = 1e-8

    def close(self, original: float, reproduced: float) -> bool:
        if original == reproduced:
            return True
        if math.isnan(original) or math.isnan(reproduced):
            return math.isnan(original) and math.isnan(reproduced)
        return abs(reproduced - original) <= self.atol + self.rtol * abs(original)

    def as_json(self) -> dict[str, float]:
        return {"rtol": self.rtol, "atol": self.atol}


def row(
    kind: str, name: str, original: Any, reproduced: Any, verdict: str, detail: str | None = None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "name": name,
        "original": original,
        "reproduced": reproduced,
        "verdict": verdict,
        "detail": detail,
        "ok": verdict in (SAME, CLOSE, NOT_STORED),
    }


def compare_runs(
    store: Store, original: dict[str, Any], reproduced: dict[str, Any], tolerance: Tolerance
) -> dict[str, Any]:
    rows = [status_row(original, reproduced)]
    rows += compare_params(original.get("params") or {}, reproduced.get("params") or {})
    rows += compare_metrics(original.get("metrics") or {}, reproduced.get("metrics") or {}, tolerance)
    for key in ("inputs", "outputs"):
        a, b = original.get(key) or [], reproduced.get(key) or []
        rows += same_trees(key[:-1], a, b)
        a, b = _without_same_trees(a, b), _without_same_trees(b, a)
        load = store.objects.read_bytes
        rows += compare_files(store, key[:-1], expand_entries(a, load), expand_entries(b, load), tolerance)
    rows += external_rows(original, reproduced)
    return {
        "rows": rows,
        "environment": environment_differences(store, original, reproduced),
        "ok": all(r["ok"] for r in rows),
    }


def same_trees(kind: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row for each folder both runs recorded as the same tree: every file in it
    is the same, and none is listed."""
    theirs = {e["path"]: e["tree"] for e in b if is_tree(e)}
    rows = []
    for e in a:
        if is_tree(e) and theirs.get(e["path"]) == e["tree"]:
            files = int(e.get("files") or 0)
            detail = f"a folder of {files:,} file{'s' if files != 1 else ''}, all the same"
            rows.append(row(kind, e["path"] + "/", e["tree"], e["tree"], SAME, detail))
    return rows


def _without_same_trees(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    theirs = {e["path"]: e["tree"] for e in b if is_tree(e)}
    return [e for e in a if not (is_tree(e) and theirs.get(e["path"]) == e["tree"])]


def status_row(original: dict[str, Any], reproduced: dict[str, Any]) -> dict[str, Any]:
    a, b = original.get("status", OK), reproduced.get("status", OK)
    detail = None
    verdict = SAME if a == b else DIFFERS
    error_a, error_b = original.get("error") or {}, reproduced.get("error") or {}
    if b != "ok" and error_b:
        detail = f"{error_b.get('type')}: {error_b.get('message')}"
    if verdict == SAME and error_a.get("type") != error_b.get("type"):
        verdict = DIFFERS
    return row("status", "", a, b, verdict, detail)


def compare_params(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name in _names(a, b):
        if name not in b:
            rows.append(row("param", name, a[name], None, MISSING))
        elif name not in a:
            rows.append(row("param", name, None, b[name], NEW))
        else:
            rows.append(row("param", name, a[name], b[name], SAME if a[name] == b[name] else DIFFERS))
    return rows


def compare_metrics(a: dict[str, Any], b: dict[str, Any], tolerance: Tolerance) -> list[dict[str, Any]]:
    rows = []
    for name in _names(a, b):
        if name not in b:
            rows.append(row("metric", name, a[name], None, MISSING))
            continue
        if name not in a:
            rows.append(row("metric", name, None, b[name], NEW))
            continue
        x, y = a[name], b[name]
        if x == y:
            rows.append(row("metric", name, x, y, SAME))
        elif _is_number(x) and _is_number(y) and tolerance.close(float(x), float(y)):
            rows.append(row("metric", name, x, y, CLOSE, f"difference {float(y) - float(x):.3g}"))
        elif _is_number(x) and _is_number(y):
            rows.append(row("metric", name, x, y, DIFFERS, f"difference {float(y) - float(x):.3g}"))
        else:
            rows.append(row("metric", name, x, y, SAME if x == y else DIFFERS))
    return rows


def compare_files(
    store: Store,
    kind: str,
    a: list[dict[str, Any]],
    b: list[dict[str, Any]],
    tolerance: Tolerance,
) -> list[dict[str, Any]]:
    first = {e["path"]: e for e in a}
    second = {e["path"]: e for e in b}
    rows = []
    for path in _names(first, second):
        x, y = first.get(path), second.get(path)
        if y is None:
            rows.append(row(kind, path, _hash(x), None, MISSING, "not read or written by the reproduction"))
            continue
        if x is None:
            rows.append(row(kind, path, None, _hash(y), NEW, "only the reproduction read or wrote it"))
            continue
        hx, hy = x.get("hash"), y.get("hash")
        if not hx:
            detail = f"the original has no stored content ({no_content_reason(x)})"
            rows.append(row(kind, path, None, hy, NOT_STORED, detail))
        elif hx == hy:
            rows.append(row(kind, path, hx, hy, SAME))
        elif not hy:
            rows.append(row(kind, path, hx, None, DIFFERS, "the reproduction has no stored content"))
        elif PurePosixPath(path).suffix.lower() in TABULAR:
            close, detail = tabular_close(store, path, hx, hy, tolerance)
            rows.append(row(kind, path, hx, hy, CLOSE if close else DIFFERS, detail))
        else:
            rows.append(row(kind, path, hx, hy, DIFFERS, f"{x.get('size')} → {y.get('size')} bytes"))
    return rows


def external_rows(original: dict[str, Any], reproduced: dict[str, Any]) -> list[dict[str, Any]]:
    """Reads outside the project root: never stored, so only their size and mtime can be compared."""
    now = {e.get("path"): e for e in reproduced.get("external_inputs") or []}
    rows = []
    for entry in original.get("external_inputs") or []:
        path = str(entry.get("path"))
        again = now.pop(path, None)
        if again is None:
            state = EXTERNAL_UNREAD
        elif (again.get("size"), again.get("mtime_ns")) == (entry.get("size"), entry.get("mtime_ns")):
            state = EXTERNAL_SAME
        else:
            state = EXTERNAL_CHANGED
        rows.append(
            row("external", path, entry.get("size"), again.get("size") if again else None, NOT_STORED, state)
        )
    for path, entry in now.items():
        rows.append(row("external", str(path), None, entry.get("size"), NOT_STORED, EXTERNAL_NEW))
    return rows


def environment_differences(
    store: Store, original: dict[str, Any], reproduced: dict[str, Any]
) -> dict[str, list[Any]]:
    """``{key: [original, reproduced]}`` for Python, platform and ``pkg:NAME`` versions that differ."""
    from dotnb.comparison.diff import environment_view
    from dotnb.store.views import distributions

    a, b = environment_view(store, original), environment_view(store, reproduced)
    # A run whose package list is unknown says nothing about packages: compare none.
    packages = distributions(store, original) is not None and distributions(store, reproduced) is not None
    found = {}
    for key in sorted(set(a) | set(b)):
        if key in ENV_NOT_COMPARED or key.startswith("git."):
            continue
        if key.startswith("pkg:") and not packages:
            continue
        if a.get(key) != b.get(key):
            found[key] = [a.get(key), b.get(key)]
    return found


def tabular_close(store: Store, path: str, first: str, second: str, tolerance: Tolerance) -> tuple[bool, str]:
    """Whether two CSV/Parquet objects hold the same table up to the float tolerance."""
    kind = TABULAR[PurePosixPath(path).suffix.lower()]
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False, "contents differ (pandas is not installed, so tables are compared by hash only)"
    try:
        a, b = _read_table(store, first, kind), _read_table(store, second, kind)
    except Exception as exc:
        return False, f"contents differ (cannot be read as {kind}: {type(exc).__name__})"
    return frames_close(a, b, tolerance)


def _read_table(store: Store, digest: str, kind: str) -> Any:
    import pandas as pd

    store.objects.ensure([digest])  # an original pulled from a remote
    if not store.objects.verify(digest):
        raise ValueError(f"object {digest[:12]} is missing or corrupted")
    with store.objects.open(digest) as f:
        if kind == "parquet":
            return pd.read_parquet(f)
        return pd.read_csv(f, sep="\t" if kind == "tsv" else ",")


def frames_close(a: Any, b: Any, tolerance: Tolerance) -> tuple[bool, str]:
    """Same columns, shape and index; numeric columns close, the others equal."""
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if list(a.columns) != list(b.columns):
        return False, "the columns differ"
    if a.shape != b.shape:
        return False, f"{a.shape[0]} → {b.shape[0]} rows"
    if not a.index.equals(b.index):
        return False, "the row index differs"
    worst = 0.0
    for i, name in enumerate(a.columns):
        x, y = a.iloc[:, i], b.iloc[:, i]
        numeric = all(is_numeric_dtype(s) and not is_bool_dtype(s) for s in (x, y))
        if not numeric:
            if not x.equals(y):
                return False, f"column {name!r} differs"
            continue
        xv = x.to_numpy(dtype="float64", na_value=np.nan)
        yv = y.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            diff = np.abs(yv - xv)
            ok = (
                (xv == yv)
                | (np.isnan(xv) & np.isnan(yv))
                | (diff <= tolerance.atol + tolerance.rtol * np.abs(xv))
            )
        if not ok.all():
            at = int(np.argmin(ok))
            return False, f"column {name!r} row {at}: {xv[at]:.6g} → {yv[at]:.6g}"
        finite = diff[np.isfinite(diff)]
        if finite.size:
            worst = max(worst, float(finite.max()))
    return True, f"table contents equal, largest difference {worst:.3g}"


def _names(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def _hash(entry: dict[str, Any] | None) -> str | None:
    return entry.get("hash") if entry else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
