"""Who records a run: this process's user and host, as a run's environment holds them."""

from __future__ import annotations

import getpass
import socket


def current_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:
        # No $USER/$LOGNAME and no passwd entry (containers running as a random
        # uid): KeyError before 3.13, OSError since.
        return None


def current_host() -> str | None:
    try:
        return socket.gethostname()
    except OSError:
        return None


def user_at_host() -> str:
    """``user@host``, with ``unknown`` for what cannot be found."""
    return f"{current_user() or 'unknown'}@{current_host() or 'unknown'}"
