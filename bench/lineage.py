"""``dotnb lineage``: upstream of a file with a 1,000-run history across 5 notebooks.

The history is a pipeline run 200 times (40 with ``--quick``) through five notebooks,
made through the store API (``Store.commit_run(..., sync=False)``): ``prepare``
(a raw file → a clean table), ``features``, ``train`` (features + a config file → a
model), ``evaluate`` (model + a test set → a report) and ``summarise`` (the report
and the previous summary → a new summary).  Each input names its producer, as
capture does.  The newest summary therefore descends from every run: its upstream
is the whole history (1,000 runs, about 1,200 file contents).  Measured in-process,
median of 20 after a warm-up:

- upstream of the newest model (``lineage_of_path``: 3 runs);
- upstream of the newest summary (the whole history).  Goal: ≤ 50 ms;
- downstream of the first raw file (every run after it);
- the same upstream answered by reading and parsing every manifest instead of
  the index (what the index spares).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from harness import median, ms, parse_args, print_header, print_table, ratio, scratch, timed, verdict

from dotnb.store import Store
from dotnb.store.content_lineage import DOWNSTREAM, UPSTREAM, lineage_of_path
from dotnb.store.manifest import iso_time

NOTEBOOKS = ("prepare.ipynb", "features.ipynb", "train.ipynb", "evaluate.ipynb", "summarise.ipynb")
GOAL_S = 0.050
REPS = 20


def fill(store: Store, rounds: int) -> tuple[str, str]:
    """``rounds`` passes of the pipeline; returns the paths of the newest model and summary,
    written to the project as the last runs left them."""
    producers: dict[str, str] = {}  # hash -> run that wrote it
    put = store.objects.put_bytes

    def entry(path: str, data: bytes) -> dict[str, Any]:
        digest, _ = put(data, sync=False)
        found = {"path": path, "hash": digest, "size": len(data)}
        if digest in producers:
            found["produced_by"] = producers[digest]
        return found

    def run(notebook: str, reads: dict[str, bytes], writes: dict[str, bytes], i: int) -> None:
        manifest: dict[str, Any] = {
            "kind": "run",
            "name": None,
            "notebook": notebook,
            "code": f"step({i})\n",
            "lineage": [],
            "params": {"round": i},
            "metrics": {},
            "metric_series": {},
            "inputs": [entry(p, d) for p, d in reads.items()],
            "outputs": [entry(p, d) for p, d in writes.items()],
            "status": "ok",
            "error": None,
            "started_at": iso_time(time.time()),
            "duration_s": 0.1,
            "environment": {"user": "bench", "host": "box"},
        }
        run_id = store.commit_run(manifest, sync=False)["id"]
        for e in manifest["outputs"]:
            producers[e["hash"]] = run_id

    config = b"lr: 0.1\n"
    test = b"x,y\n9,9\n"
    summary = b"start\n"
    model = b""
    for i in range(rounds):
        raw = f"raw {i}\n".encode()
        clean, feats = f"clean {i}\n".encode(), f"features {i}\n".encode()
        model, report = f"model {i}\n".encode(), f"report {i}\n".encode()
        run(NOTEBOOKS[0], {f"raw/{i:03d}.csv": raw}, {"work/clean.csv": clean}, i)
        run(NOTEBOOKS[1], {"work/clean.csv": clean}, {"work/features.parquet": feats}, i)
        run(
            NOTEBOOKS[2],
            {"work/features.parquet": feats, "config.yml": config},
            {"models/model.pkl": model},
            i,
        )
        run(
            NOTEBOOKS[3],
            {"models/model.pkl": model, "data/test.csv": test},
            {"reports/report.json": report},
            i,
        )
        previous, summary = summary, summary + report
        run(
            NOTEBOOKS[4],
            {"reports/report.json": report, "summary.txt": previous},
            {"summary.txt": summary},
            i,
        )
    for rel, data in (("models/model.pkl", model), ("summary.txt", summary), ("raw/000.csv", b"raw 0\n")):
        (store.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (store.root / rel).write_bytes(data)
    return "models/model.pkl", "summary.txt"


def scan_upstream(store: Store, digest: str) -> set[str]:
    """Upstream runs of ``digest`` found by reading every manifest (no lineage index)."""
    manifests = [store.manifest(r) for r in store.index.all_run_ids()]
    wrote: dict[str, list[dict[str, Any]]] = {}
    for m in manifests:
        for e in m.get("outputs") or []:
            wrote.setdefault(e.get("hash") or "", []).append(m)
    runs: set[str] = set()
    todo = [digest]
    seen = {digest}
    while todo:
        for m in wrote.get(todo.pop(), []):
            if m["id"] in runs:
                continue
            runs.add(m["id"])
            for e in m.get("inputs") or []:
                if e.get("hash") and e["hash"] not in seen:
                    seen.add(e["hash"])
                    todo.append(e["hash"])
    return runs


def main() -> None:
    args = parse_args(__doc__ or "")
    rounds = 40 if args.quick else 200
    runs = rounds * len(NOTEBOOKS)
    print_header(f"lineage: {runs:,} runs across {len(NOTEBOOKS)} notebooks", args.quick)
    with scratch("lineage") as tmp:
        project = tmp / "project"
        project.mkdir()
        store = Store.init(project)
        try:
            start = time.perf_counter()
            model, summary = fill(store, rounds)
            store.flush()
            fill_s = time.perf_counter() - start
        finally:
            store.close()
        store = Store(Path(project))
        try:
            whole = lineage_of_path(store, summary, UPSTREAM)
            if len(whole.runs()) != runs:
                raise RuntimeError(f"upstream of {summary} has {len(whole.runs())} runs, not {runs}")
            digest = whole.nodes[whole.root]["hash"]
            if scan_upstream(store, digest) != set(whole.runs()):
                raise RuntimeError("the manifest scan and the index disagree")
            cases = {
                f"upstream of {model} (3 runs)": lambda: lineage_of_path(store, model, UPSTREAM),
                f"upstream of {summary} (all {runs:,} runs)": lambda: lineage_of_path(
                    store, summary, UPSTREAM
                ),
                "downstream of raw/000.csv": lambda: lineage_of_path(store, "raw/000.csv", DOWNSTREAM),
                f"upstream of {summary} by scanning manifests": lambda: scan_upstream(store, digest),
            }
            times: dict[str, list[float]] = {label: [] for label in cases}
            for fn in cases.values():
                fn()
            for _ in range(REPS):
                for label, fn in cases.items():
                    times[label].append(timed(fn))
            contents = len(whole.contents())
        finally:
            store.close()

    print(f"   filled {runs:,} runs in {fill_s:.1f} s; the whole upstream holds {contents:,} file contents")
    indexed = median(times[f"upstream of {summary} (all {runs:,} runs)"])
    rows = []
    for label, values in times.items():
        value = median(values)
        goal = verdict(value, GOAL_S) if label.endswith(f"(all {runs:,} runs)") else ""
        rows.append([label, ms(value), ratio(value, indexed), goal])
    print_table(
        f"in-process, median of {REPS} (goal: whole upstream ≤ {GOAL_S * 1000:.0f} ms)",
        ["query", "time", "vs indexed whole upstream", "goal"],
        rows,
    )
    print(json.dumps({"runs": runs, "upstream_all_ms": round(indexed * 1000, 2)}))


if __name__ == "__main__":
    main()
