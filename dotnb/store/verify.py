"""``dotnb verify``: every manifest re-hashed, every writer's chain walked, every
signature checked (see :mod:`dotnb.store.chain` and :mod:`dotnb.store.signing`).

One report for a store and for a remote (:mod:`dotnb.remote.verify` reads a remote
and calls :func:`verify_runs`): ``ok`` is false when a chain breaks or a signature
is bad, or, with ``require_signed``, when a run lacks a good signature.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotnb.store.chain import MISSING, ChainRun, check_chains, read_run
from dotnb.store.errors import ObjectMissing
from dotnb.store.signing import BAD, GOOD, UNSIGNED, SignatureChecker, count_statuses

if TYPE_CHECKING:
    from dotnb.store.repo import Store

# The runs a report lists by signature status, at most (the counts are complete).
LISTED_RUNS = 200

# (run id, manifest hash from its ref or None when the ref is damaged)
RefList = Iterable[tuple[str, "str | None"]]


def verify_runs(
    refs: RefList,
    read_object: Callable[[str], bytes | None],
    read_signature: Callable[[str], bytes | None],
    checker: SignatureChecker,
    require_signed: bool = False,
    map_runs: Callable[..., Iterable[Any]] = map,
    indexed: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The verify report over ``refs``.  ``read_object`` returns an object's bytes as
    stored (None: missing), ``read_signature`` a run's signature file; ``indexed``
    (a local store) holds the index's rows, so a run whose ref is gone but which the
    index still lists is reported, and a missing run is named where it can be."""
    refs = list(refs)

    def read_one(item: tuple[str, str | None]) -> tuple[ChainRun | None, dict[str, Any] | None, bytes | None]:
        run_id, digest = item
        run, problem = read_run(run_id, digest, read_object)
        return run, problem, read_signature(run_id)

    runs: list[ChainRun] = []
    breaks: list[dict[str, Any]] = []
    signature_files: dict[str, bytes | None] = {}
    statuses: dict[str, dict[str, Any]] = {}
    for (run_id, _), (run, problem, data) in zip(refs, map_runs(read_one, refs), strict=True):
        if problem is not None:
            breaks.append(problem)
        if run is not None:
            runs.append(run)
            signature_files[run_id] = data
        else:
            statuses[run_id] = {"status": BAD, "reason": "the run cannot be read"}
    statuses.update(_check_signatures(runs, signature_files, checker))
    chain_breaks, counts = check_chains(runs)
    if indexed is not None:
        _name_missing(chain_breaks, indexed, {run.id for run in runs})
        present = {run_id for run_id, _ in refs}
        # A run the index still lists, named in a gap of its writer's chain, is that gap.
        present |= {run["id"] for item in chain_breaks for run in item["runs"]}
        for run_id, row in sorted(indexed.items()):
            if run_id not in present:
                breaks.append(
                    {
                        "kind": MISSING,
                        "message": f"run {run_id} is in the index but its ref runs/{run_id} is gone",
                        "writer": None,
                        "before": None,
                        "after": None,
                        "runs": [_brief(run_id, row)],
                    }
                )
    breaks += chain_breaks
    listed: dict[str, list[dict[str, Any]]] = {"unsigned": [], "bad": [], "unknown_key": []}
    for run_id, _ in refs:
        found = statuses[run_id]
        status = found["status"]
        if status != GOOD and len(listed[status]) < LISTED_RUNS:
            listed[status].append({"id": run_id, **{k: v for k, v in found.items() if k != "status"}})
    signatures = count_statuses(found["status"] for found in statuses.values())
    # A bad signature is evidence of tampering: it fails verify as a break does.
    # Unsigned runs and unknown keys fail only when every run must be signed.
    unsigned_fail = require_signed and signatures[GOOD] != len(statuses)
    return {
        "ok": not breaks and not signatures[BAD] and not unsigned_fail,
        "runs": len(refs),
        **counts,
        "breaks": breaks,
        "signatures": signatures,
        "require_signed": require_signed,
        "unsigned_runs": listed["unsigned"],
        "bad_signature_runs": listed["bad"],
        "unknown_key_runs": listed["unknown_key"],
    }


def _check_signatures(
    runs: list[ChainRun], files: dict[str, bytes | None], checker: SignatureChecker
) -> dict[str, dict[str, Any]]:
    """Each run's signature status, every signature checked in full (about 70 µs of CPU
    each here, 60 of them libsodium's Ed25519 verification; see bench/README.md).
    Nothing is remembered between runs of verify.  Not done: one check per unbroken
    stretch of a writer's chain (a signature over a run's manifest hash binds every
    earlier run its ``prev`` links reach); it would report a run whose own signature
    file was damaged as signed, where ``dotnb show`` reports it bad."""
    statuses: dict[str, dict[str, Any]] = {}
    for run in runs:
        data = files.get(run.id)
        versions = set(run.versions)
        statuses[run.id] = (
            {"status": UNSIGNED} if data is None else checker.check(data, versions.__contains__)
        )
    return statuses


def _brief(run_id: str, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": run_id,
        "number": row.get("number"),
        "notebook": row.get("notebook"),
        "started_at": row.get("started_at"),
        "seq": None,
    }


def _name_missing(
    breaks: list[dict[str, Any]], indexed: dict[str, dict[str, Any]], present: set[str]
) -> None:
    """Name, in each gap, the runs the index still lists between its two ends."""
    gone = sorted(run_id for run_id in indexed if run_id not in present)
    if not gone:
        return
    for item in breaks:
        if item["kind"] != MISSING or item["after"] is None:
            continue
        low = item["before"]["id"] if item["before"] else ""
        high = item["after"]["id"]
        item["runs"] = [_brief(r, indexed[r]) for r in gone if low < r < high][:LISTED_RUNS]


def verify_store(store: Store, require_signed: bool = False) -> dict[str, Any]:
    """:func:`verify_runs` over the local store's ``runs/``, objects and signatures."""
    from dotnb.store.hashing import is_hash
    from dotnb.store.layout import SIGNATURES_DIR, object_name

    runs_dir = str(store.runs_dir)
    objects_dir = str(store.objects.dir)

    # Plain paths read with os.read (see read_file): verify reads three small files a
    # run, and 10,000 runs must take under 2 s (pathlib's parsing alone would cost a
    # tenth of that).
    def read_ref(run_id: str) -> tuple[str, str | None]:
        try:
            # The hash is the first line; a first line this long is no hash anyway.
            head = read_file(os.path.join(runs_dir, run_id), limit=REF_HEAD)
        except OSError:  # gone meanwhile
            return run_id, None
        digest = head.partition(b"\n")[0].strip().decode("ascii", "replace")
        return run_id, digest if is_hash(digest) else None

    def read_object(digest: str) -> bytes | None:
        try:
            return read_file(os.path.join(objects_dir, object_name(digest)))
        except FileNotFoundError:
            pass
        try:
            return store.objects.read_bytes(digest, verify=False)  # packed, pending or pulled
        except ObjectMissing:
            return None

    signatures_dir = str(store.dir / SIGNATURES_DIR)
    signed = set(_names(Path(signatures_dir)))

    def read_signature(run_id: str) -> bytes | None:
        if run_id not in signed:
            return None
        try:
            return read_file(os.path.join(signatures_dir, run_id))
        except (FileNotFoundError, NotADirectoryError):  # removed meanwhile
            return None

    indexed = {
        str(row[0]): {"number": row[1], "notebook": row[2] or None, "started_at": row[3]}
        for row in store.index.query("SELECT id, number, notebook, started_at FROM runs")
    }
    report = verify_runs(
        (read_ref(name) for name in sorted(store.refs.names()) if not name.startswith(".")),
        read_object,
        read_signature,
        store.signature_checker(),
        require_signed=require_signed,
        indexed=indexed,
    )
    return {"where": "local", "store": str(store.dir), **report}


# The bytes of a ref read: its first line, a hash, and room to spare.
REF_HEAD = 256
READ_CHUNK = 1 << 16


def read_file(path: str, limit: int | None = None) -> bytes:
    """A file's bytes (its first ``limit`` at most), through os.open and os.read:
    ``open()`` builds a file object and a buffered reader for each file, about 4 µs
    a file more here, 0.13 s of CPU over the 30,000 files of 10,000 signed runs."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if limit is not None:
            return os.read(fd, limit)
        chunks = []
        while chunk := os.read(fd, READ_CHUNK):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
