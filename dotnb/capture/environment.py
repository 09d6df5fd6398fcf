"""The environment a run ran in: Python, platform, host, distributions, git.

:func:`collect_environment` computes everything afresh.  The tracker calls
:class:`EnvironmentCache` after every tracked cell instead, whose cached
:meth:`EnvironmentCache.get` costs a handful of ``stat`` calls (see its docstring
for what is re-checked when).

Kept light to import (standard library and ``blake3`` only): this runs inside the
user's kernel.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3

from dotnb.store.author import current_host, current_user

if TYPE_CHECKING:
    from importlib.metadata import Distribution

    from dotnb.capture.watcher import DirWatch

__all__ = [
    "GIT_TIMEOUT_SECONDS",
    "GIT_TTL_SECONDS",
    "EnvironmentCache",
    "collect_environment",
    "distributions_key",
]

GIT_TIMEOUT_SECONDS = 2.0
# Working-tree dirtiness cannot be watched cheaply; it is re-read at most this often.
GIT_TTL_SECONDS = 10.0
# After `git status` timed out (huge repo, slow disk), skip it for this long so that
# every cell does not pay the timeout again; commit and branch are still read.
GIT_STATUS_BACKOFF_SECONDS = 300.0

_SITE_DIR_NAMES = ("site-packages", "dist-packages")


# ------------------------------------------------------------------ static summary


def _memory_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024  # the unit is always kB
    except (OSError, ValueError, IndexError):
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        page_size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows) or name
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _static_summary() -> dict[str, Any]:
    """What cannot change while the kernel runs (computed once per cache)."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "host": current_host(),
        "user": current_user(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "executable": sys.executable,
    }


# ------------------------------------------------------------------ distributions

_NAME_NORMALISE = re.compile(r"[-_.]+")


def _normalise(name: str) -> str:
    # PEP 503: the form pip and PyPI compare names in.
    return _NAME_NORMALISE.sub("-", name).lower()


def _name_version(dist: Distribution) -> tuple[str | None, str | None]:
    """Name and Version from the metadata headers only.

    ``dist.metadata`` parses the whole file (long descriptions included) with the
    email parser: ~10x slower than reading the header block, for 100+ packages.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    name = version = None
    if text:
        for line in text.splitlines():
            if not line:
                break  # end of headers; the description follows
            key, sep, value = line.partition(":")
            if not sep:
                continue
            key = key.lower()
            if key == "name":
                name = value.strip()
            elif key == "version":
                version = value.strip()
            if name and version:
                return name, version
    # Unusual metadata (folded headers, other file names): let importlib decide.
    meta: Any = dist.metadata
    return (name or meta["Name"]), (version or meta["Version"])


def _distributions(path: list[str] | None = None) -> list[dict[str, str]]:
    """Installed distributions on ``path`` (default ``sys.path``), sorted by name.

    Names are PEP 503-normalised.  When a name is installed in several ``sys.path``
    entries the first wins, as it is the one ``import`` finds.  Distributions
    whose metadata lacks a name or version are left out.
    """
    # Imported here: importlib.metadata pulls in the email package (~40 ms cold),
    # and only a distribution refresh needs it.
    import importlib.metadata

    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=path if path is not None else sys.path):
        try:
            name, version = _name_version(dist)
        except Exception:
            # A broken .dist-info must not cost the run its environment.
            continue
        if not name or not version:
            continue
        found.setdefault(_normalise(name), version)
    return [{"name": n, "version": found[n]} for n in sorted(found)]


def _canonical_json(doc: Any) -> bytes:
    # Byte-identical to dotnb.store.manifest.canonical_json (not imported: the store
    # package pulls in SQLite and friends), so the key below is also the store
    # object id of this document.
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def distributions_key(distributions: list[dict[str, str]]) -> str:
    """BLAKE3 hex digest of the canonical JSON of a distribution list."""
    return blake3.blake3(_canonical_json(distributions)).hexdigest()


# ------------------------------------------------------------------------------ git


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Read-only probing: do not take index.lock or rewrite the index (would race
    # with the user's own git commands and bump .git/index's mtime on every check).
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


class _GitTimeout(Exception):
    pass


def _git(root: Path, *args: str) -> str | None:
    """stdout of ``git -C root ARGS``; None on failure; raises _GitTimeout."""
    try:
        proc = subprocess.run(
            ["git", "-C", os.fspath(root), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=_git_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise _GitTimeout from None
    except (OSError, subprocess.SubprocessError, ValueError):
        # OSError: git missing or not executable; ValueError: NUL in the path.
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "surrogateescape").strip()


def _git_info(root: Path, *, with_status: bool = True) -> tuple[dict[str, Any] | None, bool]:
    """``({commit, branch, dirty}, status_timed_out)``; None outside a work tree.

    None also when the branch has no commit yet: there is no commit to record.
    ``branch`` is None on a detached HEAD; ``dirty`` (tracked files only, like
    ``git status -uno``) is None when it was not determined (``with_status``
    false, or ``git status`` timed out).  Never raises.
    """
    try:
        commit = _git(root, "rev-parse", "--verify", "-q", "HEAD")
        if not commit:
            return None, False
        branch = _git(root, "symbolic-ref", "--short", "-q", "HEAD")
    except _GitTimeout:
        return None, False
    dirty: bool | None = None
    timed_out = False
    if with_status:
        try:
            status = _git(root, "status", "--porcelain", "--untracked-files=no")
        except _GitTimeout:
            timed_out = True
        else:
            dirty = None if status is None else bool(status)
    return {"commit": commit, "branch": branch or None, "dirty": dirty}, timed_out


def _find_git_dirs(root: Path) -> tuple[Path, Path] | None:
    """(git dir, common dir) of the repository holding ``root``, found in Python.

    Only used to know which files to ``stat`` between refreshes (cheaper than a
    ``git rev-parse`` spawn); ``.git`` files (worktrees, submodules) are followed.
    """
    start = Path(os.path.abspath(root))
    for d in (start, *start.parents):
        dotgit = d / ".git"
        try:
            if dotgit.is_dir():
                git_dir = dotgit
            elif dotgit.is_file():
                text = dotgit.read_text(encoding="utf-8", errors="replace").strip()
                if not text.startswith("gitdir:"):
                    continue
                git_dir = d / text[len("gitdir:") :].strip()
            else:
                continue
            common = git_dir
            commondir = git_dir / "commondir"
            if commondir.is_file():
                common = git_dir / commondir.read_text(encoding="utf-8").strip()
            return git_dir, common
        except OSError:
            return None
    return None


def _git_watch_files(dirs: tuple[Path, Path] | None) -> tuple[str, ...]:
    """HEAD, the ref HEAD points to, and the index: commits, checkouts, staging."""
    if dirs is None:
        return ()
    git_dir, common = dirs
    files = [git_dir / "HEAD", git_dir / "index"]
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        head = ""
    if head.startswith("ref:"):
        ref = head[len("ref:") :].strip()
        # Branch refs live in the common dir (shared by worktrees).  A packed ref
        # has no file; committing on it creates one, so its absence is stat'ed too.
        files.append(common / ref)
    return tuple(os.fspath(f) for f in files)


# ------------------------------------------------------------------------ public API


def collect_environment(root: Path) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``(summary, distributions)`` computed now, uncached.

    summary keys: ``python``, ``implementation``, ``platform``, ``machine``,
    ``host``, ``user`` (None when unknown), ``cpu_count``, ``memory_bytes`` (None
    when unknown), ``executable``, ``git`` (``{"commit", "branch", "dirty"}``
    when ``root`` is in a git work tree with at least one commit, else None).
    distributions: ``[{"name", "version"}]`` sorted by normalised name.
    """
    summary = _static_summary()
    summary["git"] = _git_info(root)[0]
    return summary, _distributions()


StatSignature = tuple[tuple[int, int, int] | None, ...]


def _changes(watches: list[DirWatch] | None) -> int | None:
    """Events seen by ``watches`` so far; None unless every one is live."""
    if watches is None or not all(w.live for w in watches):
        return None
    return sum(w.changes for w in watches)


def stat_signature(paths: Iterable[str]) -> StatSignature:
    """(mtime_ns, size, inode) of each path, None for one that cannot be stat'ed: what
    the cache compares to know whether its folders or git files changed."""
    sig: list[tuple[int, int, int] | None] = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            sig.append(None)
        else:
            # git replaces these files by rename, so the inode changes even when
            # two writes land in the same mtime tick.
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(sig)


class EnvironmentCache:
    """Cached :func:`collect_environment` for one project root.

    :meth:`get` recomputes only what may have changed:

    - host, user, platform, Python, CPU and memory: once;
    - distributions: when ``sys.path`` changes or the mtime of one of its
      ``site-packages``/``dist-packages`` directories changes (pip adds or
      removes a ``.dist-info`` directory there on every install/uninstall);
      distributions found elsewhere on ``sys.path`` (e.g. an ``.egg-info`` in the
      current directory) are only picked up along with such a change;
    - git: synchronously when ``HEAD``, the ref it points to or ``index`` in the
      git directory change (commit, checkout, reset, ``git add``), so a run never
      records the previous commit.  Otherwise the git info is re-read when it is
      ``git_ttl`` seconds (10 s) old, in a background thread: that call and the
      next ones return the previous value until the refresh lands.  So **working
      tree dirtiness is refreshed at most every 10 s** (plus the few ms git takes)
      unless HEAD/index change: a run shortly after editing a tracked file may
      still say ``dirty: false``.  A repository created in (or removed from)
      ``root`` is noticed on that periodic refresh too.

    A git refresh spawns ``git`` three times (~3 ms each here); a distribution
    refresh reads the metadata headers of every installed distribution (~10 ms
    per 100).  The cached path is a few ``stat`` calls, or none with ``watch``
    (a kernel's :meth:`TreeWatcher.watched <dotnb.capture.watcher.TreeWatcher.watched>`,
    which keeps one watch per folder while it is live):
    the folders holding what would be stat'ed are watched instead, and stat'ed
    only after an event in one of them (or once after the watches are set up, or
    whenever a watch is gone).  Thread-safe.
    """

    def __init__(
        self,
        root: Path,
        *,
        git_ttl: float = GIT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        watch: Callable[[str], DirWatch | None] | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self._git_ttl = git_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._static: dict[str, Any] | None = None
        # Distributions: the sys.path they were computed for and its site dirs.
        self._sys_path: list[str] | None = None
        self._site_dirs: tuple[str, ...] = ()
        self._site_sig: StatSignature = ()
        self._dists: list[dict[str, str]] = []
        self._dists_key = ""
        # Git.  _git_generation orders refreshes, so that a slow background
        # refresh never overwrites what a later synchronous one found.
        self._git: dict[str, Any] | None = None
        self._git_checked: float | None = None
        self._git_files: tuple[str, ...] = ()
        self._git_sig: StatSignature = ()
        self._git_generation = 0
        self._git_thread: threading.Thread | None = None
        self._status_backoff_until = -float("inf")
        # Folder watches standing in for the stats (see the class docstring): per
        # signature, the watches and their change count when it was last found
        # unchanged (None: stat it on the next call).
        self._watch = watch
        self._site_watches: list[DirWatch] | None = None
        self._site_seen: int | None = None
        self._git_watches: list[DirWatch] | None = None
        self._git_seen: int | None = None

    def get(self) -> tuple[dict[str, Any], list[dict[str, str]], str]:
        """``(summary, distributions, distributions_key)``.

        ``summary`` is a fresh dict (with a fresh ``git`` dict) the caller may
        modify.  ``distributions`` is the cache's own list, shared between calls
        until the distributions change: treat it as read-only.  ``key`` is
        :func:`distributions_key` of it, so a caller can store each distinct list
        once (it equals the BLAKE3 object id of the list's canonical JSON).
        """
        with self._lock:
            if self._static is None:
                self._static = _static_summary()
            if sys.path != self._sys_path or self._site_changed():
                self._refresh_distributions()
            now = self._clock()
            if self._git_checked is None or self._git_changed():
                self._git_generation += 1
                self._apply_git(self._git_generation, *self._read_git(now))
            elif now - self._git_checked >= self._git_ttl and self._git_thread is None:
                self._git_generation += 1
                self._git_thread = threading.Thread(
                    target=self._background_git,
                    args=(self._git_generation, now),
                    name="dotnb-git-refresh",
                    daemon=True,
                )
                self._git_thread.start()
            summary = dict(self._static)
            summary["git"] = dict(self._git) if self._git is not None else None
            return summary, self._dists, self._dists_key

    def _site_changed(self) -> bool:
        seen = _changes(self._site_watches)
        if seen is not None and seen == self._site_seen:
            return False  # no event in the site folders since they were last stat'ed
        if stat_signature(self._site_dirs) != self._site_sig:
            return True
        self._site_seen = seen  # counted before the stats: a later event is not missed
        return False

    def _git_changed(self) -> bool:
        seen = _changes(self._git_watches)
        if seen is not None and seen == self._git_seen:
            return False
        if stat_signature(self._git_files) != self._git_sig:
            return True
        self._git_seen = seen
        return False

    def _watches_for(self, paths: Iterable[str]) -> list[DirWatch] | None:
        """Watches of the folders ``paths``; None when there is no watcher or a folder
        cannot be watched."""
        if self._watch is None:
            return None
        found = []
        for path in dict.fromkeys(paths):
            watch = self._watch(path)
            if watch is None:
                return None
            found.append(watch)
        return found

    def wait_for_refresh(self, timeout: float | None = None) -> None:
        """Wait for a background git refresh started by :meth:`get`, if any."""
        thread = self._git_thread
        if thread is not None:
            thread.join(timeout)

    def _refresh_distributions(self) -> None:
        raw = list(sys.path)
        # Some tools put Path objects (or worse) on sys.path; scan only the str
        # entries, but remember the raw list so the comparison in get() holds.
        path = [p for p in raw if isinstance(p, str)]
        site_dirs = tuple(p for p in path if os.path.basename(p.rstrip("/\\")) in _SITE_DIR_NAMES)
        # Signature before the scan: an install racing with it is seen next time.
        sig = stat_signature(site_dirs)
        dists = _distributions(path)
        self._sys_path, self._site_dirs, self._site_sig = raw, site_dirs, sig
        # Watched from now on; stat'ed once more on the next call (an install between
        # the stats above and the watch must not be missed).
        self._site_watches, self._site_seen = self._watches_for(site_dirs), None
        if dists != self._dists or not self._dists_key:
            self._dists = dists
            self._dists_key = distributions_key(dists)

    def _read_git(
        self, now: float
    ) -> tuple[dict[str, Any] | None, tuple[str, ...], StatSignature, float, bool]:
        """Query git without touching the cache (runs in either thread)."""
        dirs = _find_git_dirs(self.root)
        files = _git_watch_files(dirs)
        # Signature *before* asking git: a commit landing while git runs then shows
        # up as a change on the next call instead of hiding behind the new stat.
        # (git itself does not write these files here: see GIT_OPTIONAL_LOCKS.)
        sig = stat_signature(files)
        timed_out = False
        if dirs is None and "GIT_DIR" not in os.environ:
            # Not in a repository: do not spawn git every 10 s to be told so.
            info: dict[str, Any] | None = None
        else:
            info, timed_out = _git_info(self.root, with_status=now >= self._status_backoff_until)
        return info, files, sig, now, timed_out

    def _apply_git(
        self,
        generation: int,
        info: dict[str, Any] | None,
        files: tuple[str, ...],
        sig: StatSignature,
        now: float,
        timed_out: bool,
    ) -> None:
        if generation != self._git_generation:
            return  # a newer refresh started meanwhile; its result wins
        self._git, self._git_files, self._git_sig, self._git_checked = info, files, sig, now
        self._git_watches = self._watches_for(os.path.dirname(f) for f in files)
        self._git_seen = None
        if timed_out:
            self._status_backoff_until = now + GIT_STATUS_BACKOFF_SECONDS

    def _background_git(self, generation: int, now: float) -> None:
        try:
            result = self._read_git(now)
        except Exception:
            # Never surface in the kernel; the previous value stays, retried later.
            result = None
        with self._lock:
            if result is not None:
                self._apply_git(generation, *result)
            elif generation == self._git_generation:
                self._git_checked = now
            self._git_thread = None
