"""A self-contained HTML provenance report of a subject, for a reviewer who does not use
Jupyter: one file, no scripts, no network, every string from a run escaped.

What it says: what the file or run was made from (each step upstream, back to the
sources), by whom and when, with which code, parameters, metrics and environment,
and whether each run was reproduced.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from dotnb.provenance.subject import Subject
from dotnb.store.content_lineage import GENERATED, USED

# Inline only: the page must render with no network (a Content-Security-Policy that
# allows no script and no remote resource says so to the browser too).
_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; } td, th { border: 1px solid #ccc; padding: .2em .5em;
text-align: left; vertical-align: top; } pre { background: #f6f6f6; padding: .5em; overflow-x: auto; }
code { font-family: ui-monospace, monospace; } .source { color: #7a4b00; } .ok { color: #1a7f37; }
.bad { color: #b42318; } section.run { border-top: 2px solid #ddd; margin-top: 1.5em; }
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _text(value: Any) -> str:
    return escape(str(value), quote=True)


def _json(value: Any) -> str:
    return _text(json.dumps(value, sort_keys=True, ensure_ascii=False))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """``rows`` hold escaped HTML already."""
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _content_cell(node: dict[str, Any]) -> str:
    if node["type"] == "content":
        paths = ", ".join(sorted(node.get("paths") or [])) or "(no path recorded)"
        mark = ' <span class="source">(source: no run wrote these bytes)</span>' if node.get("source") else ""
        if node.get("stale"):
            mark += ' <span class="bad">(changed on disk since)</span>'
        return f"<code>{_text(paths)}</code> <small>blake3 {_text(node['hash'])}</small>{mark}"
    what = "outside the project" if node["type"] == "external" else "content not stored"
    return f"<code>{_text(node['path'])}</code> <small>({what})</small>"


def render(subject: Subject, generated_at: str) -> str:
    """The report as one HTML document."""
    graph = subject.graph
    nodes = graph.nodes
    used: dict[str, list[str]] = {}
    wrote: dict[str, list[str]] = {}
    for a, b, relation in sorted(graph.edges):
        if relation == USED:
            used.setdefault(b, []).append(a)
        elif relation == GENERATED:
            wrote.setdefault(a, []).append(b)
    runs = sorted(
        (n for n in nodes.values() if n["type"] == "run"), key=lambda n: (n.get("started_at") or "", n["run"])
    )
    sources = [n for n in nodes.values() if n.get("source") or n["type"] in ("external", "unstored")]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>Provenance of {_text(subject.title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Provenance of <code>{_text(subject.title)}</code></h1>",
        f"<p>{len(runs)} run(s) and {len(sources)} source(s) upstream; report made {_text(generated_at)}"
        " by dotnb from its store. Files are named by the BLAKE3 hash of their bytes.</p>",
        "<h2>Sources</h2>",
        "<ul>" + "".join(f"<li>{_content_cell(n)}</li>" for n in sources) + "</ul>"
        if sources
        else "<p>None recorded.</p>",
        "<h2>Runs, oldest first</h2>",
    ]
    for node in runs:
        run_id = node["run"]
        manifest = subject.manifests.get(run_id, {})
        env = manifest.get("environment") or {}
        status = str(node.get("status") or "")
        status_class = "ok" if status == "ok" else "bad"
        repro = subject.reproductions.get(run_id, [])
        if repro:
            checks = ", ".join(f"{_text(rid)} ({_text(st)})" for rid, st in repro)
            reproduced = f"reproduced by {checks}"
        else:
            reproduced = "not reproduced yet (<code>dotnb reproduce</code>)"
        facts = [
            ["run", f"<code>{_text(run_id)}</code>"],
            ["notebook", f"<code>{_text(node.get('notebook') or '')}</code> #{_text(node.get('number'))}"],
            ["name", _text(node.get("name") or "")],
            ["by", _text(node.get("author") or "unknown")],
            ["started", _text(node.get("started_at") or "")],
            ["duration", _text(f"{manifest.get('duration_s', '')} s")],
            ["status", f'<span class="{status_class}">{_text(status)}</span>'],
            ["reproduced", reproduced],
            ["pulled from", _text(node.get("remote") or "(recorded here)")],
            ["python", _text(env.get("python") or "")],
            ["platform", _text(env.get("platform") or "")],
            ["git", _json(env.get("git")) if env.get("git") else ""],
        ]
        params = manifest.get("params") or {}
        metrics = manifest.get("metrics") or {}
        parts += [
            '<section class="run">',
            f"<h3>{_text(node.get('notebook') or '')} #{_text(node.get('number'))}</h3>",
            _table(["", ""], [[_text(k), v] for k, v in facts]),
            "<h4>Read</h4>",
            "<ul>"
            + "".join(f"<li>{_content_cell(nodes[k])}</li>" for k in used.get(f"run:{run_id}", []))
            + "</ul>",
            "<h4>Wrote</h4>",
            "<ul>"
            + "".join(f"<li>{_content_cell(nodes[k])}</li>" for k in wrote.get(f"run:{run_id}", []))
            + "</ul>",
            "<h4>Parameters</h4>",
            _table(["name", "value"], [[_text(k), _json(v)] for k, v in sorted(params.items())])
            if params
            else "<p>None.</p>",
            "<h4>Metrics</h4>",
            _table(["name", "value"], [[_text(k), _json(v)] for k, v in sorted(metrics.items())])
            if metrics
            else "<p>None.</p>",
            "<h4>Code</h4>",
            f"<pre><code>{_text(manifest.get('code') or '')}</code></pre>",
            "</section>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
