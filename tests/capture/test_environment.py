"""Environment capture against real git repositories and real site directories."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from dotnb.capture import environment
from dotnb.capture.environment import EnvironmentCache, collect_environment, distributions_key
from dotnb.capture.files import FileTracker
from dotnb.capture.ignore import IgnoreRules

SUMMARY_KEYS = {
    "python",
    "implementation",
    "platform",
    "machine",
    "host",
    "user",
    "cpu_count",
    "memory_bytes",
    "executable",
    "git",
}


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The user's ~/.gitconfig (signing, hooks, default branch) must not leak in,
    # and git must not walk above tmp_path looking for a repository.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()


def make_repo(path: Path, *, commit: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    if commit:
        (path / "train.py").write_text("lr = 0.1\n")
        git(path, "add", "train.py")
        git(path, "commit", "-q", "-m", "first")
    return path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WatchedCache(EnvironmentCache):
    """The cache as a kernel's session uses it: the folders it would stat are watched
    through a FileTracker's event stream, which the tracker's end() drains before each
    get() (so every change made before get() has been counted)."""

    def __init__(self, root: Path, tracker: FileTracker, **kwargs: Any) -> None:
        super().__init__(root, watch=tracker.watcher.watched, **kwargs)
        self.tracker = tracker

    def get(self) -> tuple[dict[str, Any], list[dict[str, str]], str]:
        self.tracker.watcher.sync()
        return super().get()


@pytest.fixture
def capture_tracker(tmp_path: Path) -> Iterator[FileTracker]:
    """A FileTracker with its event stream running (as after a kernel's first tracked cell)."""
    root = tmp_path / "capture-root"
    root.mkdir()
    tracker = FileTracker(root, IgnoreRules(root), lambda path: None)
    tracker.begin()
    tracker.end()
    assert tracker.watcher.streaming
    yield tracker
    tracker.close()


@pytest.fixture(params=["stat", "watched"])
def make_cache(request: pytest.FixtureRequest) -> Callable[..., EnvironmentCache]:
    """EnvironmentCache as it is, and with its folders watched (WatchedCache)."""
    if request.param == "stat":
        return EnvironmentCache
    tracker = request.getfixturevalue("capture_tracker")
    return lambda root, **kwargs: WatchedCache(root, tracker, **kwargs)


def get_after_refresh(cache: EnvironmentCache) -> dict[str, Any]:
    """get(), letting a background git refresh it started land first."""
    cache.get()
    cache.wait_for_refresh(timeout=10)
    return cache.get()[0]


# ------------------------------------------------------------------------ summary


def test_summary_fields(tmp_path: Path) -> None:
    summary, _ = collect_environment(tmp_path)
    assert set(summary) == SUMMARY_KEYS
    assert summary["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert summary["implementation"] == "CPython"
    assert summary["executable"] == sys.executable
    assert isinstance(summary["cpu_count"], int) and summary["cpu_count"] >= 1
    assert summary["memory_bytes"] is None or summary["memory_bytes"] > 2**20
    assert summary["git"] is None  # tmp_path is not a repository
    json.dumps(summary, allow_nan=False)


def test_user_lookup_failure_is_not_fatal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.setattr(getpass, "getuser", no_user)
    summary, _ = collect_environment(tmp_path)
    assert summary["user"] is None


# ------------------------------------------------------------------ distributions


def test_distributions_are_sorted_unique_and_include_pytest(tmp_path: Path) -> None:
    _, dists = collect_environment(tmp_path)
    names = [d["name"] for d in dists]
    assert names == sorted(set(names))
    by_name = {d["name"]: d["version"] for d in dists}
    assert by_name["pytest"] == pytest.__version__
    assert all(set(d) == {"name", "version"} for d in dists)
    assert all(n == n.lower() and "_" not in n and "." not in n for n in names)


def write_dist(site: Path, name: str, version: str, *, extra: str = "") -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra}\nLong description.\n"
    )


def test_name_normalisation_and_first_on_path_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = tmp_path / "a" / "site-packages"
    second = tmp_path / "b" / "site-packages"
    write_dist(first, "Foo_Bar.baz", "1.0")
    write_dist(second, "foo-bar-baz", "2.0")
    write_dist(second, "Other", "3.0", extra="Summary: Version: 9 is not a header here")
    monkeypatch.setattr(sys, "path", [str(first), str(second)])
    _, dists, _ = EnvironmentCache(tmp_path).get()
    assert dists == [
        {"name": "foo-bar-baz", "version": "1.0"},
        {"name": "other", "version": "3.0"},
    ]


def test_install_into_site_packages_refreshes_distributions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, make_cache: Callable[..., EnvironmentCache]
) -> None:
    site = tmp_path / "venv" / "site-packages"
    write_dist(site, "alpha", "1.0")
    monkeypatch.setattr(sys, "path", [str(site)])
    cache = make_cache(tmp_path)
    _, dists1, key1 = cache.get()
    assert dists1 == [{"name": "alpha", "version": "1.0"}]
    assert cache.get()[2] == key1  # settled: a watched cache stats only after an event now

    write_dist(site, "beta", "2.0")  # new .dist-info dir: site dir mtime changes
    _, dists2, key2 = cache.get()
    assert [d["name"] for d in dists2] == ["alpha", "beta"]
    assert key2 != key1

    # sys.path changing (a new entry) is noticed too.
    other = tmp_path / "other" / "site-packages"
    write_dist(other, "gamma", "3.0")
    sys.path.append(str(other))
    assert [d["name"] for d in cache.get()[1]] == ["alpha", "beta", "gamma"]

    # A non-str entry (some tools append Path objects) is ignored, not fatal.
    sys.path.append(tmp_path)  # type: ignore[arg-type]
    assert cache.get()[2] == cache.get()[2]
    assert [d["name"] for d in cache.get()[1]] == ["alpha", "beta", "gamma"]


def test_key_is_stable_and_is_the_store_object_id(tmp_path: Path) -> None:
    cache = EnvironmentCache(tmp_path)
    _, dists, key = cache.get()
    _, dists_again, key_again = cache.get()
    assert key_again == key and dists_again is dists
    canonical = json.dumps(dists, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert key == blake3.blake3(canonical.encode()).hexdigest() == distributions_key(dists)
    # A second cache (another kernel) computes the same key.
    assert EnvironmentCache(tmp_path).get()[2] == key


def test_key_matches_store_canonical_json(tmp_path: Path) -> None:
    manifest = pytest.importorskip("dotnb.store.manifest")
    hashing = pytest.importorskip("dotnb.store.hashing")
    _, dists, key = EnvironmentCache(tmp_path).get()
    assert key == hashing.hash_bytes(manifest.canonical_json(dists))


def test_summary_is_a_copy(tmp_path: Path) -> None:
    make_repo(tmp_path)
    cache = EnvironmentCache(tmp_path)
    summary, _, _ = cache.get()
    summary["host"] = "changed"
    summary["git"]["dirty"] = "changed"
    again, _, _ = cache.get()
    assert again["host"] != "changed" and again["git"]["dirty"] is False


# ------------------------------------------------------------------------------ git


def test_git_outside_a_repository(tmp_path: Path) -> None:
    assert collect_environment(tmp_path)[0]["git"] is None
    assert EnvironmentCache(tmp_path).get()[0]["git"] is None


def test_git_repository_without_commits(tmp_path: Path) -> None:
    make_repo(tmp_path, commit=False)
    assert collect_environment(tmp_path)[0]["git"] is None
    assert EnvironmentCache(tmp_path).get()[0]["git"] is None


def test_git_clean_dirty_and_detached(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    head = git(repo, "rev-parse", "HEAD")
    assert collect_environment(repo)[0]["git"] == {"commit": head, "branch": "main", "dirty": False}

    # Untracked files do not make the tree dirty; modified tracked files do.
    (repo / "new.csv").write_text("a,b\n")
    assert collect_environment(repo)[0]["git"]["dirty"] is False
    (repo / "train.py").write_text("lr = 0.2\n")
    assert collect_environment(repo)[0]["git"]["dirty"] is True

    git(repo, "checkout", "-q", "--detach")
    assert collect_environment(repo)[0]["git"] == {"commit": head, "branch": None, "dirty": True}


def test_git_from_a_subdirectory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    sub = repo / "notebooks" / "deep"
    sub.mkdir(parents=True)
    cache = EnvironmentCache(sub)
    assert cache.get()[0]["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    (repo / "train.py").write_text("changed\n")
    git(repo, "add", "train.py")  # index changes: noticed without waiting
    assert cache.get()[0]["git"]["dirty"] is True


def test_git_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert collect_environment(repo)[0]["git"] is None
    assert EnvironmentCache(repo).get()[0]["git"] is None


def test_cache_dirtiness_refreshes_after_ttl(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    clock = FakeClock()
    cache = EnvironmentCache(repo, clock=clock)
    assert cache.get()[0]["git"]["dirty"] is False

    (repo / "train.py").write_text("lr = 0.5\n")  # working tree only: not watched
    clock.now += 9.9
    assert cache.get()[0]["git"]["dirty"] is False  # cached, by design

    clock.now += 0.2
    # The expired value is re-read in the background; this call returns the old one.
    assert cache.get()[0]["git"]["dirty"] is False
    cache.wait_for_refresh(timeout=10)
    assert cache.get()[0]["git"]["dirty"] is True

    (repo / "train.py").write_text("lr = 0.1\n")  # back to the committed content
    clock.now += 10
    assert get_after_refresh(cache)["git"]["dirty"] is False


def test_cache_sees_index_commit_and_checkout_at_once(
    tmp_path: Path, make_cache: Callable[..., EnvironmentCache]
) -> None:
    repo = make_repo(tmp_path / "repo")
    clock = FakeClock()  # never advanced: only HEAD/ref/index changes can refresh
    cache = make_cache(repo, clock=clock)
    first = git(repo, "rev-parse", "HEAD")
    assert cache.get()[0]["git"] == {"commit": first, "branch": "main", "dirty": False}
    assert cache.get()[0]["git"]["dirty"] is False  # settled (see the site-packages test)

    (repo / "train.py").write_text("lr = 0.3\n")
    git(repo, "add", "train.py")
    assert cache.get()[0]["git"]["dirty"] is True

    git(repo, "commit", "-q", "-m", "second")
    second = git(repo, "rev-parse", "HEAD")
    assert cache.get()[0]["git"] == {"commit": second, "branch": "main", "dirty": False}

    git(repo, "checkout", "-q", "-b", "experiment")
    assert cache.get()[0]["git"]["branch"] == "experiment"

    git(repo, "checkout", "-q", first)
    assert cache.get()[0]["git"] == {"commit": first, "branch": None, "dirty": False}


def test_cache_in_a_linked_worktree(tmp_path: Path, make_cache: Callable[..., EnvironmentCache]) -> None:
    # A worktree's .git is a file; refs live in the main repository's git dir.
    repo = make_repo(tmp_path / "repo")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "side", str(wt))
    cache = make_cache(wt, clock=FakeClock())
    assert cache.get()[0]["git"]["branch"] == "side"
    (wt / "train.py").write_text("lr = 9\n")
    git(wt, "commit", "-q", "-am", "on side")
    assert cache.get()[0]["git"] == {
        "commit": git(wt, "rev-parse", "HEAD"),
        "branch": "side",
        "dirty": False,
    }


def test_repository_created_later_is_noticed_after_ttl(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = EnvironmentCache(tmp_path, clock=clock)
    assert cache.get()[0]["git"] is None
    make_repo(tmp_path)
    clock.now += 10
    assert get_after_refresh(cache)["git"]["branch"] == "main"


def test_status_timeout_backs_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    real_run = subprocess.run
    status_calls = 0

    def slow_status(args: list[str], **kwargs: Any) -> Any:
        nonlocal status_calls
        if "status" in args:
            status_calls += 1
            raise subprocess.TimeoutExpired(args, kwargs.get("timeout") or 0)
        return real_run(args, **kwargs)

    monkeypatch.setattr(environment.subprocess, "run", slow_status)
    clock = FakeClock()
    cache = EnvironmentCache(repo, clock=clock)
    git_info = cache.get()[0]["git"]
    assert git_info["commit"] == git(repo, "rev-parse", "HEAD") and git_info["dirty"] is None
    assert status_calls == 1
    clock.now += 10
    get_after_refresh(cache)
    assert status_calls == 1  # backing off: commit and branch only
    clock.now += environment.GIT_STATUS_BACKOFF_SECONDS
    get_after_refresh(cache)
    assert status_calls == 2


# --------------------------------------------------------------------------- cost


def test_cached_get_is_cheap(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    cache = EnvironmentCache(repo)
    cache.get()
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        cache.get()
    per_call = (time.perf_counter() - start) / n
    # Typically ~15 µs; generous bound so a loaded CI machine does not flake.
    assert per_call < 1e-3, f"cached get() took {per_call * 1e6:.0f} µs"


@pytest.mark.inotify_reader
def test_watched_folders_are_stated_only_after_an_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capture_tracker: FileTracker
) -> None:
    """With its folders watched, a cached get() makes no stat until an event comes in
    one of them (or a watch is lost), and then sees the change as before."""
    repo = make_repo(tmp_path / "repo")
    site = tmp_path / "venv" / "site-packages"
    write_dist(site, "alpha", "1.0")
    monkeypatch.setattr(sys, "path", [str(site)])
    stated: list[tuple[str, ...]] = []
    signature = environment.stat_signature

    def counted(paths: Any) -> Any:
        stated.append(tuple(paths))
        return signature(stated[-1])

    monkeypatch.setattr(environment, "stat_signature", counted)
    cache = WatchedCache(repo, capture_tracker, clock=FakeClock())
    cache.get()
    cache.get()  # the stats right after the watches were set up
    stated.clear()
    for _ in range(5):
        cache.get()
    assert stated == []

    write_dist(site, "beta", "2.0")
    assert [d["name"] for d in cache.get()[1]] == ["alpha", "beta"]
    assert (str(site),) in stated
    (repo / "train.py").write_text("lr = 0.2\n")
    git(repo, "commit", "-q", "-am", "second")
    assert cache.get()[0]["git"]["commit"] == git(repo, "rev-parse", "HEAD")
    cache.get()
    stated.clear()
    cache.get()
    assert stated == []

    # The stream gone (e.g. given up after timeouts): every get() stats again.
    capture_tracker.close()
    cache.get()
    assert len(stated) == 2
    write_dist(site, "gamma", "3.0")
    assert [d["name"] for d in cache.get()[1]] == ["alpha", "beta", "gamma"]


@pytest.mark.inotify_reader
def test_a_watched_folder_removed_falls_back_to_stat(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capture_tracker: FileTracker
) -> None:
    site = tmp_path / "venv" / "site-packages"
    write_dist(site, "alpha", "1.0")
    monkeypatch.setattr(sys, "path", [str(site)])
    cache = WatchedCache(tmp_path, capture_tracker)
    cache.get()
    cache.get()
    watch = capture_tracker.watcher.watched(str(site), create=False)
    assert watch is not None
    (site / "alpha-1.0.dist-info" / "METADATA").unlink()
    (site / "alpha-1.0.dist-info").rmdir()
    site.rmdir()
    assert cache.get()[1] == []
    assert not watch.live
    write_dist(site, "beta", "2.0")  # a new folder of that name: stat'ed, then watched
    assert [d["name"] for d in cache.get()[1]] == ["beta"]
