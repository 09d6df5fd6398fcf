"""A remote's format file: the store's own (:mod:`dotnb.store.layout`), checked alike."""

from __future__ import annotations

from collections.abc import Callable

from dotnb.remote.backend import Backend
from dotnb.remote.errors import RemoteFormatError
from dotnb.store.errors import StoreFormatError
from dotnb.store.layout import FORMAT_FILE, format_file_bytes, parse_format_file
from dotnb.store.versions import FORMAT_VERSION, check_format


def check_remote_format(backend: Backend, create: bool, notice: Callable[[str], None] | None = None) -> bool:
    """Check the remote's format file; create it when asked.  False: the remote is empty.

    ``create`` (a writer: push) also upgrades a remote of an older format before the
    first write, as the local store does (``Store.upgrade_format``), telling ``notice``.
    """
    data = backend.read(FORMAT_FILE)
    if data is None:
        if not create:
            return False
        backend.write(FORMAT_FILE, format_file_bytes(FORMAT_VERSION), create_only=True)
        data = backend.read(FORMAT_FILE) or b""
    try:
        version = parse_format_file(data)
    except (ValueError, KeyError, TypeError):
        raise RemoteFormatError(
            f"{backend.describe()} is not a dotnb remote (its 'format' file is unreadable)"
        ) from None
    try:
        check_format(version, backend.describe())
    except StoreFormatError as exc:
        raise RemoteFormatError(str(exc)) from None
    if create and version < FORMAT_VERSION:
        backend.write(FORMAT_FILE, format_file_bytes(FORMAT_VERSION))
        if notice is not None:
            notice(
                f"dotnb: upgraded the remote {backend.describe()} from format {version} to "
                f"{FORMAT_VERSION} (the format of the runs this dotnb records); dotnb releases "
                f"that read only format {version} can no longer pull from it"
            )
    return True
