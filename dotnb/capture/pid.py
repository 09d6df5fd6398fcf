"""This process's id without a system call per read.

``os.getpid()`` is a system call, and in a kernel every system call on a cell's
path lets the kernel's other threads take the GIL.  The id only changes in a
forked child (multiprocessing), which :func:`os.register_at_fork` reports.
"""

from __future__ import annotations

import os

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current_pid() -> int:
    return _pid
