"""Errors from remotes.  Every message names the remote, never its credentials."""

from __future__ import annotations

from dotnb.store.errors import DotnbError, ObjectMissing


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


class RemoteObjectMissing(RemoteError, ObjectMissing):
    """An object is missing here and on every remote: callers that handle a missing
    object (a lineage cell's code shown as missing, HTTP 410) keep working."""


class RemoteEmpty(RemoteError):
    """Nothing has been pushed to the remote yet (or its URL points at the wrong place)."""


class RemoteConfigError(RemoteError):
    """``.dotnb/remotes.json`` is damaged: a local problem, not the remote's."""
