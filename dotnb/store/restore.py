"""Restore plans: bring files and the notebook back to a run's state.

A run's state is what the files held right after it: its outputs, and its
inputs that it did not overwrite; plus its notebook snapshot.  Before anything
is overwritten, the current content of every path in the plan is recorded as a
run of kind ``checkpoint``, so a restore can itself be undone by restoring the
checkpoint (which also removes files that did not exist before).

Every path goes through :func:`dotnb.store.paths.confine`; a path whose final
component is a symlink leading outside the root is refused, and files are
replaced by rename, never written through a link.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotnb.store import strays
from dotnb.store.atomic import create_temp, rename_durably
from dotnb.store.author import current_host, current_user
from dotnb.store.checkpoint_links import LinkedCheckpoint
from dotnb.store.errors import DotnbError, ObjectCorrupt, ObjectMissing, PathOutsideRoot
from dotnb.store.hashing import hash_file
from dotnb.store.index import StatKey
from dotnb.store.layout import TMP_DIR
from dotnb.store.manifest import checkpoint_manifest
from dotnb.store.objects import SMALL_FILE
from dotnb.store.paths import Confiner, confine, is_within, readable_inside
from dotnb.store.portable_paths import case_insensitive, unwritable
from dotnb.store.rawio import chmod_open
from dotnb.store.repo import Store
from dotnb.store.vocabulary import no_content_reason

Progress = Callable[[int], None]


# Free space kept beyond the staged files' size when large files are staged together.
STAGING_MARGIN = 64 * 1024 * 1024
# Small files' bytes read (and checked) before anything is replaced are kept for the
# writes, up to this many bytes; the rest are read again when written.
CHECKED_BYTES_KEPT = 256 * 1024 * 1024
# Windows' rules for names apply (dotnb.store.portable_paths).
ON_WINDOWS = os.name == "nt"


@dataclass
class PlanItem:
    path: str
    role: str  # "data" or "notebook"
    target: str | None  # hash to write; None means "remove the file" (undo of a creation)
    size: int | None
    current: str | None  # hash now on disk, None when absent

    @property
    def changes(self) -> bool:
        return self.current != self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "role": self.role,
            "current": self.current,
            "target": self.target,
            "size": self.size,
            "action": self.action,
        }

    @property
    def action(self) -> str:
        if not self.changes:
            return "unchanged"
        if self.target is None:
            return "remove"
        return "create" if self.current is None else "overwrite"


@dataclass
class RestorePlan:
    run_id: str
    items: list[PlanItem] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    # path -> (hash, the stat it was taken from) of what the paths held when planned:
    # the checkpoint uses a hash again only while the file's stat is unchanged.
    hashed: dict[str, tuple[str, StatKey]] = field(default_factory=dict)

    @property
    def changes(self) -> list[PlanItem]:
        return [i for i in self.items if i.changes]

    @property
    def bytes_to_write(self) -> int:
        return sum(i.size or 0 for i in self.changes if i.target is not None)

    def as_json(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "items": [i.as_json() for i in self.items],
            "skipped": self.skipped,
            "bytes_to_write": self.bytes_to_write,
        }


def _current_hashes(
    store: Store, rels: list[str], keys: dict[str, tuple[str, StatKey]] | None = None
) -> dict[str, str | None]:
    """The hash of what each path holds now (None: nothing there), from the stat cache
    where it answers.  Refuses paths inside the store, symlinks leading outside the
    root, and folders or special files in the way.  ``keys`` receives, for each file
    hashed or found, its hash and the stat it was taken from."""
    confined = Confiner(store.root)
    store_real = os.path.realpath(store.dir)
    found: dict[str, str | None] = {}
    present: list[tuple[str, str, StatKey]] = []
    for rel in rels:
        path = confined.path(rel)
        # A manifest from a shared store could otherwise rewrite run refs or objects.
        if is_within(store_real, path):
            raise PathOutsideRoot(f"refusing to restore {rel!r}: it is inside the dotnb store")
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                if not readable_inside(store.root, Path(path)):
                    raise PathOutsideRoot(
                        f"refusing to restore {rel!r}: it is a symlink leading outside the project root"
                    )
                st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            found[rel] = None
            continue
        if not stat.S_ISREG(st.st_mode):
            raise DotnbError(f"refusing to restore {rel!r}: a folder or special file is in the way")
        present.append((rel, path, StatKey.of(st)))
    known = store.index.stat_lookup_many([(rel, key) for rel, _, key in present])
    for rel, path, key in present:
        found[rel] = digest = known.get(rel) or hash_file(path)[0]
        if keys is not None:
            keys[rel] = (digest, key)
    return found


def make_plan(store: Store, run_id: str, data: bool = True, notebook: bool = True) -> RestorePlan:
    manifest = store.manifest(run_id)
    plan = RestorePlan(run_id)
    targets: dict[str, tuple[str | None, int | None, str]] = {}
    if data:
        # Outputs are applied after inputs, so a file the run overwrote gets its after-run bytes.
        for key in ("inputs", "outputs"):
            for entry in store.files(manifest, key):
                if not entry.get("hash"):
                    plan.skipped.append({"path": entry["path"], "reason": no_content_reason(entry)})
                    continue
                targets[entry["path"]] = (entry["hash"], entry.get("size"), "data")
        for rel in manifest.get("absent") or []:
            targets[rel] = (None, None, "data")
    snap = manifest.get("notebook_snapshot")
    if notebook and manifest.get("notebook") and isinstance(snap, dict) and snap.get("hash"):
        targets[manifest["notebook"]] = (snap["hash"], snap.get("size"), "notebook")
    # Names this system cannot write as they were recorded (Windows' rules, case).
    tmp_dir = store.dir / TMP_DIR
    tmp_dir.mkdir(exist_ok=True)
    for rel, reason in unwritable(sorted(targets), ON_WINDOWS, case_insensitive(tmp_dir)).items():
        del targets[rel]
        plan.skipped.append({"path": rel, "reason": reason})
    for rel, (target, _, _) in sorted(targets.items()):
        # With a remote fetcher, a missing object is fetched when the plan is applied.
        if target is not None and store.objects.fetcher is None and not store.objects.has(target):
            raise ObjectMissing(
                f"cannot restore {rel!r}: its object {target[:12]} is missing from the store "
                "(run `dotnb fsck`)"
            )
    current = _current_hashes(store, sorted(targets), plan.hashed)
    for rel, (target, size, role) in sorted(targets.items()):
        plan.items.append(PlanItem(rel, role, target, size, current[rel]))
    return plan


def checkpoint(
    store: Store, plan: RestorePlan, notebook: str | None, links: LinkedCheckpoint | None = None
) -> dict[str, Any] | None:
    """Record the current content of every path the plan changes, as a checkpoint run.

    With ``links``, files are kept by linking where that is safe (see
    :mod:`dotnb.store.checkpoint_links`; the caller settles them after the writes),
    and copied otherwise.
    """
    changing = plan.changes
    if not changing:
        return None
    present = [i.path for i in changing if i.current is not None and i.role == "data"]
    absent = [i.path for i in changing if i.current is None]
    linked: list[dict[str, Any]] = []
    if links is not None:
        linked, present = links.keep(Confiner(store.root), store.index, present, plan.hashed)
    outputs = sorted(linked + store.snapshot_files(present, enforce_limit=False), key=lambda e: e["path"])
    snapshot = None
    for item in changing:
        if item.role == "notebook" and item.current is not None:
            digest, size = store.objects.put_file(confine(store.root, item.path))
            snapshot = {"hash": digest, "size": size}
    manifest = checkpoint_manifest(
        "checkpoint before restoring", store.manifest(plan.run_id), notebook, current_user(), current_host()
    )
    manifest["notebook_snapshot"] = snapshot
    manifest["notebook_source"] = "disk" if snapshot else None
    manifest["outputs"] = outputs
    manifest["absent"] = absent
    return store.commit_run(manifest)


def apply_plan(
    store: Store,
    plan: RestorePlan,
    progress: Progress | None = None,
    staged: dict[str, str] | None = None,
    checked: dict[str, bytes] | None = None,
) -> list[str]:
    """Write every changing path atomically and verify it; returns the paths written.

    Large files already copied into verified temp files (``staged``: path -> temp,
    see :func:`stage_large`) are renamed into place together; other large files are
    copied one by one.  Small files (up to :data:`SMALL_FILE`) are written together:
    see :func:`write_small_verified` (``checked``: their objects' bytes, hash ->
    bytes, already read and checked).  No two items share a path, so order does not
    matter.
    """
    staged = staged or {}
    confined = Confiner(store.root)
    written: list[str] = []
    small: list[tuple[str, str, Path]] = []  # (rel, hash, path)
    moves: list[tuple[str, str]] = []  # (temp, target) of staged files
    renamed: list[tuple[str, str, Path]] = []  # (rel, hash, path) of staged files
    stat_entries = []
    for item in plan.changes:
        path = Path(confined.path(item.path))
        if item.target is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        elif is_small(item):
            small.append((item.path, item.target, path))
        elif item.path in staged:
            moves.append((staged[item.path], str(path)))
            renamed.append((item.path, item.target, path))
        else:
            write_verified(store, item.target, path, progress)
            stat_entries.append((item.path, StatKey.of(os.stat(path)), item.target))
        written.append(item.path)
    if moves:
        rename_durably(moves, store.root)
        stat_entries += [(rel, StatKey.of(os.stat(path)), digest) for rel, digest, path in renamed]
    if small:
        write_small_verified(store, [(digest, path) for _, digest, path in small], progress, checked)
        stat_entries += [(rel, StatKey.of(os.stat(path)), digest) for rel, digest, path in small]
    store.index.stat_record(stat_entries, time.time_ns())
    return written


def is_small(item: PlanItem) -> bool:
    """Written with the small files' batch (read whole, synced together)."""
    return item.size is not None and item.size <= SMALL_FILE


def stage_large(store: Store, items: list[PlanItem], progress: Progress | None) -> dict[str, str]:
    """Copy each large item's object into a verified, fsynced temp file beside its
    target (path -> temp), reading each object once: copying it and checking its
    hash are one pass.  Nothing is replaced yet, so a corrupted object found here
    leaves every file as it was; the temps made so far are removed."""
    staged: dict[str, str] = {}
    try:
        for item in items:
            assert item.target is not None
            path = confine(store.root, item.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            # The parent may have been created just now: confine it again before writing.
            if not readable_inside(store.root, path.parent):
                raise PathOutsideRoot(f"refusing to write {path.name!r}: its folder leaves the project root")
            try:
                staged[item.path] = store.objects.export_to_temp(
                    item.target, path.parent, path.name, progress
                )
            except ObjectCorrupt:
                raise ObjectCorrupt(
                    f"cannot restore {item.path!r}: its object {item.target[:12]} is corrupted "
                    "(run `dotnb fsck`); nothing was changed"
                ) from None
    except BaseException:
        discard_staged(staged)
        raise
    return staged


def discard_staged(staged: dict[str, str]) -> None:
    """Remove temp files :func:`stage_large` made that were not renamed into place."""
    for tmp in staged.values():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def room_to_stage(store: Store, items: list[PlanItem]) -> bool:
    """Whether the file system holds every large item's new bytes beside the old ones
    at once (they coexist until the renames), with a margin."""
    need = sum(item.size or 0 for item in items)
    try:
        st = os.statvfs(store.root)
    except OSError:
        return False
    return need + STAGING_MARGIN <= st.f_bavail * st.f_frsize


def write_verified(store: Store, digest: str, path: Path, progress: Progress | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The parent may have been created just now: confine it again before writing.
    if not readable_inside(store.root, path.parent):
        raise PathOutsideRoot(f"refusing to write {path.name!r}: its folder leaves the project root")
    store.objects.export(digest, path, progress)


def write_small_verified(
    store: Store,
    items: list[tuple[str, Path]],
    progress: Progress | None,
    checked: dict[str, bytes] | None = None,
) -> None:
    """:func:`write_verified` for many small files: each object's bytes are read
    whole and checked against its name (or taken from ``checked``, read and checked
    already), written to a temp file beside the target, then all are made durable
    together, renamed into place, and the renames made durable together (one
    ``syncfs`` each way for many files, not two fsyncs each)."""
    checked = checked or {}
    folders: set[Path] = set()
    temps: list[tuple[str, str]] = []
    try:
        for digest, path in items:
            folder = path.parent
            if folder not in folders:
                folder.mkdir(parents=True, exist_ok=True)
                # The folder may have been created just now: confine it again before writing.
                if not readable_inside(store.root, folder):
                    raise PathOutsideRoot(
                        f"refusing to write {path.name!r}: its folder leaves the project root"
                    )
                folders.add(folder)
            data = checked.get(digest)
            if data is None:
                data = store.objects.read_bytes(digest)  # raises ObjectCorrupt on a mismatch
            fd, tmp = create_temp(folder, ".dotnb-")
            temps.append((tmp, str(path)))
            chmod_open(fd, tmp, 0o644)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            if progress is not None:
                progress(len(data))
        rename_durably(temps, store.root)
    except BaseException:
        for tmp, _ in temps:  # those renamed already are not found
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def restore(
    store: Store,
    run_id: str,
    data: bool = True,
    notebook: bool = True,
    dry_run: bool = False,
    progress: Progress | None = None,
    on_plan: Callable[[dict[str, Any]], Progress | None] | None = None,
) -> dict[str, Any]:
    """The restore operation shared by the CLI and the REST API.

    ``on_plan`` sees the plan before anything is written (to show it) and may
    return a progress callback for the bytes written.
    """
    plan = make_plan(store, run_id, data=data, notebook=notebook)
    if on_plan is not None:
        progress = on_plan(plan.as_json()) or progress
    result: dict[str, Any] = {
        "plan": plan.as_json(),
        "dry_run": dry_run,
        "checkpoint": None,
        "checkpoint_number": None,
        "written": [],
    }
    if dry_run or not plan.changes:
        return result
    # Fetch every source object (pulled runs) before touching the workspace: a
    # missing object must not leave a half-restored project.
    try:
        store.objects.ensure(i.target for i in plan.changes if i.target is not None)
    except ObjectMissing as exc:
        lost = next(i for i in plan.changes if i.target is not None and not store.objects.has(i.target))
        raise ObjectMissing(
            f"cannot restore {lost.path!r}: its object {str(lost.target)[:12]} is missing ({exc}); "
            "nothing was changed"
        ) from None
    # Every source object is checked before any file is replaced: a corrupted one
    # must not leave a half-restored project.  Large files are copied into verified
    # temps now (one read of each object: the copy is hashed as it lands) when the
    # disk holds them beside the old files; otherwise, and for small files, the
    # objects are checked first and copied afterwards.
    # Temps an earlier, killed restore left beside these targets go first.
    confined = Confiner(store.root)
    folders = {os.path.dirname(confined.path(i.path)) for i in plan.changes}
    strays.remove(strays.strays_in(folders))
    try:
        _restore_changes(store, plan, run_id, result, progress)
    except (KeyboardInterrupt, SystemExit):
        # Ctrl-C, or SIGTERM (the CLI raises SystemExit for it), can land between a
        # temp's creation and the cleanup that guards it: this process's own temps
        # beside the targets go now, not at the next restore.
        strays.remove(strays.own_in([*folders, str(store.dir / TMP_DIR)]))
        raise
    return result


def _restore_changes(
    store: Store, plan: RestorePlan, run_id: str, result: dict[str, Any], progress: Progress | None
) -> None:
    large = [i for i in plan.changes if i.target is not None and not is_small(i)]
    staging = room_to_stage(store, large)
    checked: dict[str, bytes] = {}  # small files' bytes, read once: checked now, written later
    kept = 0
    for item in plan.changes:
        if item.target is None or (staging and not is_small(item)) or item.target in checked:
            continue
        try:
            if is_small(item) and kept < CHECKED_BYTES_KEPT:
                checked[item.target] = store.objects.read_bytes(item.target)
                kept += len(checked[item.target])
                continue
            ok = store.objects.verify(item.target)
        except ObjectCorrupt:
            ok = False
        if not ok:
            raise ObjectCorrupt(
                f"cannot restore {item.path!r}: its object {item.target[:12]} is corrupted "
                "(run `dotnb fsck`); nothing was changed"
            )
    staged = stage_large(store, large, progress) if staging else {}
    links = LinkedCheckpoint(store.objects)
    try:
        manifest_nb = store.manifest(run_id).get("notebook")
        ckpt = checkpoint(store, plan, manifest_nb, links)
        if ckpt:
            result["checkpoint"], result["checkpoint_number"] = ckpt["id"], ckpt["number"]
        try:
            result["written"] = apply_plan(store, plan, progress, staged, checked)
        except PermissionError as exc:
            # Windows: a file another program has open cannot be replaced.
            target = exc.filename2 or exc.filename
            rel = os.path.relpath(target, store.root) if target else "a file"
            undo = f" (checkpoint {ckpt['id']} holds what they were)" if ckpt else ""
            raise DotnbError(
                f"cannot replace {rel!r}: it is open in another program, or read-only ({exc.strerror});"
                f" the files restored before it stay restored{undo}: close it and restore again"
            ) from None
    finally:
        discard_staged(staged)  # those renamed into place are not found
        lost = links.settle()
        if lost:
            result["checkpoint_lost"] = lost
