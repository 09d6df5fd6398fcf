"""W3C PROV documents of a subject, through the ``prov`` package: runs as activities, file
contents as entities named by their BLAKE3 hash, the people who ran them as agents, and
``used``, ``wasGeneratedBy``, ``wasAssociatedWith`` and ``wasDerivedFrom`` between them.
Written as PROV-JSON or as PROV-O in JSON-LD (through rdflib)."""

from __future__ import annotations

import datetime
import json
import warnings
from typing import Any

from prov.model import PROV, PROV_TYPE, ProvDocument

from dotnb.provenance.subject import Subject
from dotnb.store.content_lineage import GENERATED, USED
from dotnb.store.hashing import hash_bytes

# The namespaces of the identifiers and attributes dotnb writes.
DOTNB_NS = "urn:dotnb:ns#"
RUN_NS = "urn:dotnb-run:"
CONTENT_NS = "urn:blake3:"
AGENT_NS = "urn:dotnb-agent:"

PROV_JSON = "prov-json"
PROV_O = "prov-o"
FORMATS = (PROV_JSON, PROV_O)


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _node_id(key: str, node: dict[str, Any]) -> str:
    kind = node["type"]
    if kind == "run":
        return f"run:{node['run']}"
    if kind == "content":
        return f"blake3:{node['hash']}"
    # A path is no valid local name: an external or unstored file is named by its path's hash.
    return f"dotnb:{kind}-{hash_bytes(key.encode())[:32]}"


def document(subject: Subject) -> ProvDocument:
    """The PROV document of ``subject``'s upstream lineage."""
    doc = ProvDocument()
    doc.add_namespace("dotnb", DOTNB_NS)
    doc.add_namespace("run", RUN_NS)
    doc.add_namespace("blake3", CONTENT_NS)
    doc.add_namespace("agent", AGENT_NS)
    graph = subject.graph
    ids = {key: _node_id(key, node) for key, node in graph.nodes.items()}
    agents: set[str] = set()
    for key, node in sorted(graph.nodes.items()):
        if node["type"] == "run":
            manifest = subject.manifests.get(node["run"], {})
            start = _time(node.get("started_at"))
            end = None
            if start is not None and isinstance(manifest.get("duration_s"), (int, float)):
                end = start + datetime.timedelta(seconds=float(manifest["duration_s"]))
            attributes: dict[str, Any] = {
                "prov:label": f"{node.get('notebook') or ''} #{node.get('number')}".strip(),
                "dotnb:run": node["run"],
                "dotnb:notebook": node.get("notebook") or "",
                "dotnb:status": node.get("status") or "",
                "dotnb:params": json.dumps(manifest.get("params") or {}, sort_keys=True, ensure_ascii=False),
                "dotnb:metrics": json.dumps(
                    manifest.get("metrics") or {}, sort_keys=True, ensure_ascii=False
                ),
                "dotnb:code": manifest.get("code") or "",
            }
            if node.get("name"):
                attributes["dotnb:name"] = node["name"]
            doc.activity(ids[key], start, end, attributes)
            author = node.get("author")
            if author:
                agent = f"agent:{hash_bytes(author.encode())[:32]}"
                if agent not in agents:
                    agents.add(agent)
                    doc.agent(agent, {PROV_TYPE: PROV["Person"], "prov:label": author})
                doc.wasAssociatedWith(ids[key], agent)
        elif node["type"] == "content":
            paths = sorted(node.get("paths") or [])
            attributes = {
                "prov:label": ", ".join(paths) or node["hash"],
                "dotnb:hash": node["hash"],
                "dotnb:hashAlgorithm": "blake3",
                "dotnb:source": bool(node.get("source")),
            }
            entity = doc.entity(ids[key], attributes)
            for path in paths:
                entity.add_attributes([("dotnb:path", path)])
        else:
            doc.entity(ids[key], {"prov:label": node["path"], "dotnb:kind": node["type"]})
    used_by: dict[str, list[str]] = {}
    for a, b, relation in sorted(graph.edges):
        if relation == USED:
            doc.used(ids[b], ids[a])
            used_by.setdefault(b, []).append(a)
        elif relation == GENERATED:
            doc.wasGeneratedBy(ids[b], ids[a])
    # What a run wrote derives from what it read.
    for a, b, relation in sorted(graph.edges):
        if relation == GENERATED:
            for source in used_by.get(a, []):
                doc.wasDerivedFrom(ids[b], ids[source], ids[a])
    return doc


def serialize(subject: Subject, fmt: str) -> str:
    """``subject`` as PROV-JSON, or PROV-O in JSON-LD."""
    doc = document(subject)
    if fmt == PROV_JSON:
        return str(doc.serialize(format="json", indent=2))
    if fmt == PROV_O:
        # Compacted with the namespaces bound: without them prov's own reader cannot
        # turn the attributes' IRIs back into qualified names.
        with warnings.catch_warnings():
            # prov 1.5 builds an rdflib ConjunctiveGraph, which rdflib 7 deprecates.
            warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
            return str(doc.serialize(format="rdf", rdf_format="json-ld", auto_compact=True))
    raise ValueError(f"unknown PROV format {fmt!r}")
