"""Each writer's runs chained by hash: what a new run's manifest records, and
checking every chain (``dotnb verify``).

A *writer* is one process recording into one store: a kernel, a ``dotnb`` command,
the Jupyter server.  Each run it records carries, inside its manifest (so inside
the manifest's hash)::

    "writer": {"id": W, "seq": N, "prev": H}

``W`` is an id made when the process opens the store (a ULID: a restarted kernel
is a new writer), ``N`` counts that writer's runs from 1, and ``H`` is the hash
of the manifest of its run ``N - 1`` (absent for ``N = 1``).  Deleting, editing,
replacing or reordering a run then shows as a break in its writer's chain:

- a manifest whose bytes no longer hash to its name was edited in place;
- a run whose successor links to another hash had its manifest replaced;
- a gap in ``N`` is a run deleted, two runs with one ``N`` a fork;
- a ref ``runs/A`` naming the manifest of run ``B`` was moved.

A manifest may be replaced legitimately after the run was recorded (the live
notebook snapshot JupyterLab attaches, a run renumbered after its index was
replaced): the new manifest then names the one it replaces in ``"amends"``, that
one is kept (:func:`dotnb.store.referenced.manifest_objects` lists it), and an
amendment may change only :data:`AMENDABLE`; a successor's ``prev`` may name any
version of the run.

What a chain cannot show: the newest runs of a writer deleted together (nothing
links to them yet), and a whole writer's runs deleted.  Signatures
(:mod:`dotnb.store.signing`) say who recorded a run; the chain says nothing was
taken out of the middle.  Manifests without ``writer`` (recorded before dotnb
chained runs, or imported from elsewhere) are counted as *unchained*, not as breaks.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from dotnb.store.hashing import hash_bytes, is_hash
from dotnb.store.ids import new_run_id
from dotnb.store.manifest import parse_manifest

# What an amendment of a manifest may change (see the module docstring).
AMENDABLE = frozenset({"number", "notebook_snapshot", "notebook_source", "amends"})

# The kinds of break verify reports.
MISSING = "missing"
EDITED = "edited"
FORK = "fork"
MISPLACED = "misplaced"


class WriterChain:
    """This process's chain in one store: the writer id, and its last run's seq and
    manifest hash.  A forked child starts a chain of its own."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self.pid = os.getpid()
        self.id = new_run_id()
        self.seq = 0
        self.last: str | None = None

    def link(self, manifest: dict[str, Any]) -> dict[str, Any] | None:
        """Put the chain fields in a new run's ``manifest`` (under :attr:`lock`); None
        when it has its own already (a run copied from another store keeps its chain)."""
        if "writer" in manifest:
            return None
        if self.pid != os.getpid():
            self._reset()
        writer: dict[str, Any] = {"id": self.id, "seq": self.seq + 1}
        if self.last is not None:
            writer["prev"] = self.last
        manifest["writer"] = writer
        return writer

    def advance(self, writer: dict[str, Any] | None, digest: str) -> None:
        """The run :meth:`link` chained was committed with manifest hash ``digest``."""
        if writer is not None and writer.get("id") == self.id:
            self.seq = writer["seq"]
            self.last = digest


def amendment_problem(new: dict[str, Any], old: dict[str, Any]) -> str | None:
    """Why ``new`` is not a legitimate amendment of ``old`` (None when it is)."""
    changed = sorted(
        key for key in set(new) | set(old) if key not in AMENDABLE and new.get(key) != old.get(key)
    )
    if changed:
        return "changes " + ", ".join(changed)
    return None


def manifest_versions(digest: str, read: Callable[[str], bytes], limit: int = 16) -> list[str]:
    """``digest`` and the hashes of the manifests it amends, newest first (as far as
    they can be read)."""
    found = [digest]
    current = digest
    while len(found) < limit:
        try:
            amends = parse_manifest(read(current)).get("amends")
        except Exception:
            break
        if not isinstance(amends, str) or amends in found:
            break
        found.append(amends)
        current = amends
    return found


# ---------------------------------------------------------------------------
# reading runs from a store or a remote


@dataclass
class ChainRun:
    """One run as verify reads it: the ref's hash, every version of its manifest, its link."""

    id: str
    digest: str
    versions: list[str] = field(default_factory=list)
    writer: str | None = None
    seq: int | None = None
    prev: str | None = None
    number: int | None = None
    notebook: str | None = None
    started_at: str | None = None

    def brief(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "notebook": self.notebook,
            "started_at": self.started_at,
            "seq": self.seq,
        }


ReadObject = Callable[[str], "bytes | None"]


def read_run(
    run_id: str, digest: str | None, read: ReadObject
) -> tuple[ChainRun | None, dict[str, Any] | None]:
    """The run ``runs/<run_id>`` names (manifest ``digest``), and a break saying what is
    wrong with it (None: nothing).  ``read`` returns an object's bytes as stored (None:
    missing).  A run whose manifest was edited keeps the place in its chain its
    manifest claims, so that its break is reported once, not again as a gap."""
    if digest is None or not is_hash(digest):
        return None, _break(MISSING, f"run {run_id}: its ref is damaged", runs=[{"id": run_id}])
    data = read(digest)
    if data is None:
        return None, _break(
            MISSING, f"run {run_id}: its manifest {digest[:12]} is missing", runs=[{"id": run_id}]
        )
    problem = None
    if hash_bytes(data) != digest:
        problem = _break(
            EDITED,
            f"run {run_id}: its manifest {digest[:12]} was edited (its bytes no longer match its hash)",
            runs=[{"id": run_id}],
        )
    try:
        manifest = parse_manifest(data)
    except Exception as exc:
        return None, problem or _break(
            EDITED, f"run {run_id}: its manifest cannot be read ({exc})", runs=[{"id": run_id}]
        )
    run = ChainRun(
        id=run_id,
        digest=digest,
        versions=[digest],
        number=manifest.get("number"),
        notebook=manifest.get("notebook"),
        started_at=manifest.get("started_at"),
    )
    if manifest.get("id") != run_id:
        return None, _break(
            MISPLACED,
            f"ref runs/{run_id} names the manifest of run {manifest.get('id')} (a ref was moved)",
            runs=[run.brief()],
        )
    writer = manifest.get("writer")
    if isinstance(writer, dict):
        run.writer = str(writer.get("id"))
        seq = writer.get("seq")
        run.seq = seq if isinstance(seq, int) else None
        prev = writer.get("prev")
        run.prev = prev if isinstance(prev, str) else None
    if problem is None:
        problem = _read_amended(run, manifest, read)
    return run, problem


def _read_amended(run: ChainRun, manifest: dict[str, Any], read: ReadObject) -> dict[str, Any] | None:
    """Add the earlier versions of an amended manifest to ``run.versions``: each must be
    there, intact, and differ only in what an amendment may change (else a break)."""
    current = manifest
    while isinstance(current.get("amends"), str):
        old_digest = current["amends"]
        if old_digest in run.versions:
            break
        # Named by the amendment: the writer's next run may link to it whatever it holds
        # (a problem with it is this run's break, not its successor's too).
        run.versions.append(old_digest)
        old_data = read(old_digest)
        if old_data is None or hash_bytes(old_data) != old_digest:
            what = "missing" if old_data is None else "edited"
            return _break(
                EDITED,
                f"run {run.id}: the manifest it amends, {old_digest[:12]}, is {what}",
                runs=[run.brief()],
            )
        try:
            old = parse_manifest(old_data)
        except Exception as exc:
            return _break(
                EDITED, f"run {run.id}: the manifest it amends cannot be read ({exc})", runs=[run.brief()]
            )
        problem = amendment_problem(current, old)
        if problem is not None:
            return _break(
                EDITED,
                f"run {run.id}: its manifest amends {old_digest[:12]} but {problem}",
                runs=[run.brief()],
            )
        current = old
    return None


def _break(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "message": message,
        "writer": None,
        "before": None,
        "after": None,
        "runs": [],
        **extra,
    }


# ---------------------------------------------------------------------------
# walking the chains


def check_chains(runs: Iterable[ChainRun]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The breaks in every writer's chain, and counts (chained, unchained, writers)."""
    by_writer: dict[str, list[ChainRun]] = {}
    unchained = 0
    for run in runs:
        if run.writer is None or run.seq is None:
            unchained += 1
        else:
            by_writer.setdefault(run.writer, []).append(run)
    breaks: list[dict[str, Any]] = []
    for writer, chain in sorted(by_writer.items()):
        breaks.extend(_walk(writer, sorted(chain, key=lambda r: (r.seq, r.id))))
    chained = sum(len(chain) for chain in by_writer.values())
    return breaks, {"chained": chained, "unchained": unchained, "writers": len(by_writer)}


def _walk(writer: str, chain: list[ChainRun]) -> Iterator[dict[str, Any]]:
    first = chain[0]
    assert first.seq is not None
    if first.seq > 1:
        count = first.seq - 1
        yield _break(
            MISSING,
            f"writer {writer}: its first {_runs(count)} {'is' if count == 1 else 'are'} missing "
            f"(the chain starts at run {first.id}, its run {first.seq})",
            writer=writer,
            after=first.brief(),
        )
    elif first.prev is not None:
        yield _break(
            EDITED,
            f"writer {writer}: run {first.id} is its first run but links to {first.prev[:12]}",
            writer=writer,
            after=first.brief(),
        )
    for before, after in itertools.pairwise(chain):
        assert before.seq is not None and after.seq is not None
        if after.seq == before.seq:
            yield _break(
                FORK,
                f"writer {writer}: runs {before.id} and {after.id} both claim its run {after.seq}",
                writer=writer,
                before=before.brief(),
                after=after.brief(),
            )
        elif after.seq > before.seq + 1:
            count = after.seq - before.seq - 1
            yield _break(
                MISSING,
                f"writer {writer}: {_runs(count)} missing between run {before.id} and run {after.id}",
                writer=writer,
                before=before.brief(),
                after=after.brief(),
            )
        elif after.prev not in before.versions:
            linked = after.prev[:12] if after.prev else "nothing"
            yield _break(
                EDITED,
                f"writer {writer}: run {after.id} links to manifest {linked}, but run {before.id}'s "
                f"manifest is {before.digest[:12]} (replaced, or the runs were reordered)",
                writer=writer,
                before=before.brief(),
                after=after.brief(),
            )


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"
