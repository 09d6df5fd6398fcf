"""``dotnb reproduce``: re-execute a run's lineage in a clean folder and compare the results.

1. Read the run's lineage code from the store (every object verified); a
   missing or corrupted object means it cannot be reproduced (exit 2).
2. Materialise the notebook snapshot and the inputs in a clean work folder
   (:mod:`.workfolder`), with a store of its own.
3. Execute the lineage cells in order, up to and including the run's own cell,
   in a fresh kernel (:mod:`.kernel`), with ``DOTNB_REPRODUCES=<id>`` so the new
   run links to the original, and ``DOTNB_RUN_PARAMS`` set to the ``dotnb run
   -p`` values the original recorded, so the params are recorded the same way.
4. Import the new run into the original store and compare (:mod:`.compare`).

The verdict and its exit status: ``reproduced`` (0), ``differs`` (1),
``could not run`` (2).  ``causes`` says why a run may not reproduce: inputs that
were not stored, reads outside the project root, environment differences, and,
when none of those is present, randomness or other state inside the code.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dotnb.comparison.verdicts import EXTERNAL_SAME, Tolerance, compare_runs
from dotnb.headless import CouldNotRun
from dotnb.headless.execute import kernel_env
from dotnb.headless.kernel import ERROR, KERNEL_DIED, TIMEOUT, CellOutcome, execute_cells
from dotnb.headless.notebooks import first_line, lineage_notebook
from dotnb.headless.workfolder import Materialised, import_run, make_workdir, materialise, remove_workdir
from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
from dotnb.store.repo import Store
from dotnb.store.vocabulary import OK, RUN

REPRODUCED = "reproduced"
DIFFERS = "differs"
COULD_NOT_RUN = "could not run"
EXIT_CODES = {REPRODUCED: 0, DIFFERS: 1, COULD_NOT_RUN: 2}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def new_report(run_id: str, tolerance: Tolerance, original: dict[str, Any] | None = None) -> dict[str, Any]:
    m = original or {}
    return {
        "run": run_id,
        "number": m.get("number"),
        "notebook": m.get("notebook"),
        "name": m.get("name"),
        "verdict": COULD_NOT_RUN,
        "exit_code": EXIT_CODES[COULD_NOT_RUN],
        "reproduction": None,
        "reproduction_number": None,
        "tolerance": tolerance.as_json(),
        "rows": [],
        "environment": {},
        "causes": [],
        "error": None,
        "failed_cell": None,
        "warnings": [],
        "workdir": None,
    }


def set_verdict(report: dict[str, Any], verdict: str) -> None:
    report["verdict"] = verdict
    report["exit_code"] = EXIT_CODES[verdict]


def reproduce(
    store: Store,
    run_id: str,
    *,
    tolerance: Tolerance,
    workdir: Path | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    on_start: Callable[[CellOutcome], None] | None = None,
    on_end: Callable[[CellOutcome], None] | None = None,
) -> dict[str, Any]:
    """Reproduce run ``run_id`` of ``store``; returns the report (see :func:`new_report`).

    Raises :class:`CouldNotRun` (or another ``DotnbError``) when nothing could be
    executed; a run that executed and failed is a report with verdict ``could not run``.
    """
    original = store.manifest(run_id)
    if original.get("kind", RUN) != RUN:
        raise CouldNotRun(
            f"run {run_id} is a {original.get('kind')}, not a tracked run; it has no code to run"
        )
    cells = lineage_cells(store, original)
    report = new_report(run_id, tolerance, original)
    folder, temporary = make_workdir(workdir)
    report["workdir"] = None if temporary else str(folder)
    try:
        done = materialise(store, original, folder)
        report["warnings"] += done.warnings
        work = Store.init(folder)
        try:
            execution = execute_cells(
                lineage_notebook(cells, _kernelspec(store, original)),
                cwd=done.notebook.parent if done.notebook else folder,
                env=kernel_env(
                    os.environ,
                    root=work.root,
                    notebook=done.notebook,
                    params=recorded_run_params(original),
                    reproduces=run_id,
                ),
                kernel_name=kernel_name,
                timeout=timeout,
                track_all=_auto_tracked(original),
                on_start=on_start,
                on_end=on_end,
            )
            failed = execution.failed
            if failed is not None:
                report["failed_cell"] = failed_cell_json(failed)
                report["error"] = failure_message(failed, timeout)
            if failed is not None and failed.number < failed.total:
                # An earlier cell of the lineage failed: the run's own cell never ran.
                report["causes"] = explain(original, None, done, failed)
                return report
            reproduced_id = _reproduced_run(work, original)
            if reproduced_id is None:
                report["error"] = report["error"] or "the run's cell ran but recorded no run"
                return report
            producers = {
                e["hash"]: e["produced_by"] for e in original.get("inputs") or [] if e.get("produced_by")
            }
            summary = import_run(work, store, reproduced_id, producers)
        finally:
            work.close()
    finally:
        if temporary:
            remove_workdir(folder)

    report["reproduction"] = summary["id"]
    report["reproduction_number"] = summary.get("number")
    comparison = compare_runs(store, original, store.manifest(summary["id"]), tolerance)
    report["rows"] = comparison["rows"]
    report["environment"] = comparison["environment"]
    report["causes"] = explain(original, comparison, done, failed)
    if failed is not None and not _same_failure(original, store.manifest(summary["id"])):
        return report  # the run's own cell failed where the original did not
    set_verdict(report, REPRODUCED if comparison["ok"] else DIFFERS)
    return report


def lineage_cells(store: Store, manifest: dict[str, Any]) -> list[tuple[str, bool]]:
    """``(code, raised_originally)`` for each lineage cell, every code object verified."""
    try:
        lineage = store.lineage(manifest, strict=True)
    except DotnbError as exc:
        raise CouldNotRun(
            f"cannot reproduce run {manifest['id']}: its lineage cannot be read ({exc})"
        ) from None
    if not lineage:
        raise CouldNotRun(f"run {manifest['id']} has no lineage to execute")
    cells = []
    for number, cell in enumerate(lineage, start=1):
        digest = str(cell.get("code_hash"))
        try:
            code = (
                cell["code"]
                if "code" in cell
                else store.objects.read_bytes(digest).decode("utf-8", "surrogatepass")
            )
        except (ObjectMissing, ObjectCorrupt) as exc:
            damage = "corrupted" if isinstance(exc, ObjectCorrupt) else "missing from the store"
            raise CouldNotRun(
                f"cannot reproduce run {manifest['id']}: the code of lineage cell {number} of "
                f"{len(lineage)} (object {digest[:12]}) is {damage} (run `dotnb fsck`)"
            ) from None
        cells.append((code, cell.get("status") == "error"))
    if cells[-1][0] != (manifest.get("code") or ""):
        raise CouldNotRun(f"the lineage of run {manifest['id']} does not end with the run's own cell")
    return cells


def recorded_run_params(manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``dotnb run -p`` values the run recorded: overridden params not set by ``%%track --param``."""
    from dotnb.capture.options import TrackUsageError, parse_track_line, split_track_cell

    split = split_track_cell(manifest.get("code") or "")
    try:
        own = parse_track_line(split[0]).params if split else {}
    except TrackUsageError:
        own = {}
    params = manifest.get("params") or {}
    return {k: params[k] for k in manifest.get("param_overrides") or [] if k in params and k not in own}


def _auto_tracked(manifest: dict[str, Any]) -> bool:
    """Recorded under ``%dotnb track all`` (or ``dotnb run --track-all``): no ``%%track`` line."""
    from dotnb.capture.options import split_track_cell

    return split_track_cell(manifest.get("code") or "") is None


def _kernelspec(store: Store, manifest: dict[str, Any]) -> dict[str, Any] | None:
    snap = manifest.get("notebook_snapshot")
    if not isinstance(snap, dict) or not snap.get("hash"):
        return None
    try:
        doc = json.loads(store.objects.read_bytes(snap["hash"]))
        spec = doc["metadata"]["kernelspec"]
    except Exception:
        return None
    return spec if isinstance(spec, dict) and isinstance(spec.get("name"), str) else None


def _reproduced_run(work: Store, original: dict[str, Any]) -> str | None:
    rows = work.list_runs(kind=RUN, limit=1)
    if not rows:
        return None
    candidate = work.manifest(rows[0]["id"])
    if candidate.get("code") != original.get("code") or candidate.get("reproduces") != original["id"]:
        return None
    return str(candidate["id"])


def _same_failure(original: dict[str, Any], reproduced: dict[str, Any]) -> bool:
    if original.get("status") == OK:
        return False
    a, b = original.get("error") or {}, reproduced.get("error") or {}
    return bool(original.get("status") == reproduced.get("status") and a.get("type") == b.get("type"))


def failed_cell_json(cell: CellOutcome) -> dict[str, Any]:
    error = cell.error or {}
    return {
        "number": cell.number,
        "total": cell.total,
        "first_line": first_line(cell.source),
        "status": cell.status,
        "ename": error.get("ename"),
        "evalue": error.get("evalue"),
        "traceback": [_ANSI.sub("", line) for line in error.get("traceback") or []],
    }


def failure_message(cell: CellOutcome, timeout: float | None) -> str:
    where = f"lineage cell {cell.number} of {cell.total} ({first_line(cell.source)})"
    if cell.status == TIMEOUT:
        return f"{where} did not finish within {timeout:g} s and was interrupted"
    if cell.status == KERNEL_DIED:
        return f"the kernel died during {where}"
    error = cell.error or {}
    return f"{where} raised {error.get('ename')}: {error.get('evalue')}"


def explain(
    original: dict[str, Any],
    comparison: dict[str, Any] | None,
    done: Materialised,
    failed: CellOutcome | None,
) -> list[str]:
    """What can make this run not reproduce, most specific first."""
    causes: list[str] = []
    explained = False  # a cause that accounts for a difference, so randomness is not blamed
    for item in done.not_stored:
        causes.append(f"input {item['path']} was not stored ({item['reason']}), so it could not be restored")
        explained = True
    rows = comparison["rows"] if comparison else []
    external = {r["name"]: r for r in rows if r["kind"] == "external"}
    for entry in original.get("external_inputs") or []:
        path = str(entry.get("path"))
        r = external.get(path)
        state = r["detail"] if r is not None else "outside the project root"
        causes.append(
            f"{path} is not stored: it is {state} (move it under the project root to have it stored)"
        )
        explained = explained or r is None or r["detail"] != EXTERNAL_SAME
    for r in rows:
        if r["kind"] == "input" and not r["ok"]:
            causes.append(
                f"input {r['name']} {r['verdict']}: the original's bytes were restored, so an earlier cell "
                "of the lineage wrote it differently this time"
            )
            explained = True
    environment = comparison["environment"] if comparison else {}
    differs = failed is not None or not comparison or not comparison["ok"]
    if environment and differs:  # when the run reproduced, the report lists them anyway
        shown = ", ".join(f"{k} {_text(a)} → {_text(b)}" for k, (a, b) in list(environment.items())[:8])
        more = f" and {len(environment) - 8} more" if len(environment) > 8 else ""
        causes.append(f"the environment differs: {shown}{more}")
        explained = True
    if failed is not None and failed.status == ERROR:
        ename = (failed.error or {}).get("ename")
        if ename in ("ModuleNotFoundError", "ImportError"):
            causes.append("a package the lineage imports is missing from this environment")
        elif ename in ("FileNotFoundError", "NotADirectoryError"):
            causes.append(
                "the lineage reads a file the run did not store: a file read by an untracked cell, or "
                "outside the project root (track that cell with %%track, or run with --track-all)"
            )
    drifted = [r for r in rows if not r["ok"] and r["kind"] in ("metric", "output", "param", "status")]
    if drifted and not explained:
        causes.append(
            "same code, same inputs and the same environment: the difference comes from inside the "
            "code, such as unseeded randomness (seed it: np.random.default_rng(0), random_state=0), "
            "the clock or the network"
        )
    return causes


def _text(value: Any) -> str:
    return "(absent)" if value is None else str(value)
