"""The entry point of console scripts installed before :mod:`dotnb.cli` became a package.

An installed (or editable) dotnb keeps the ``dotnb`` script generated at install
time, which imports ``dotnb.entry:main``, until it is reinstalled; the entry point
is now :func:`dotnb.cli.entry.main` (``[project.scripts]``).
"""

from __future__ import annotations

from dotnb.cli.entry import main

__all__ = ["main"]
