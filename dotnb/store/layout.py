"""Where things are in a store, defined once for ``.dotnb/`` and for remotes.

Layout (a remote holds the same ``format``, ``objects/`` and ``runs/``, plus its
push journal, see :mod:`dotnb.remote.transfer`)::

    format          the format file: {"format": N}, N checked by versions.check_format
    objects/ab/…    content-addressed blobs, named by their hash (fan-out: 2 characters)
    packs/          many small objects in one file, each with an index (dotnb.store.packs):
                    <name>.pack and <name>.idx, locally and on a remote alike
    pack-cache/     copies of remotes' pack indexes (local only; dotnb.remote.packs)
    runs/<id>       one ref per run: the hash of its manifest object
    kernel-state/<id> a run's kernel state manifest hash (dotnb.store.kernel_state)
    kernel-checkpoints/<key> the checkpoint run ``%dotnb checkout --undo`` goes back
                    to, per notebook (dotnb.store.kernel_state; local only)
    annotations/…   tags and notes, one file per change (dotnb.store.annotations; on a
                    remote, dotnb.remote.annotation_transfer)
    signatures/<id> a run's SSH signature, beside it (dotnb.store.signing; on a remote too)
    index.sqlite    cache over manifests + stat cache (local only)
    tmp/            temp files (same filesystem, so renames are atomic; local only)

This module is on the start-up path of ``dotnb log`` (:mod:`dotnb.store.listing`):
it imports only os and imports json only for a format file it cannot read itself.
"""

from __future__ import annotations

import os

# Importing typing costs milliseconds of every CLI start; mypy reads any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STORE_DIR = ".dotnb"
FORMAT_FILE = "format"
OBJECTS_DIR = "objects"
RUNS_DIR = "runs"
TMP_DIR = "tmp"
PACKS_DIR = "packs"
PACK_CACHE_DIR = "pack-cache"
INDEX_FILE = "index.sqlite"
ANNOTATIONS_DIR = "annotations"
SIGNATURES_DIR = "signatures"
# Runs' kernel state refs (dotnb.store.kernel_state; local only unless pushed with it).
KERNEL_STATE_DIR = "kernel-state"
# Per notebook, the checkpoint run of its last kernel checkout (local only).
KERNEL_CHECKPOINTS_DIR = "kernel-checkpoints"

# An object's name is its hash split after this many characters: objects/ab/cdef…
FAN_OUT = 2


def object_name(digest: str) -> str:
    """The path of object ``digest`` inside ``objects/``."""
    return f"{digest[:FAN_OUT]}/{digest[FAN_OUT:]}"


def object_key(digest: str) -> str:
    """The path of object ``digest`` relative to the store (or the remote's base)."""
    return f"{OBJECTS_DIR}/{digest[:FAN_OUT]}/{digest[FAN_OUT:]}"


def object_of_key(key: str) -> str | None:
    """The object name a key of :func:`object_key`'s form stands for (not checked to
    be a hash); None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != OBJECTS_DIR or len(parts[1]) != FAN_OUT:
        return None
    return parts[1] + parts[2]


def pack_key(name: str, suffix: str) -> str:
    """The path of pack ``name``'s file with ``suffix`` (``.pack``, ``.idx``) on a remote."""
    return f"{PACKS_DIR}/{name}{suffix}"


def run_key(run_id: str) -> str:
    """The path of run ``run_id``'s ref relative to the store (or the remote's base)."""
    return f"{RUNS_DIR}/{run_id}"


# The prefix every ref's key starts with (to list them, and to take their run ids).
RUNS_PREFIX = f"{RUNS_DIR}/"


def format_file_bytes(version: int) -> bytes:
    """The format file of a store or remote of format ``version``: what
    ``json.dumps({"format": version})`` and a newline write."""
    return b'{"format": %d}\n' % version


def parse_format_file(data: str | bytes) -> Any:
    """The format version a format file holds, as ``json.loads(data)["format"]`` reads
    it (and raising what that raises: ValueError, KeyError or TypeError)."""
    text: str | bytes | None = data
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None  # perhaps another encoding json reads: json decides
    if isinstance(text, str):
        # What format_file_bytes writes is read without importing json.
        body = text[:-1] if text.endswith("\n") else text
        digits = body[11:-1]
        if (
            body.startswith('{"format": ')
            and body.endswith("}")
            and digits.isascii()
            and digits.isdigit()
            and (digits == "0" or not digits.startswith("0"))
        ):
            return int(digits)
    import json

    return json.loads(data)["format"]


def read_format_file(path: str) -> Any:
    """:func:`parse_format_file` of the file at ``path`` (OSError when it cannot be read)."""
    with open(path, encoding="utf-8") as f:
        return parse_format_file(f.read())


def find_root_dir(start: str) -> str | None:
    """Nearest ancestor of ``start`` (itself included, symlinks resolved) that holds a ``.dotnb`` folder."""
    here = os.path.realpath(start)
    while True:
        if os.path.isdir(os.path.join(here, STORE_DIR)):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def runs_mtime(store_dir: str) -> int:
    """The ``runs/`` folder's mtime (0 when missing): it changes whenever a ref is added."""
    try:
        return os.stat(os.path.join(store_dir, RUNS_DIR)).st_mtime_ns
    except FileNotFoundError:
        return 0
