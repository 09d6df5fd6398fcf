"""What an export is about: a file's bytes or a run, with everything upstream of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dotnb.store.content_lineage import UPSTREAM, LineageGraph, lineage_of_path, lineage_of_run
from dotnb.store.repo import Store


@dataclass
class Subject:
    """The upstream lineage graph of what is exported, and the manifest of each of its runs."""

    graph: LineageGraph
    manifests: dict[str, dict[str, Any]]
    # Runs recorded as reproductions of a run of the graph: run id -> [(id, status)].
    reproductions: dict[str, list[tuple[str, str]]]

    @property
    def title(self) -> str:
        node = self.graph.nodes[self.graph.root]
        if node["type"] == "run":
            return f"run {node['run']}"
        return str(node.get("queried_path") or ", ".join(sorted(node.get("paths") or [])) or node["hash"])


def subject_of(store: Store, *, path: str | None = None, run: str | None = None) -> Subject:
    """The subject of an export of ``path`` (root-relative) or of run ``run`` (a full id)."""
    if (path is None) == (run is None):
        raise ValueError("give a path or a run")
    if path is not None:
        graph = lineage_of_path(store, path, UPSTREAM)
    else:
        assert run is not None
        graph = lineage_of_run(store, run, UPSTREAM)
    run_ids = graph.runs()
    manifests = {run_id: store.manifest(run_id) for run_id in run_ids}
    reproductions: dict[str, list[tuple[str, str]]] = {}
    for run_id, reproduces, status in store.index.query(
        "SELECT id, json_extract(summary, '$.reproduces'), status FROM runs"
        " WHERE json_extract(summary, '$.reproduces') IS NOT NULL"
    ):
        if reproduces in manifests:
            reproductions.setdefault(str(reproduces), []).append((str(run_id), str(status)))
    return Subject(graph, manifests, reproductions)
