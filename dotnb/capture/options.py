"""Parsing of the ``%%track`` line and of ``%dotnb`` commands."""

from __future__ import annotations

import argparse
import copy
import shlex
from dataclasses import dataclass, field
from typing import Any

from dotnb.capture.params import parse_param_option


class TrackUsageError(ValueError):
    """Bad ``%%track`` options: shown to the user instead of running the cell."""


@dataclass
class TrackOptions:
    name: str | None = None
    metrics: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    notebook: str | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse would print and exit the kernel
        raise TrackUsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise TrackUsageError(message or self.format_help())


def _build_parser() -> _Parser:
    p = _Parser(prog="%%track", add_help=True, description="Record this cell's execution as a dotnb run.")
    p.add_argument("--name", help="a name for the run")
    p.add_argument(
        "--metrics", default="", help="comma-separated variable names read as metrics after the cell"
    )
    p.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set NAME before the cell runs, overriding the cell's own literal assignment",
    )
    p.add_argument("--input", action="append", default=[], metavar="GLOB", help="declare input files")
    p.add_argument("--output", action="append", default=[], metavar="GLOB", help="declare output files")
    p.add_argument("--notebook", help="the notebook path, when the kernel cannot tell")
    return p


_PARSER = _build_parser()
TRACK_HELP = _PARSER.format_help()


_PARSED: dict[str, TrackOptions] = {}


def parse_track_line(line: str) -> TrackOptions:
    """The options of a ``%%track`` line (a fresh copy: callers may change it)."""
    if not line.strip():
        return TrackOptions()  # plain %%track: no shlex, no argparse (it is parsed 3 times a cell)
    # argparse costs ~0.2 ms, and a cell's line is parsed 3 times, then again on every re-run.
    parsed = _PARSED.get(line)
    if parsed is None:
        parsed = _parse(line)
        if len(_PARSED) >= 256:
            _PARSED.clear()
        _PARSED[line] = parsed
    return copy.deepcopy(parsed)


def _parse(line: str) -> TrackOptions:
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise TrackUsageError(f"cannot parse %%track options: {exc}") from None
    ns = _PARSER.parse_args(argv)
    params: dict[str, Any] = {}
    for text in ns.param:
        try:
            key, value = parse_param_option(text)
        except ValueError as exc:
            raise TrackUsageError(str(exc)) from None
        params[key] = value
    metrics = [m.strip() for m in ns.metrics.split(",") if m.strip()]
    for m in metrics:
        if not m.isidentifier():
            raise TrackUsageError(f"--metrics: {m!r} is not a variable name")
    return TrackOptions(
        name=ns.name,
        metrics=metrics,
        params=params,
        inputs=ns.input,
        outputs=ns.output,
        notebook=ns.notebook,
    )


def split_track_cell(raw_cell: str) -> tuple[str, str] | None:
    """(options line, body) when the cell starts with ``%%track``, else None."""
    stripped = raw_cell.lstrip("\n")
    if not stripped.startswith("%%track"):
        return None
    first, _, body = stripped.partition("\n")
    rest = first[len("%%track") :]
    if rest and not rest[0].isspace():
        return None  # e.g. %%tracking: some other magic
    return rest.strip(), body
