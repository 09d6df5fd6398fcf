"""``dotnb log`` and ``Store.list_runs`` on a store with 10,000 runs across 20 notebooks.

The runs are made through the store API (``Store.commit_run(..., sync=False)``;
1,000 with ``--quick``).  Then:

- ``dotnb log --notebook nb07.ipynb --limit 50 --json`` as a subprocess, median
  of 20, next to ``python -c pass`` and ``python -c "import dotnb.cli.app"`` of the
  same interpreter (interleaved).  Measured twice: with the environment as it
  is (``PYTHONDONTWRITEBYTECODE=1`` here, so dotnb's own modules are compiled
  on every start: the editable install has no ``__pycache__``) and with
  bytecode caching on (``PYTHONDONTWRITEBYTECODE`` unset and
  ``PYTHONPYCACHEPREFIX`` in the scratch folder, warmed first), which is how
  an installed dotnb starts.  Goal, judged with bytecode caching: under 50 ms.
  The index is current when it is measured, so ``dotnb log`` reads it directly
  (``dotnb.store.listing``) without importing or opening the store, and the
  console script answers these arguments on its fast path (``dotnb.cli.entry``:
  no argparse, json, re or sqlite3.dbapi2 imported); the run checks both first.
- In-process ``store.list_runs(notebook=..., limit=50)``, median of 200, next to
  the bare SQL query it runs (no JSON decoding), opening the store for it, and
  what ``dotnb log --json`` does instead (``open_current_index`` +
  ``list_run_texts`` + ``indent_summaries``, the stored JSON texts re-indented
  without the json module).  Goal: under 5 ms.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    REPO,
    median,
    ms,
    parse_args,
    percentile,
    print_header,
    print_table,
    ratio,
    run_cmd,
    scratch,
    timed,
    verdict,
)

from dotnb.cli.entry import log_json_options
from dotnb.store import Store
from dotnb.store.listing import indent_summaries, open_current_index
from dotnb.store.manifest import iso_time

NOTEBOOKS = 20
TARGET = "nb07.ipynb"
LIMIT = 50
CLI_GOAL_S = 0.050
API_GOAL_S = 0.005
DOTNB = str(Path(sys.executable).with_name("dotnb"))


def fill(store: Store, runs: int) -> float:
    """``runs`` realistic runs, round-robin over the notebooks; returns the seconds it took."""
    data = b"x,y\n1,2\n3,4\n"
    data_hash, _ = store.objects.put_bytes(data, sync=False)
    start = time.perf_counter()
    for i in range(runs):
        lr, epochs = round(0.001 * (i % 50), 3), i % 10
        code = f"%%track --metrics acc\nlr = {lr}\nepochs = {epochs}\nacc = fit(lr, epochs)\n"
        code_hash, _ = store.objects.put_bytes(code.encode(), sync=False)
        manifest: dict[str, Any] = {
            "kind": "run",
            "name": None,
            "notebook": f"nb{i % NOTEBOOKS:02d}.ipynb",
            "code": code,
            "lineage": [{"execution_count": 1, "code_hash": code_hash, "tracked": True}],
            "params": {"lr": lr, "epochs": epochs},
            "metrics": {"acc": round(0.5 + (i % 97) / 200, 4)},
            "metric_series": {},
            "inputs": [{"path": "data/train.csv", "hash": data_hash, "size": len(data)}],
            "outputs": [],
            "status": "ok",
            "error": None,
            "started_at": iso_time(time.time()),
            "duration_s": 0.25,
            "environment": {"user": "bench", "host": "box", "python": "3.11.7"},
        }
        store.commit_run(manifest, sync=False)
    return time.perf_counter() - start


def dotnb_pyc_files() -> int:
    return sum(
        1
        for folder, _, files in os.walk(REPO / "dotnb")
        if os.path.basename(folder) == "__pycache__"
        for f in files
        if f.endswith(".pyc")
    )


LOG_LABEL = f"dotnb log --notebook {TARGET} --limit {LIMIT} --json"
LOG_ARGV = [DOTNB, "log", "--notebook", TARGET, "--limit", str(LIMIT), "--json"]


def cli_round(project: Path, env: dict[str, str], reps: int) -> dict[str, list[float]]:
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import dotnb.cli.app'": [sys.executable, "-c", "import dotnb.cli.app"],
        LOG_LABEL: LOG_ARGV,
    }
    for argv in commands.values():  # warm the page cache (and the bytecode cache, if on)
        for _ in range(2):
            run_cmd(argv, cwd=project, env=env)
    rows = json.loads(run_cmd(LOG_ARGV, cwd=project, env=env).stdout)
    if len(rows) != LIMIT or {r["notebook"] for r in rows} != {TARGET}:
        raise RuntimeError(f"dotnb log returned {len(rows)} rows, not {LIMIT} of {TARGET}")
    found: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(reps):
        for label, argv in commands.items():
            start = time.perf_counter()
            run_cmd(argv, cwd=project, env=env)
            found[label].append(time.perf_counter() - start)
    return found


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 1_000 if args.quick else 10_000
    cli_reps = 5 if args.quick else 20
    api_reps = 50 if args.quick else 200
    print_header(f"log query: {runs:,} runs across {NOTEBOOKS} notebooks", args.quick)
    with scratch("log-query") as tmp:
        project = tmp / "project"
        project.mkdir()
        store = Store.init(project)
        try:
            fill_s = fill(store, runs)
            store.flush()
        finally:
            store.close()
        reader = open_current_index(str(project), str(project))
        if reader is None:
            raise RuntimeError("the index is not current: dotnb log would open the store instead")
        reader.close()
        if log_json_options(LOG_ARGV[1:]) is None:
            raise RuntimeError(f"{LOG_LABEL} would not take the console script's fast path")

        as_is = dict(os.environ)
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        pyc_before = dotnb_pyc_files()
        cli = {
            "bytecode cached": cli_round(project, cached, cli_reps),
            f"as is (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!s})": cli_round(
                project, as_is, cli_reps
            ),
        }

        store = Store(project)
        try:
            sql = "SELECT summary FROM runs WHERE notebook=? ORDER BY id DESC LIMIT ?"
            opened = store

            def bare_sql() -> None:
                opened.index.query(sql, (TARGET, LIMIT))

            def list_runs() -> None:
                opened.list_runs(notebook=TARGET, limit=LIMIT)

            api: dict[str, Callable[[], None]] = {
                "bare SQL (no JSON decoding)": bare_sql,
                f"store.list_runs(notebook={TARGET!r}, limit={LIMIT})": list_runs,
                "Store(root) + list_runs + close": lambda: open_and_list(project),
                "open_current_index + list_run_texts + close + indent_summaries (dotnb log --json)": (
                    lambda: read_and_print(project)
                ),
            }
            api_times: dict[str, list[float]] = {label: [] for label in api}
            for fn in api.values():
                for _ in range(10):
                    fn()
            for _ in range(api_reps):
                for label, fn in api.items():
                    api_times[label].append(timed(fn))
            listed = store.list_runs(notebook=TARGET, limit=LIMIT)
        finally:
            store.close()

    print(f"   filled {runs:,} runs in {fill_s:.1f} s ({runs / fill_s:,.0f} runs/s through Store.commit_run)")
    print(f"   .pyc files in the repo's dotnb/ (left as found): {pyc_before} → {dotnb_pyc_files()}")
    print()
    rows = []
    for mode, found in cli.items():
        start = median(found["python -c pass"])
        for label, values in found.items():
            value = median(values)
            goal = ""
            if label == LOG_LABEL and mode == "bytecode cached":
                goal = f"{verdict(value, CLI_GOAL_S)} (< {ms(CLI_GOAL_S, 0)} ms)"
            rows.append(
                [
                    f"[{mode}] {label}",
                    ms(value, 1),
                    ms(percentile(values, 90), 1),
                    ms(value - start, 1),
                    ratio(value, start),
                    goal,
                ]
            )
    print_table(
        f"CLI, wall time of the subprocess (median of {cli_reps})",
        ["", "median ms", "p90 ms", "minus start-up ms", "vs python -c pass", "goal"],
        rows,
    )

    base = median(api_times["bare SQL (no JSON decoding)"])
    api_rows = []
    for label, values in api_times.items():
        value = median(values)
        goal = f"{verdict(value, API_GOAL_S)} (< {ms(API_GOAL_S, 0)} ms)" if "list_runs(" in label else ""
        api_rows.append([label, ms(value, 3), ms(percentile(values, 90), 3), ratio(value, base), goal])
    print_table(
        f"in-process (median of {api_reps}; {len(listed)} rows)",
        ["", "median ms", "p90 ms", "vs bare SQL", "goal"],
        api_rows,
    )


def open_and_list(project: Path) -> None:
    store = Store(project)
    try:
        store.list_runs(notebook=TARGET, limit=LIMIT)
    finally:
        store.close()


def read_and_print(project: Path) -> None:
    reader = open_current_index(str(project), str(project))
    assert reader is not None
    try:
        texts = reader.list_run_texts(notebook=reader.notebook_arg(TARGET), limit=LIMIT)
    finally:
        reader.close()
    if indent_summaries(texts) is None:
        raise RuntimeError("indent_summaries refused the index's texts")


if __name__ == "__main__":
    main()
