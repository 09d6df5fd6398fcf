"""The Experiments table's server side (``GET table``) on a store of 10,000 runs with
10 params and 10 metrics each, 3 input and 2 output files (``--quick``: 1,000),
through ``RunTable`` in-process:
the first page with its columns (what the view asks first), a sort on a metric and
on a param, a metric filter, a tag filter, a sort and filters on the input/output
change counts, and the CSV export's pages, each sorted afresh; and a later page of
a sorted query, whose order the first page's query kept (a scroll).  Median of 20.
The browser side (first rows, sort, scrolling in Chromium) is measured by
tests/ui/test_experiments_ui.py, which prints its figures.

    .venv/bin/python bench/experiments_table.py [--quick]
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dotnb.store.annotating import tag_run
from dotnb.store.manifest import iso_time
from dotnb.store.repo import Store
from dotnb.store.run_table import RunTable

PARAMS = [f"p{i:02d}" for i in range(10)]
METRICS = [f"m{i:02d}" for i in range(10)]


def versions(store: Store, path: str, count: int) -> list[dict[str, Any]]:
    """``count`` recorded versions of the file ``path`` (manifest entries)."""
    entries = []
    for v in range(count):
        (store.root / path).write_text(f"{path} version {v}\n")
        entries.append(store.snapshot_files([path])[0])
    return entries


def seed(root: Path, runs: int, notebooks: int = 4) -> list[str]:
    """``runs`` runs over ``notebooks`` notebooks, 10 params and 10 metrics each; every
    100th run tagged ``best``.  Each reads 3 files (one never changes, one of 20
    configs, a feature file changing every 10th run) and writes 2 (a model of 50
    versions, a report that never changes): what ``inputs_changed`` and
    ``outputs_changed`` compare."""
    rng = random.Random(19)
    store = Store.init(root)
    ids = []
    data = versions(store, "data.csv", 1)[0]
    configs = versions(store, "config.json", 20)
    features = versions(store, "features.bin", runs // 10 + 1)
    models = versions(store, "model.pkl", 50)
    report = versions(store, "report.txt", 1)[0]
    try:
        for n in range(runs):
            manifest: dict[str, Any] = {
                "kind": "run",
                "name": f"sweep {n}",
                "notebook": f"nb{n % notebooks}.ipynb",
                "code": f"lr = {n}\n",
                "lineage": [],
                "params": {p: round(rng.random(), 4) for p in PARAMS},
                "metrics": {m: round(rng.random(), 4) for m in METRICS},
                "metric_series": {},
                "inputs": [data, rng.choice(configs), features[n // 10]],
                "outputs": [rng.choice(models), report],
                "status": "ok" if n % 13 else "error",
                "error": None,
                "started_at": iso_time(time.time()),
                "duration_s": rng.random() * 60,
                "environment": {"user": f"user{n % 3}", "host": "box"},
            }
            ids.append(str(store.commit_run(manifest, sync=False)["id"]))
        store.flush()
        for run_id in ids[::100]:
            tag_run(store, run_id, ["best"])
    finally:
        store.close()
    return ids


def median_ms(fn: Any, repeat: int = 20) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    runs = 1000 if "--quick" in sys.argv else 10_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        seed(root, runs)
        print(f"seeded {runs} runs in {time.perf_counter() - start:.1f} s")
        store = Store(root)
        # Each query sorted afresh, as the first page of a new sort or filter is (the
        # same query timed 20 times would otherwise find its order kept).
        table = RunTable(store.index, keep_order=False)
        kept = RunTable(store.index)
        kept.query(sort="metric:m03", limit=200)
        cases = {
            "first page + columns (all notebooks)": lambda: table.query(limit=200, with_columns=True),
            "first page + columns (one notebook)": lambda: table.query(
                notebook="nb1.ipynb", limit=200, with_columns=True
            ),
            "sort by metric m03, first page": lambda: table.query(sort="metric:m03", limit=200),
            "sort by metric m03 ascending, page at 9,800": lambda: table.query(
                sort="metric:m03", descending=False, offset=runs - 200, limit=200
            ),
            "sort by param p05, first page": lambda: table.query(sort="param:p05", limit=200),
            "filter m01 > 0.9, sort by m02": lambda: table.query(
                filters=["m01 > 0.9"], sort="metric:m02", limit=200
            ),
            "filter tag = best": lambda: table.query(filters=["tag = best"], limit=200),
            "sort by inputs_changed, first page": lambda: table.query(sort="inputs_changed", limit=200),
            "filter inputs_changed > 1, sort by m02": lambda: table.query(
                filters=["inputs_changed > 1"], sort="metric:m02", limit=200
            ),
            "filter outputs_changed = 0 (one notebook)": lambda: table.query(
                notebook="nb1.ipynb", filters=["outputs_changed = 0"], limit=200
            ),
            "sort by metric m03, a later page (order kept)": lambda: kept.query(
                sort="metric:m03", offset=runs // 2, limit=200
            ),
            "columns only": lambda: table.columns(),
            "CSV export (every row, pages of 1,000)": lambda: [
                table.query(offset=o, limit=1000) for o in range(0, runs, 1000)
            ],
        }
        print(f"{'query':48} median ms (of 20)")
        for label, fn in cases.items():
            print(f"{label:48} {median_ms(fn):8.1f}")
        store.close()


if __name__ == "__main__":
    main()
