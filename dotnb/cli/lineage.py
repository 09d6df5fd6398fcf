"""``dotnb lineage``: where a file's bytes or a run came from, and what used them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dotnb.cli.args import Commands, non_negative_int, open_store, resolve_run
from dotnb.cli.exits import EXIT_ERROR, EXIT_OK, EXIT_USAGE, error
from dotnb.cli.output import emit_json, out
from dotnb.cli.text import SHORT_HASH, SHORT_ID, clean

if TYPE_CHECKING:
    from dotnb.store.content_lineage import LineageGraph
    from dotnb.store.repo import Store


def add_lineage(commands: Commands) -> None:
    p = commands.add(
        "lineage",
        cmd_lineage,
        "where a file's bytes came from, and what used them",
        """
        Show the lineage of a file's bytes or of a run, across notebooks: upstream,
        the run that wrote the bytes, the files that run read, the runs that wrote
        those, and so on back to sources (bytes no run wrote) and files outside the
        project; downstream, the runs that read the bytes, what they wrote, and what
        used that in turn.  Lineage follows content, not names: a file renamed or
        copied between runs keeps its lineage.  Without --upstream or --downstream,
        both are shown.

        PATH is relative to the working folder or to the project root; its bytes
        are those on disk now, or, for a file that is gone, the bytes last recorded
        at that path.  An argument that is no file is read as a RUN.
        """,
        """
        examples:
          dotnb lineage models/model.pkl --upstream
          dotnb lineage data/raw.csv --downstream --json
          dotnb lineage latest --depth 1
          dotnb lineage models/model.pkl --dot | dot -Tsvg > lineage.svg
        """,
        commands.notebook,
    )
    p.add_argument("target", metavar="PATH|RUN", help="a file in the project, or a run")
    way = p.add_mutually_exclusive_group()
    way.add_argument("--upstream", action="store_true", help="only what the bytes or run came from")
    way.add_argument(
        "--downstream", action="store_true", help="only what used the bytes or the run's outputs"
    )
    p.add_argument(
        "--depth",
        metavar="N",
        type=non_negative_int,
        default=None,
        help="follow at most N runs away (default: all)",
    )
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the graph as JSON (nodes and edges)")
    shape.add_argument("--dot", action="store_true", help="print the graph in Graphviz's DOT language")


EXPORT_FORMATS = ("prov-json", "prov-o", "ro-crate", "html")


def add_export(commands: Commands) -> None:
    p = commands.add(
        "export",
        cmd_export,
        "the provenance of a file or a run, for tools and people outside dotnb",
        """
        Write the provenance of a file's bytes or of a run (everything upstream of it,
        across notebooks) to OUT:

          prov-json  W3C PROV as PROV-JSON
          prov-o     W3C PROV as PROV-O, in JSON-LD
          ro-crate   an RO-Crate (Process Run Crate profile): a folder, or a zip
                     when OUT ends in .zip, with each run's notebook snapshot,
                     code, environment, parameters and metrics, and with
                     --with-data the data files; `dotnb import` reads it back
          html       one self-contained HTML report (no scripts, no network) for a
                     reviewer: what it was made from, by whom, when, with which
                     code, parameters, metrics and environment, and whether each
                     run was reproduced

        Runs are PROV activities, file contents entities named by their BLAKE3
        hash, the people who ran them agents; with used, wasGeneratedBy,
        wasAssociatedWith and wasDerivedFrom between them.  PATH|RUN is read as
        by `dotnb lineage`.
        """,
        """
        examples:
          dotnb export models/model.pkl --format html -o model-provenance.html
          dotnb export latest --format prov-json -o run.prov.json
          dotnb export models/model.pkl --format prov-o -o model.jsonld
          dotnb export models/model.pkl --format ro-crate --with-data -o model-crate.zip
        """,
        commands.notebook,
    )
    p.add_argument("target", metavar="PATH|RUN", help="a file in the project, or a run")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="what to write")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="the file (or crate folder) to write")
    p.add_argument(
        "--with-data", action="store_true", help="ro-crate: put the data files' bytes in the crate too"
    )


def add_import(commands: Commands) -> None:
    p = commands.add(
        "import",
        cmd_import,
        "record the runs of a crate made by dotnb export",
        """
        Record in this store the runs of an RO-Crate made by `dotnb export --format
        ro-crate` (a folder or a zip): a way to hand results to someone without a
        shared remote.  Runs already here are left alone; imported runs keep their
        ids and get numbers of this store.  With a crate exported --with-data, the
        runs' files can be restored from this store byte for byte.
        """,
        """
        examples:
          dotnb import model-crate.zip
          dotnb import ~/Downloads/results-crate --json
        """,
        commands.json,
    )
    p.add_argument("crate", metavar="CRATE", help="the crate folder or zip")


def cmd_export(args: argparse.Namespace) -> int:
    import datetime
    from pathlib import Path

    from dotnb.provenance.subject import subject_of
    from dotnb.store.atomic import write_bytes

    with open_store(args) as store:
        try:
            path, run_id = target_of(store, args)
        except Usage as exc:
            error(str(exc))
            return EXIT_USAGE
        subject = subject_of(store, path=path, run=run_id)
    if args.format == "ro-crate":
        from dotnb.provenance.crate import remove_output, write_crate

        with open_store(args) as store:
            remove_output(Path(args.output))
            write_crate(store, subject, Path(args.output), with_data=args.with_data)
        out(f"wrote {clean(args.output)} (ro-crate: {len(subject.graph.runs())} run(s))")
        return EXIT_OK
    if args.with_data:
        error("--with-data is for --format ro-crate")
        return EXIT_USAGE
    if args.format == "html":
        from dotnb.provenance.report import render

        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        text = render(subject, now)
    else:
        try:
            from dotnb.provenance.w3c import serialize
        except ImportError as exc:
            error(
                f"--format {args.format} needs the prov and rdflib packages:"
                f" pip install 'dotnb[export]' ({exc})"
            )
            return EXIT_ERROR
        text = serialize(subject, args.format)
    write_bytes(Path(args.output), text.encode())
    out(f"wrote {clean(args.output)} ({args.format}: {len(subject.graph.runs())} run(s))")
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dotnb.provenance.crate import import_crate

    crate = Path(args.crate)
    if not crate.exists():
        error(f"no such crate: {args.crate}")
        return EXIT_USAGE
    with open_store(args) as store:
        added = import_crate(store, crate)
    if args.json:
        emit_json({"imported": added})
    else:
        out(f"imported {len(added)} run(s)")
    return EXIT_OK


COMMANDS: dict[str, Callable[[Commands], None]] = {
    "lineage": add_lineage,
    "export": add_export,
    "import": add_import,
}


def direction_of(args: argparse.Namespace) -> str:
    from dotnb.store.content_lineage import BOTH, DOWNSTREAM, UPSTREAM

    return UPSTREAM if args.upstream else DOWNSTREAM if args.downstream else BOTH


def target_of(store: Store, args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(path, None) or (None, run id) for the PATH|RUN argument: a file on disk or
    recorded at that path first, else a run.  An argument that is neither is a usage error."""
    from dotnb.store.content_lineage import LineageNotFound, file_hash
    from dotnb.store.errors import AmbiguousRun, DotnbError, PathOutsideRoot, RunNotFound
    from dotnb.store.paths import path_candidates

    text: str = args.target
    outside: PathOutsideRoot | None = None
    for rel in path_candidates(store.root, text):
        try:
            file_hash(store, rel)
            return rel, None
        except LineageNotFound:
            continue
        except PathOutsideRoot as exc:
            outside = exc
    try:
        return None, resolve_run(store, args, text)
    except (RunNotFound, AmbiguousRun) as exc:
        if outside is not None or not path_candidates(store.root, text):
            raise Usage(f"{text!r} is outside the project root") from exc
        if isinstance(exc, AmbiguousRun):
            raise Usage(str(exc)) from exc
        raise Usage(f"{text!r} is neither a file of the project nor a run") from exc
    except DotnbError as exc:
        raise Usage(str(exc)) from exc


def lineage_target(store: Store, args: argparse.Namespace, direction: str) -> LineageGraph:
    """The graph of the PATH|RUN argument (see :func:`target_of`)."""
    from dotnb.store.content_lineage import lineage_of_path, lineage_of_run

    path, run_id = target_of(store, args)
    if path is not None:
        return lineage_of_path(store, path, direction, args.depth)
    assert run_id is not None
    return lineage_of_run(store, run_id, direction, args.depth)


class Usage(Exception):
    """An argument that names nothing: one line on stderr, exit status 2."""


def cmd_lineage(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        try:
            graph = lineage_target(store, args, direction_of(args))
        except Usage as exc:
            error(str(exc))
            return EXIT_USAGE
    if args.json:
        emit_json(graph.to_json())
    elif args.dot:
        for line in format_dot(graph):
            out(line)
    else:
        for line in format_lineage(graph):
            out(line)
    return EXIT_OK


# ---------------------------------------------------------------------------
# rendering


def node_label(node: dict[str, Any]) -> str:
    """One line naming a node, every user string made safe for a terminal."""
    kind = node["type"]
    if kind == "run":
        number = f"#{node['number']} " if node.get("number") else ""
        name = f" {node['name']!r}" if node.get("name") else ""
        who = node.get("author") or ""
        remote = f", pulled from {node['remote']}" if node.get("remote") else ""
        when = (node.get("started_at") or "")[:19]
        return clean(
            f"run {node['run'][:SHORT_ID]} {number}{node.get('notebook') or ''}{name} ({who} {when}{remote})"
        )
    if kind == "content":
        paths = ", ".join(sorted(node.get("paths") or [])) or "(no path recorded)"
        source = "  [source: no run wrote these bytes]" if node.get("source") else ""
        stale = "  [changed on disk since]" if node.get("stale") else ""
        return clean(f"{paths}  {node['hash'][:SHORT_HASH]}{source}{stale}")
    if kind == "external":
        return clean(f"{node['path']}  [outside the project]")
    return clean(f"{node['path']}  [content not stored]")


def format_lineage(graph: LineageGraph) -> list[str]:
    """The graph as indented trees from its root: upstream (← came from) then
    downstream (→ used by); a node met twice is named, not expanded again."""
    from dotnb.store.content_lineage import BOTH, DOWNSTREAM, UPSTREAM

    into: dict[str, list[tuple[str, str]]] = {}
    out_of: dict[str, list[tuple[str, str]]] = {}
    for a, b, relation in sorted(graph.edges):
        into.setdefault(b, []).append((a, relation))
        out_of.setdefault(a, []).append((b, relation))
    lines = [node_label(graph.nodes[graph.root])]
    sections = [UPSTREAM, DOWNSTREAM] if graph.direction == BOTH else [graph.direction]
    for direction in sections:
        lines.append(f"{direction}:")
        body: list[str] = []
        _tree(graph, into if direction == UPSTREAM else out_of, direction, graph.root, 1, {graph.root}, body)
        if graph.root in graph.truncated:
            body.append("  (more beyond --depth)")
        lines += body or ["  (nothing recorded)"]
    return lines


def _tree(
    graph: LineageGraph,
    links: dict[str, list[tuple[str, str]]],
    direction: str,
    key: str,
    indent: int,
    seen: set[str],
    body: list[str],
) -> None:
    from dotnb.store.content_lineage import GENERATED, UPSTREAM

    for other, relation in links.get(key, []):
        if direction == UPSTREAM:
            verb = "written by" if relation == GENERATED else "read"
        else:
            verb = "wrote" if relation == GENERATED else "read by"
        again = other in seen
        suffix = "  (shown above)" if again else ""
        if other in graph.truncated and not again:
            suffix = "  (more beyond --depth)"
        body.append(f"{'  ' * indent}{verb} {node_label(graph.nodes[other])}{suffix}")
        if not again:
            seen.add(other)
            _tree(graph, links, direction, other, indent + 1, seen, body)


def _dot_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a DOT string: quotes and backslashes escaped


def format_dot(graph: LineageGraph) -> list[str]:
    """The graph in DOT: runs as boxes, contents as ellipses, sources doubled."""
    lines = ["digraph lineage {", "  rankdir=LR;"]
    for key in sorted(graph.nodes):
        node = graph.nodes[key]
        shape = "box" if node["type"] == "run" else "ellipse"
        extra = ", peripheries=2" if node.get("source") else ""
        if node["type"] in ("external", "unstored"):
            extra = ", style=dashed"
        if key == graph.root:
            extra += ", penwidth=2"
        lines.append(f"  {_dot_string(key)} [label={_dot_string(node_label(node))}, shape={shape}{extra}];")
    for a, b, relation in sorted(graph.edges):
        lines.append(f"  {_dot_string(a)} -> {_dot_string(b)} [label={_dot_string(relation)}];")
    lines.append("}")
    return lines
