"""Headless execution: ``dotnb run`` (a notebook in a fresh kernel) and ``dotnb reproduce``.

Kernel-side recording is the ordinary capture code (:mod:`dotnb.capture`): a
headless kernel is started by nbclient with the notebook's path in
``JPY_SESSION_NAME`` and the store root in ``DOTNB_ROOT``, and dotnb is loaded
into it by a silent request before the notebook's first cell, so the notebook
file is never changed and the setup is not part of any run's lineage.

The operations here take and return plain data (:class:`dotnb.store.repo.Store`,
dicts, dataclasses) and never print: the CLI formats them, and the REST API can
call them the same way.  Modules:

- :mod:`.notebooks` — reading and validating notebooks, papermill-style parameters;
- :mod:`.kernel` — executing cells in a fresh kernel (nbclient), cell by cell;
- :mod:`.execute` — ``dotnb run``;
- :mod:`.workfolder` — materialising a run in a clean folder, importing the new run;
- :mod:`.verdicts` — comparing a reproduction with its run: a verdict per status, param,
  metric (within tolerance) and file, and the environment differences;
- :mod:`.reproduce` — ``dotnb reproduce``.
"""

from __future__ import annotations

from dotnb.store.errors import DotnbError
from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN


class CouldNotRun(DotnbError):
    """The notebook or run could not be executed at all (exit status 2)."""

    exit_code = EXIT_COULD_NOT_RUN
