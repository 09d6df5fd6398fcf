"""A clean work folder for a reproduction, and bringing the new run back into the store.

The work folder is a project of its own: the run's notebook snapshot and input
files are written there at their root-relative paths, and it has its own
``.dotnb/`` store, which the kernel records into.  Afterwards the reproduced run
is imported into the original store (its objects copied and verified, then its
manifest committed), so it is numbered and listed there like any run.

Why not share the original store (e.g. with ``.dotnb`` a symlink to it)?  A
separate store keeps the original untouched until one atomic commit, file
capture's inotify watches stay inside one real folder tree (they do not follow
symlinks), and outputs that reproduce exactly are already in the original
store, so importing them copies nothing.

Which bytes an input gets: the run's own input, unless an earlier tracked run of
its lineage read *and* wrote that path (the lineage changes the file in place,
e.g. appends to it); then the bytes that earlier run first read, so that
re-executing the lineage changes them again.  Paths only earlier runs of the
lineage read get the bytes the earliest of them read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.headless import CouldNotRun
from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing
from dotnb.store.paths import confine
from dotnb.store.repo import Store, manifest_objects
from dotnb.store.vocabulary import no_content_reason

IGNORE_FILE = ".dotnbignore"


@dataclass
class Materialised:
    notebook: Path | None = None  # the notebook file in the work folder
    files: dict[str, str] = field(default_factory=dict)  # rel path -> hash written
    not_stored: list[dict[str, Any]] = field(default_factory=list)  # {"path", "reason"}
    warnings: list[str] = field(default_factory=list)


def make_workdir(workdir: Path | None) -> tuple[Path, bool]:
    """The work folder (created) and whether it is a temporary one to remove afterwards."""
    if workdir is None:
        return Path(os.path.realpath(tempfile.mkdtemp(prefix="dotnb-reproduce-"))), True
    if workdir.exists():
        if not workdir.is_dir():
            raise CouldNotRun(f"--workdir {workdir} exists and is not a folder")
        if any(workdir.iterdir()):
            raise CouldNotRun(f"--workdir {workdir} is not empty; a reproduction needs a clean folder")
    workdir.mkdir(parents=True, exist_ok=True)
    return Path(os.path.realpath(workdir)), False


def remove_workdir(workdir: Path) -> None:
    # Store objects are read-only files, but removing a file needs only its folder writable.
    shutil.rmtree(workdir, ignore_errors=True)


def materialise(store: Store, manifest: dict[str, Any], workdir: Path) -> Materialised:
    """Write the run's notebook snapshot and inputs into ``workdir`` (verified copies)."""
    done = Materialised()
    for entry in _input_entries(store, manifest):
        rel = entry["path"]
        if not entry.get("hash"):
            done.not_stored.append({"path": rel, "reason": no_content_reason(entry)})
            continue
        try:
            copy_object(store, entry["hash"], confine(workdir, rel))
        except (ObjectMissing, ObjectCorrupt) as exc:
            damage = "corrupted" if isinstance(exc, ObjectCorrupt) else "missing from the store"
            raise CouldNotRun(
                f"input {rel!r} cannot be materialised: its object {entry['hash'][:12]} is {damage} "
                "(run `dotnb fsck`)"
            ) from None
        done.files[rel] = entry["hash"]

    notebook = manifest.get("notebook")
    snap = manifest.get("notebook_snapshot")
    if notebook:
        target = confine(workdir, notebook)
        done.notebook = target
        if isinstance(snap, dict) and snap.get("hash"):
            try:
                copy_object(store, snap["hash"], target)
            except (ObjectMissing, ObjectCorrupt) as exc:
                done.warnings.append(f"the notebook snapshot could not be materialised ({exc})")
        else:
            done.warnings.append("the run has no notebook snapshot; only its lineage is re-executed")
        target.parent.mkdir(parents=True, exist_ok=True)

    ignore = store.root / IGNORE_FILE
    if ignore.is_file():
        # The same ignore rules, so the reproduction classifies files as the original did.
        shutil.copyfile(ignore, workdir / IGNORE_FILE)
    return done


def _input_entries(store: Store, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    earliest: dict[str, dict[str, Any]] = {}
    rewritten: set[str] = set()
    for cell in store.lineage(manifest)[:-1]:
        run_id = cell.get("run")
        if not run_id or run_id == manifest["id"]:
            continue
        try:
            earlier = store.manifest(run_id)
        except DotnbError:
            continue  # a lineage run that is gone only loses this hint
        written = {e["path"] for e in store.files(earlier, "outputs")}
        for entry in store.files(earlier, "inputs"):
            earliest.setdefault(entry["path"], entry)
            if entry["path"] in written:
                rewritten.add(entry["path"])
    chosen = dict(earliest)
    for entry in store.files(manifest, "inputs"):
        if entry["path"] not in rewritten:
            chosen[entry["path"]] = entry
    return [chosen[rel] for rel in sorted(chosen)]


def copy_object(store: Store, digest: str, dest: Path) -> None:
    """Copy object ``digest`` to ``dest`` atomically, verifying its hash on the way."""
    store.objects.export(digest, dest)


def import_run(
    source: Store, target: Store, run_id: str, producers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Copy run ``run_id`` from ``source`` into ``target``; returns its summary there.

    Objects are copied first (hashed while copying; identical content already in
    ``target`` is not copied), then the manifest is committed, so a crash leaves
    at most unreferenced objects for gc.  What pointed into ``source`` is
    re-pointed: ``parent`` and lineage cells' ``run`` (runs ``target`` does not
    have) are dropped, and inputs' ``produced_by`` comes from ``producers`` (hash
    → run: a reproduction read the same bytes as its original, so it keeps the
    original's producers) or else is looked up in ``target``.
    """
    manifest = source.manifest(run_id)
    # The lineage is packed again here, without the cells' run ids (runs of ``source``).
    cells = [{k: v for k, v in cell.items() if k != "run"} for cell in source.lineage(manifest, strict=True)]
    for cell in cells:
        if "code" not in cell:
            cell["code"] = source.objects.read_bytes(cell["code_hash"]).decode("utf-8", "surrogatepass")
    manifest["lineage"] = target.pack_lineage(cells)
    for digest in sorted(manifest_objects(dict(manifest, lineage=[]), source.objects.read_bytes)):
        if target.objects.reuse(digest):
            continue
        path = source.objects.loose_path(digest)
        if path is None:  # packed: small, read whole (and checked) instead
            try:
                target.objects.install_bytes(digest, source.objects.read_bytes(digest))
            except ObjectCorrupt:
                raise ObjectCorrupt(f"object {digest[:12]} of the reproduced run is corrupted") from None
            except ObjectMissing:
                raise ObjectMissing(f"object {digest[:12]} of the reproduced run is missing") from None
            continue
        try:
            copied, _ = target.objects.put_file(path)
        except FileNotFoundError:
            raise ObjectMissing(f"object {digest[:12]} of the reproduced run is missing") from None
        if copied != digest:
            target.objects.remove(copied)
            raise ObjectCorrupt(f"object {digest[:12]} of the reproduced run is corrupted")
    manifest["parent"] = None
    for entry in manifest.get("inputs") or []:
        entry.pop("produced_by", None)
        if entry.get("hash"):
            producer = (producers or {}).get(entry["hash"]) or target.producer_of(entry["hash"])
            if producer is not None:
                entry["produced_by"] = producer
    return target.commit_run(manifest)
