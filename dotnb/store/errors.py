"""Typed errors: the CLI maps them to exit codes and messages, the server to HTTP codes."""

from __future__ import annotations


class DotnbError(Exception):
    """Base class of every error dotnb reports to a user (message is user-facing)."""

    exit_code = 1


class RunNotFound(DotnbError):
    pass


class AmbiguousRun(DotnbError):
    pass


class StoreFormatError(DotnbError):
    """The store was written by a newer dotnb, or is not a dotnb store."""


class PathOutsideRoot(DotnbError):
    """A path from a request or a manifest would leave the project root."""


class ObjectMissing(DotnbError):
    pass


class ObjectCorrupt(DotnbError):
    pass


class NotebookInvalid(DotnbError):
    pass
