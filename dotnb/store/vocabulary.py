"""The words every face of dotnb uses for a run: its kinds, statuses, shapes and MIME type.

The store writes them, the kernel (:mod:`dotnb.capture`) and headless execution
record and read them, the CLI and the REST API accept and print them; each takes
them from here, so a new kind or status is added in one place.

This module is on the start-up path of ``dotnb log --json`` (:mod:`dotnb.cli.entry`)
and is imported in the user's kernel: it imports nothing at run time.  The typed
shapes exist for type checking only (the manifest's JSON Schema,
``dotnb/schema/manifest.schema.json``, stays the reference for what is valid).
"""

from __future__ import annotations

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final, Literal, TypedDict

    RunKind = Literal["run", "checkpoint"]
    RunStatus = Literal["ok", "error", "interrupted"]

    class FileEntry(TypedDict, total=False):
        """An input or output of a run (``$defs/file`` of the schema)."""

        path: str
        hash: str | None  # None: no stored content (see no_content_reason)
        size: int | None
        pre_write: bool  # content captured before the cell overwrote the file
        changed: bool  # modified during the cell by a writer dotnb could not snapshot first
        missing: bool  # the file did not exist when the run was recorded
        skipped: str  # why its content was not stored (too large, ...)
        declared: bool
        produced_by: str  # inputs: the newest run that wrote these exact bytes

    class RunError(TypedDict):
        type: str
        message: str

    class Manifest(TypedDict, total=False):
        """A run manifest, as the store holds it (required keys per the schema)."""

        format: int
        id: str
        kind: RunKind
        number: int
        name: str | None
        notebook: str | None
        notebook_source: Literal["disk", "frontend", "headless"] | None
        notebook_snapshot: dict[str, Any] | None
        code: str
        lineage: Any  # a list of cells, or (format 2) segment references
        params: dict[str, Any]
        param_overrides: list[str]
        metrics: dict[str, float | str | None]
        metric_series: dict[str, list[dict[str, Any]]]
        inputs: list[FileEntry]
        outputs: list[FileEntry]
        absent: list[str]  # checkpoints: paths that did not exist before the restore
        external_inputs: list[dict[str, Any]]
        environment: dict[str, Any]
        status: RunStatus
        error: RunError | None
        started_at: str
        duration_s: float
        stdout_bytes: int | None
        kernel: dict[str, Any] | None
        parent: str | None
        checkpoint_of: str | None
        reproduces: str | None
        warnings: list[str]

    class RunSummary(TypedDict):
        """A run's row in ``dotnb log --json`` and ``GET /runs`` (``store.repo.run_summary``)."""

        id: str
        number: int
        notebook: str | None
        name: str | None
        kind: RunKind
        status: RunStatus
        started_at: str
        duration_s: float | None
        params: dict[str, Any]
        metrics: dict[str, Any]
        inputs: int
        outputs: int
        user: str | None
        host: str | None
        remote: str | None  # the remote the run was pulled from; None: recorded here
        reproduces: str | None
        checkpoint_of: str | None


# Kinds of run: a tracked cell's execution, or the state a restore is about to overwrite.
RUN: Final = "run"
CHECKPOINT: Final = "checkpoint"
RUN_KINDS = (RUN, CHECKPOINT)

# How a run ended.
OK: Final = "ok"
ERROR: Final = "error"
INTERRUPTED: Final = "interrupted"
RUN_STATUSES = (OK, ERROR, INTERRUPTED)

# What a tracked cell displays after it ran (its run line and this bundle); headless
# execution reads the runs a cell recorded from it.
RUN_MIME = "application/vnd.dotnb.run+json"

# The exit status of ``dotnb run`` and ``dotnb reproduce`` when nothing (or not the
# run's cell) could be executed; also the exit_code of headless.CouldNotRun.
EXIT_COULD_NOT_RUN = 2


def no_content_reason(entry: FileEntry | Mapping[str, Any]) -> str:
    """Why an input or output entry has no stored content (its ``hash`` is None)."""
    if entry.get("skipped"):
        return str(entry["skipped"])
    if entry.get("missing"):
        return "the file was missing when the run was recorded"
    return "no content stored"
