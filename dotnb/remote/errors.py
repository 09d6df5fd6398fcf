"""Errors from remotes.  Every message names the remote, never its credentials."""

from __future__ import annotations

from dotnb.store.errors import DotnbError


class RemoteError(DotnbError):
    """A remote operation failed in a way the user can act on."""


class UnknownRemote(RemoteError):
    pass


class NoRemoteConfigured(RemoteError):
    pass


class RemoteUnavailable(RemoteError):
    """Unreachable endpoint, missing bucket, wrong credentials or access denied."""


class RemoteFormatError(RemoteError):
    """The remote was written by a newer dotnb, or is not a dotnb remote."""


class RemoteObjectCorrupt(RemoteError):
    """A remote object's bytes do not hash to its name; it is never stored locally."""
