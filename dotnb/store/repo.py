"""The store as a whole: opening ``.dotnb/`` and the operations on it, one façade
over the modules that hold them.

- layout of ``.dotnb/`` and of remotes: :mod:`dotnb.store.layout`;
- objects: :mod:`dotnb.store.objects`; the index: :mod:`dotnb.store.index`;
- storing files' current content: :mod:`dotnb.store.file_snapshots`;
- committing runs: :mod:`dotnb.store.commit`; deferred commits (write-ahead
  records and their flush): :mod:`dotnb.store.writeahead`;
- run refs: :mod:`dotnb.store.refs`; the index kept in step with them:
  :mod:`dotnb.store.reconcile`;
- queries: :mod:`dotnb.store.run_queries` and :mod:`dotnb.store.listing`;
  RUN arguments: :mod:`dotnb.store.resolve`;
- runs pulled from a remote: :mod:`dotnb.store.importing`;
- objects referenced by runs: :mod:`dotnb.store.referenced`.

Write order for a run: data objects, then the manifest object, then the ref,
then the index row — so a crash at any point leaves a complete run or none.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dotnb.store.annotations import Annotations
from dotnb.store.atomic import write_bytes
from dotnb.store.commit import Committer
from dotnb.store.errors import DotnbError, ObjectMissing, RunNotFound, StoreFormatError
from dotnb.store.file_snapshots import snapshot_files, snapshot_one
from dotnb.store.index import Index
from dotnb.store.layout import (
    FORMAT_FILE,
    INDEX_FILE,
    OBJECTS_DIR,
    RUNS_DIR,
    SIGNATURES_DIR,
    STORE_DIR,
    TMP_DIR,
    find_root_dir,
    format_file_bytes,
    read_format_file,
)
from dotnb.store.lineage import expand, pack
from dotnb.store.listing import RunListing
from dotnb.store.manifest import FORMAT_VERSION, check_format, parse_manifest
from dotnb.store.objects import ObjectStore
from dotnb.store.reconcile import Reconciler
from dotnb.store.refs import RunRefs
from dotnb.store.run_queries import RunQueries
from dotnb.store.run_rows import run_summary as run_summary
from dotnb.store.trees import FolderRows, expand_entries, expand_manifest
from dotnb.store.writeahead import WriteAhead

# Names this module held before the store was split, imported from here by callers:
# FORMAT_VERSION and run_summary are re-exported above, manifest_objects by __getattr__.
__all__ = [
    "DEFAULT_MAX_FILE_SIZE",
    "FORMAT_VERSION",
    "STORE_DIR",
    "Store",
    "find_root",
    "manifest_objects",
    "run_summary",
]

if TYPE_CHECKING:
    from dotnb.store.referenced import manifest_objects as manifest_objects
    from dotnb.store.signing import SignatureChecker

_T = TypeVar("_T")

DEFAULT_MAX_FILE_SIZE = 20 * 1024**3  # 20 GiB: bigger files are recorded as skipped


def _set_aside(path: Path) -> None:
    """Move a damaged index file (and its WAL and shared memory) out of the way."""
    aside = path.with_name(f"{INDEX_FILE}.damaged-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(str(path) + suffix, str(aside) + suffix)


def _print_notice(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def find_root(start: Path) -> Path | None:
    """Nearest ancestor of ``start`` (itself included) that holds a ``.dotnb`` folder."""
    found = find_root_dir(os.fspath(start))
    return None if found is None else Path(found)


class Store(RunListing):
    """A store opened at a project root: its objects, index and runs.

    Opening it completes what is left pending (write-ahead records, refs without
    their index row): see :meth:`reconcile`.
    """

    def __init__(self, root: Path, max_file_size: int = DEFAULT_MAX_FILE_SIZE) -> None:
        self.root = Path(os.path.realpath(root))
        self.dir = self.root / STORE_DIR
        self.max_file_size = max_file_size
        fmt_file = self.dir / FORMAT_FILE
        if not fmt_file.exists():
            raise StoreFormatError(f"no dotnb store at {self.root} (run `dotnb init`)")
        try:
            fmt = read_format_file(str(fmt_file))
        except (ValueError, KeyError, TypeError):
            raise StoreFormatError(f"{fmt_file} is not a dotnb format file") from None
        check_format(fmt, "this store")
        self.format: int = fmt
        self.objects = ObjectStore(self.dir / OBJECTS_DIR, self.dir / TMP_DIR)
        self.refs = RunRefs(self.dir, self.objects)
        self.runs_dir = self.refs.dir
        self.index = self._open_index()
        self.queries = RunQueries(self.index)
        self.reconciler = Reconciler(self.index, self.refs, self.objects, self.read_ref_origin)
        self.writeahead = WriteAhead(self.objects, self.index, self.refs, self.reconciler)
        self.committer = Committer(
            self.objects,
            self.index,
            self.refs,
            self.reconciler,
            self.writeahead,
            self.read_ref_origin,
            before_write=self.upgrade_format,
        )
        self.objects.pending_source = self.writeahead.settle_objects
        self.objects.before_pack = self.upgrade_format
        self.writeahead.notice = lambda message: self.notice(message)
        self._signing_failed = False
        self._checker: tuple[tuple[str | None, int], SignatureChecker] | None = None
        self._signature_cache: dict[tuple[str, str, bytes], dict[str, Any]] = {}
        # A file damaged past its first page opens, then fails its first query: any
        # later read that finds it so recovers as a commit does.
        self.index.on_damage = self.recover_index
        self._recovering(self.reconcile)

    # -- opening -------------------------------------------------------------

    def _open_index(self) -> Index:
        path = self.dir / INDEX_FILE
        try:
            return Index(path)
        except sqlite3.OperationalError:
            raise  # busy, locked, unreadable: not damage, and another process may be using it
        except sqlite3.DatabaseError:
            # The index is only a cache: set the damaged file aside and start a new
            # one; reconcile() then re-indexes every run from its manifest.
            _set_aside(path)
            return Index(path)

    # Where the store tells its user something once (the format upgrade): stderr, the
    # cell's output in a kernel.  Replaced by callers with another channel.
    notice: Callable[[str], None] = staticmethod(_print_notice)

    def upgrade_format(self) -> None:
        """Bring a store of an older format up to :data:`FORMAT_VERSION` before its
        first write (what it writes from then on, folders as trees and small files in
        packs, an older dotnb cannot read, and its format check refuses the store rather than misread it).
        Everything already stored stays as it is: every older format is read as it is."""
        if self.format >= FORMAT_VERSION:
            return
        old = self.format
        write_bytes(self.dir / FORMAT_FILE, format_file_bytes(FORMAT_VERSION), tmp_dir=self.dir / TMP_DIR)
        self.format = FORMAT_VERSION
        self.notice(
            f"dotnb: upgraded the store in {self.dir} from format {old} to {FORMAT_VERSION} "
            "(folders of many files are recorded as trees, small files packed, runs chained); dotnb "
            "releases that read only "
            f"format {old} can no longer open it"
        )

    @classmethod
    def init(cls, root: Path, **kwargs: Any) -> Store:
        """Create the store at ``root`` if missing and open it."""
        store_dir = Path(root) / STORE_DIR
        for sub in (OBJECTS_DIR, RUNS_DIR, TMP_DIR):
            (store_dir / sub).mkdir(parents=True, exist_ok=True)
        fmt_file = store_dir / FORMAT_FILE
        if not fmt_file.exists():
            write_bytes(fmt_file, format_file_bytes(FORMAT_VERSION))
            # Keep the store out of git by default: it holds data, not source.
            gi = store_dir / ".gitignore"
            if not gi.exists():
                write_bytes(gi, b"*\n")
        return cls(root, **kwargs)

    @classmethod
    def discover(cls, start: Path, **kwargs: Any) -> Store:
        root = find_root(start)
        if root is None:
            raise StoreFormatError(
                f"no dotnb store found in {start} or any parent folder "
                "(run a tracked cell or `dotnb init` first)"
            )
        return cls(root, **kwargs)

    def close(self) -> None:
        self.index.close()

    # -- files ---------------------------------------------------------------

    def snapshot_files(
        self,
        rels: Iterable[str],
        progress: Callable[[int], None] | None = None,
        enforce_limit: bool = True,
    ) -> list[dict[str, Any]]:
        """Store the current content of root-relative files (see
        :func:`dotnb.store.file_snapshots.snapshot_files`)."""
        rels = list(rels)
        return self._recovering(
            lambda: snapshot_files(
                self.root, self.objects, self.index, self.max_file_size, rels, progress, enforce_limit
            )
        )

    def snapshot_one(self, path: Path) -> tuple[str, int] | None:
        """Copy one file's current bytes into the store (used before an overwrite)."""
        return snapshot_one(self.objects, self.max_file_size, path)

    # -- committing runs (dotnb.store.commit, dotnb.store.writeahead) ----------

    def commit_run(
        self,
        manifest: dict[str, Any],
        sync: bool = True,
        lineage_json: bytes | None = None,
        input_blocks: Mapping[str, FolderRows] | None = None,
    ) -> dict[str, Any]:
        """Number, store and index a run manifest; returns its log summary (see
        :meth:`Committer.commit_run <dotnb.store.commit.Committer.commit_run>`)."""
        summary = self._recovering(
            lambda: self.committer.commit_run(manifest, sync, lineage_json, input_blocks)
        )
        if sync:
            self.sign_recorded()  # not a cell's path: a kernel's deferred commits are signed by flush()
        return summary

    def _recovering(self, operation: Callable[[], _T]) -> _T:
        """``operation()``; if the index turns out damaged under this process (a live
        kernel's file corrupted in place), set it aside as an open does
        (:meth:`recover_index`) and try once more."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # busy, locked, full, constraint: not damage
                raise
        self.recover_index()
        return operation()

    def recover_index(self) -> None:
        """The index is damaged under this process: set it aside (as opening the store
        does), start a new one, index every run's ref, and record again this process's
        unflushed runs.  Other processes see a new file and reopen it themselves;
        write-ahead records only they held in the damaged file are lost with it.  When
        another process set it aside first, the file now at its path is kept."""
        if self.index.is_current():
            _set_aside(self.dir / INDEX_FILE)
        self.index.reopen_if_replaced()
        self.reconciler.runs_indexed = None
        self.committer.forget_numbers()
        self.writeahead.rerecord()
        self.reconciler.index_refs()

    def stage_bytes(self, data: bytes) -> str:
        """Store small ``data`` with the next deferred commit (see
        :meth:`WriteAhead.stage_bytes <dotnb.store.writeahead.WriteAhead.stage_bytes>`)."""
        return self.writeahead.stage_bytes(data)

    def flush(self) -> None:
        """Write and fsync what deferred commits left (see
        :meth:`WriteAhead.flush <dotnb.store.writeahead.WriteAhead.flush>`), then sign
        the runs this process recorded, when a key is configured.  An index damaged
        under this process (truncated in place) is set aside and this process's runs
        recorded in a new one first, as a commit does."""
        self._recovering(self.writeahead.flush)
        self.sign_recorded()

    def has_pending_sync(self) -> bool:
        return bool(self.committer.to_sign) or self.writeahead.has_pending_sync()

    # -- signatures (dotnb.store.signing) ---------------------------------------

    def sign_recorded(self) -> None:
        """Sign the runs this process recorded since the last call, with the configured
        ``signing.key`` (none: they stay unsigned).  A key that cannot sign is told
        once (:attr:`notice`); those runs stay unsigned and recording goes on."""
        with self.committer.chain.lock:
            runs, self.committer.to_sign = self.committer.to_sign, []
        if not runs:
            return
        from dotnb.store.signing import sign_runs, signing_key

        try:
            key = signing_key(self.dir)
            if key is not None:
                sign_runs(self.dir, key, runs)
                # GET events then tells the sidebar, which showed them unsigned.
                self.index.touch_runs([run_id for run_id, _ in runs])
        except (DotnbError, OSError, ValueError, sqlite3.Error, subprocess.SubprocessError) as exc:
            if not self._signing_failed:
                self._signing_failed = True
                reason = exc if isinstance(exc, DotnbError) else f"{type(exc).__name__}: {exc}"
                self.notice(f"dotnb: runs are recorded unsigned: {reason}")

    def signature_checker(self) -> SignatureChecker:
        """A checker for the allowed-signers file now configured (kept while neither the
        setting nor the file changes)."""
        from dotnb.store.signing import SignatureChecker

        checker = SignatureChecker.for_store(self.dir)
        stamp: tuple[str | None, int] = (checker.allowed_signers, 0)
        if checker.allowed_signers is not None:
            with contextlib.suppress(OSError):
                stamp = (checker.allowed_signers, os.stat(checker.allowed_signers).st_mtime_ns)
        if self._checker is None or self._checker[0] != stamp:
            self._checker = (stamp, checker)
            self._signature_cache.clear()
        return self._checker[1]

    def signature(
        self, run_id: str, manifest_hash: str | None = None, checker: SignatureChecker | None = None
    ) -> dict[str, Any]:
        """A run's signature status (see :mod:`dotnb.store.signing`): ``{"status", "signer"?}``
        (``"reason"`` too when it is bad)."""
        from dotnb.store.chain import manifest_versions
        from dotnb.store.signing import read_signature

        digest = manifest_hash or self.manifest_hash(run_id)
        data = read_signature(self.dir, run_id)
        if data is None:
            return {"status": "unsigned"}
        checker = checker or self.signature_checker()
        key = (run_id, digest, data)
        found = self._signature_cache.get(key)
        if found is None:
            found = checker.check(
                data,
                lambda signed: (
                    signed == digest or signed in manifest_versions(digest, self.objects.read_bytes)
                ),
            )
            if len(self._signature_cache) > 100_000:
                self._signature_cache.clear()
            self._signature_cache[key] = found
        return dict(found)

    def with_signatures(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run summaries (``dotnb log --json`` rows) with each run's ``signature``."""
        if not rows:
            return rows
        if not (self.dir / SIGNATURES_DIR).is_dir():  # nothing was ever signed here: no look-ups
            for row in rows:
                row["signature"] = {"status": "unsigned"}
            return rows
        checker = self.signature_checker()
        hashes = self.queries.manifest_hashes([row["id"] for row in rows])
        for row in rows:
            try:
                row["signature"] = self.signature(row["id"], hashes.get(row["id"]), checker)
            except DotnbError as exc:
                row["signature"] = {"status": "bad", "reason": str(exc)}
        return rows

    def update_manifest(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Replace an existing run's manifest (e.g. to attach the live notebook snapshot)."""
        return self.committer.update_manifest(manifest)

    @property
    def runs_watch(self) -> Callable[[], object] | None:
        """Set by a kernel: a token that stays equal while nothing in ``runs/`` changes
        (see :class:`~dotnb.store.commit.Committer`)."""
        return self.committer.runs_watch

    @runs_watch.setter
    def runs_watch(self, watch: Callable[[], object] | None) -> None:
        self.committer.runs_watch = watch

    # -- refs and manifests ----------------------------------------------------

    def read_ref(self, run_id: str) -> str:
        return self.read_ref_origin(run_id)[0]

    def read_ref_origin(self, run_id: str) -> tuple[str, str | None]:
        """A run's manifest hash and the remote it was pulled from (None: recorded here);
        a run committed but not flushed yet is completed on the way."""
        try:
            return self.refs.read(run_id)
        except FileNotFoundError:
            pending = self.writeahead.settle(run_id)  # committed, ref not written yet
            if pending is None:
                raise RunNotFound(f"run {run_id} not found") from None
            return pending[0], None

    def manifest_hash(self, run_id: str) -> str:
        found = self.queries.manifest_hash(run_id)
        return found if found is not None else self.read_ref(run_id)

    def manifest(self, run_id: str) -> dict[str, Any]:
        digest = self.manifest_hash(run_id)
        try:
            data = self.objects.read_bytes(digest)
        except ObjectMissing:
            pending = self.writeahead.settle(run_id)  # committed, manifest object not written yet
            if pending is None or pending[0] != digest:
                raise ObjectMissing(f"the manifest of run {run_id} is missing from the store") from None
            data = pending[1]
        return parse_manifest(data)

    def lineage(self, manifest: dict[str, Any], strict: bool = False) -> list[dict[str, Any]]:
        """Every lineage cell of a manifest, its segments read (see :mod:`dotnb.store.lineage`);
        with ``strict``, an unreadable segment raises instead of standing as placeholders."""
        return expand(manifest.get("lineage"), self.objects.read_bytes, strict)

    def files(self, manifest: dict[str, Any], key: str) -> list[dict[str, Any]]:
        """A manifest's ``inputs`` or ``outputs``, every folder's tree read into its file
        entries (see :mod:`dotnb.store.trees`), sorted by path."""
        return expand_entries(manifest.get(key) or [], self.objects.read_bytes)

    def expanded(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``manifest`` whose inputs and outputs list every file."""
        return expand_manifest(manifest, self.objects.read_bytes)

    def pack_lineage(self, cells: list[dict[str, Any]]) -> Any:
        """The stored form of ``cells`` (each with its ``code``), its objects written here."""
        return pack(cells, lambda data: self.objects.put_bytes(data)[0])

    # -- keeping the index in step (dotnb.store.reconcile) -----------------------

    def reconcile(self) -> None:
        """Complete runs left pending (write-ahead records, after a crash or from a
        live kernel) and index runs whose ref exists but whose index row does not."""
        self.writeahead.complete_recorded()
        self.reconciler.index_refs()
        Annotations(self.dir, self.index).ensure_indexed()  # a new index: tags and notes from their events

    def rebuild_index(self) -> int:
        """Drop and rebuild every run row from the manifests (and tags and notes from
        their events); returns the run count."""
        count = self.reconciler.rebuild_index()
        Annotations(self.dir, self.index).reindex_all()
        return count

    def import_runs(self, runs: Iterable[tuple[str, bytes, dict[str, Any]]], origin: str) -> list[str]:
        """Add runs pulled from remote ``origin`` (see :func:`dotnb.store.importing.import_runs`)."""
        from dotnb.store.importing import import_runs  # pulls only: not on a kernel's start

        self.upgrade_format()  # pulled manifests may hold trees

        return import_runs(self.index, self.objects, self.refs, self.reconciler, runs, origin)

    # -- queries (dotnb.store.run_queries, dotnb.store.listing) ------------------

    def _run_rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self.index.query(sql, args)

    def changes(self, after_seq: int, limit: int = 200) -> tuple[list[dict[str, Any]], int]:
        """Runs added or updated after the change cursor ``after_seq``; returns (runs, new cursor)."""
        return self.queries.changes(after_seq, limit)

    def change_cursor(self) -> int:
        return self.queries.change_cursor()

    def metric_values(
        self, name: str, notebook: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """One summary metric across runs, oldest first: [{id, number, notebook, started_at, value}]."""
        return self.queries.metric_values(name, notebook, limit)

    def metric_names(self, notebook: str | None = None) -> list[str]:
        return self.queries.metric_names(notebook)

    def latest_metric(self, notebook: str | None = None) -> str | None:
        """A metric of the newest run that recorded one: what a chart opens on."""
        return self.queries.latest_metric(notebook)

    def producers_of(self, digests: Iterable[str]) -> dict[str, str]:
        """Content hash -> the newest run that wrote it, for those some run wrote."""
        digests = list(digests)
        return self._recovering(lambda: self.queries.producers_of(digests))

    def producer_of(self, digest: str, before: str | None = None) -> str | None:
        """The newest run (of kind run) that wrote content ``digest`` as an output."""
        return self.queries.producer_of(digest, before)

    def resolve(self, ref: str, notebook: str | None = None) -> str:
        """A full run id from ``ref``: an id, a unique id prefix, ``#N`` or ``latest``."""
        from dotnb.store.resolve import resolve_run  # not on a kernel's start

        return resolve_run(self.queries, ref, notebook)

    def referenced_objects(self, strict: bool = False) -> dict[str, set[str]]:
        """Every object some run refers to, mapped to the ids of those runs (see
        :func:`dotnb.store.referenced.referenced_objects`)."""
        from dotnb.store.kernel_state import state_refs
        from dotnb.store.referenced import add_kernel_state_objects, referenced_objects  # gc, fsck

        found = referenced_objects(self.index, self.refs, self.objects, self.read_ref, strict)
        add_kernel_state_objects(found, self.objects, state_refs(self.dir), strict)
        return found


def __getattr__(name: str) -> object:
    # manifest_objects moved to dotnb.store.referenced (imported on first use here:
    # a kernel opening the store does not need it).
    if name == "manifest_objects":
        from dotnb.store.referenced import manifest_objects

        return manifest_objects
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
