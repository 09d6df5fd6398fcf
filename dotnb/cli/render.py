"""What each command prints: pure functions from plain data (manifests, summaries, reports)
to lines of text, apart from argparse so that they can be tested without a parser.

Every name, path and value from a run goes through :func:`~dotnb.cli.text.clean`,
so what a notebook recorded cannot drive the terminal.
"""

from __future__ import annotations

from dotnb.cli.exits import PROG
from dotnb.cli.output import terminal_width
from dotnb.cli.text import (
    NAME_WIDTH,
    SHORT_HASH,
    SHORT_ID,
    align,
    clean,
    hash_or_absent,
    human_duration,
    human_size,
    json_value,
    local_time,
    plural,
    short_value,
    truncate,
    truncate_left,
    value_or_absent,
)
from dotnb.store.trees import file_count, is_tree
from dotnb.store.vocabulary import CHECKPOINT, INTERRUPTED, OK, RUN

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

TRACEBACK_LINES = 30


# ---------------------------------------------------------------------------
# log, show, diff


def format_log(rows: list[dict[str, Any]], width: int | None = None) -> list[str]:
    """The ``dotnb log`` table, one line per run, truncated to the terminal width."""
    width = terminal_width() if width is None else width
    several_notebooks = len({r.get("notebook") for r in rows}) > 1
    # Authors matter once runs come from a team: with one author the column is noise.
    team = any(r.get("remote") for r in rows) or len({(r.get("user"), r.get("host")) for r in rows}) > 1
    headers = ["#", "ID", "STARTED", "STATUS"]
    if team:
        headers.append("BY")
    if several_notebooks:
        headers.append("NOTEBOOK")
    headers.append("NAME")
    annotated = any(r.get("tags") or r.get("note") for r in rows)
    if annotated:
        headers.append("TAGS")
    headers += ["DURATION", "PARAMS | METRICS"]
    table: list[list[str]] = []
    for r in rows:
        name = r.get("name") or ""
        if r.get("kind") == CHECKPOINT:
            name = f"[checkpoint] {name}".strip()
        cells = [
            f"#{r.get('number')}",
            str(r["id"])[:SHORT_ID],
            local_time(r.get("started_at")),
            r.get("status") or "",
        ]
        if team:
            by = r.get("user") or "?"
            cells.append(f"{by} ({r['remote']})" if r.get("remote") else by)
        if several_notebooks:
            cells.append(r.get("notebook") or "")
        cells.append(truncate(clean(name), NAME_WIDTH))
        if annotated:
            cells.append(annotation_cell(r))
        cells += [human_duration(r.get("duration_s")), _params_metrics(r)]
        table.append([clean(c) for c in cells])
    return [truncate(line, width) if width else line for line in align([headers, *table])]


def annotation_cell(row: dict[str, Any]) -> str:
    """A run's tags, comma-separated, and ``(note)`` when it has a note."""
    text = ",".join(clean(t) for t in row.get("tags") or [])
    if row.get("note"):
        text = f"{text} (note)".strip()
    return text


def format_annotations(doc: dict[str, Any]) -> list[str]:
    """``dotnb tag``, ``untag``, ``note``: a run's tags and note after the change."""
    lines = [f"run {clean(doc['id'])}", f"  tags: {', '.join(clean(t) for t in doc['tags']) or '(none)'}"]
    if doc.get("note"):
        lines.append(f"  note ({clean(doc.get('note_author') or '?')}, {local_time(doc.get('note_at'))}):")
        lines += [f"    {clean(line)}" for line in str(doc["note"]).splitlines()]
    else:
        lines.append("  note: (none)")
    return lines


def _params_metrics(row: dict[str, Any]) -> str:
    params = " ".join(f"{k}={short_value(v)}" for k, v in (row.get("params") or {}).items())
    metrics = " ".join(f"{k}={short_value(v)}" for k, v in (row.get("metrics") or {}).items())
    if params and metrics:
        return f"{params} | {metrics}"
    return params or (f"| {metrics}" if metrics else "")


def format_show(
    manifest: dict[str, Any],
    distributions: int | None = None,
    origin: str | None = None,
    signature: dict[str, Any] | None = None,
) -> list[str]:
    """``dotnb show``: a run's header, code, params, metrics, files, environment, lineage."""
    m = manifest
    env = m.get("environment") or {}
    lines: list[str] = []

    def field(label: str, value: Any) -> None:
        if value not in (None, ""):
            lines.append(f"{label:<10}{clean(str(value))}")

    where = f" in {m['notebook']}" if m.get("notebook") else ""
    field("run", f"{m['id']}  (#{m.get('number')}{where})")
    field("name", m.get("name"))
    field("kind", m.get("kind", RUN))
    status = m.get("status", OK)
    error = m.get("error")
    if isinstance(error, dict):
        status += f" — {error.get('type')}: {error.get('message')}"
    field("status", status)
    field("started", f"{local_time(m.get('started_at'))} (local)  {m.get('started_at')}")
    field("duration", human_duration(m.get("duration_s")))
    who = "@".join(x for x in (env.get("user"), env.get("host")) if x)
    field("by", who)
    field("from", origin and f"remote {origin} (pulled)")
    writer = m.get("writer")
    if isinstance(writer, dict):
        field("writer", f"{writer.get('id')}, its run {writer.get('seq')}")
    if signature is not None:
        field("signature", format_signature(signature))
    field("parent", m.get("parent"))
    field("reproduces", m.get("reproduces"))
    field("saved", m.get("checkpoint_of") and f"before restoring {m['checkpoint_of']}")
    snap = m.get("notebook_snapshot")
    if isinstance(snap, dict) and snap.get("hash"):
        source = f"  (from {m['notebook_source']})" if m.get("notebook_source") else ""
        field("snapshot", f"{snap['hash'][:SHORT_HASH]}  {human_size(snap.get('size'))}{source}")
    elif isinstance(snap, dict):
        field("snapshot", f"unavailable: {snap.get('unavailable')}")

    code = m.get("code") or ""
    if code.strip():
        lines += ["", "code"]
        lines += ["    " + clean(line) for line in code.splitlines()]

    params = m.get("params") or {}
    if params:
        overridden = set(m.get("param_overrides") or [])
        lines += ["", "params"]
        rows = [[k, json_value(v) + ("  (overridden)" if k in overridden else "")] for k, v in params.items()]
        lines += ["    " + line for line in align([[clean(a), clean(b)] for a, b in rows])]

    metrics = m.get("metrics") or {}
    series = m.get("metric_series") or {}
    if metrics or series:
        lines += ["", "metrics"]
        rows = []
        for name in dict.fromkeys([*metrics, *series]):
            points = series.get(name) or []
            extra = f"  (series: {len(points)} points)" if points else ""
            rows.append([clean(name), clean(json_value(metrics.get(name))) + extra])
        lines += ["    " + line for line in align(rows)]

    for key, title in (("inputs", "inputs"), ("outputs", "outputs")):
        entries = m.get(key) or []
        if entries:
            lines += ["", f"{title} ({file_count(entries):,})"]
            lines += ["    " + line for line in _file_table(entries)]

    absent = m.get("absent") or []
    if absent:
        lines += ["", f"absent before the restore ({len(absent)}, removed when this checkpoint is restored)"]
        lines += [f"    {clean(rel)}" for rel in absent]

    external = m.get("external_inputs") or []
    if external:
        lines += ["", f"external inputs ({len(external)})"]
        lines += [f"    {clean(e.get('path', ''))}  {human_size(e.get('size'))}".rstrip() for e in external]

    lines += ["", "environment"]
    lines.append("    " + _environment_line(env, distributions))

    lineage = m.get("lineage") or []
    tracked = sum(1 for c in lineage if c.get("tracked"))
    failed = sum(1 for c in lineage if c.get("status") == "error")
    extra = f", {failed} failed" if failed else ""
    lines += [
        "",
        f"lineage   {len(lineage)} cell{'s' if len(lineage) != 1 else ''} ({tracked} tracked{extra})",
    ]

    warnings = m.get("warnings") or []
    if warnings:
        lines += ["", "warnings"]
        lines += [f"    - {clean(w)}" for w in warnings]
    return lines


def _file_table(entries: list[dict[str, Any]]) -> list[str]:
    rows = [["PATH", "SIZE", "HASH", "FLAGS"]]
    for e in entries:
        flags = [
            flag
            for flag, on in (
                ("pre-write", e.get("pre_write")),
                ("changed", e.get("changed")),
                ("missing", e.get("missing")),
                ("declared", e.get("declared")),
            )
            if on
        ]
        if e.get("skipped"):
            flags.append(f"skipped: {e['skipped']}")
        if e.get("produced_by"):
            flags.append(f"from run {str(e['produced_by'])[:SHORT_ID]}")
        digest = e.get("hash")
        path = clean(e.get("path", ""))
        if is_tree(e):
            # A folder recorded as a tree: `dotnb show --files` lists its files.
            files = int(e.get("files") or 0)
            digest = e["tree"]
            path += "/"
            flags.append(f"folder, {files:,} file{'s' if files != 1 else ''}")
        rows.append(
            [
                path,
                human_size(e.get("size")),
                digest[:SHORT_HASH] if digest else "-",
                clean(", ".join(flags)),
            ]
        )
    return align(rows)


def _environment_line(env: dict[str, Any], distributions: int | None) -> str:
    parts = []
    if env.get("python"):
        parts.append(f"python {str(env['python']).splitlines()[0]}")
    if env.get("platform"):
        parts.append(str(env["platform"]))
    git = env.get("git")
    if isinstance(git, dict) and git.get("commit"):
        branch = f" on {git['branch']}" if git.get("branch") else ""
        parts.append(f"git {str(git['commit'])[:SHORT_ID]}{branch}{' (dirty)' if git.get('dirty') else ''}")
    if distributions is not None:
        parts.append(f"{distributions} distribution{'s' if distributions != 1 else ''}")
    elif env.get("distributions"):
        parts.append("distributions list unavailable")
    shown = {"python", "platform", "git", "distributions", "user", "host"}
    for key, value in env.items():
        if key not in shown and value not in (None, "", {}, []):
            parts.append(f"{key} {json_value(value)}")
    return clean(" · ".join(parts)) if parts else "(not recorded)"


def format_diff(result: dict[str, Any]) -> list[str]:
    """``dotnb diff``: the code's unified diff, then what differs, as 'name: first → second'."""
    lines: list[str] = []
    if result.get("code"):
        lines.append("code")
        lines += [clean(line) for line in str(result["code"]).splitlines()]
    files = {"inputs", "outputs"}
    for section in ("params", "metrics", "inputs", "outputs", "environment"):
        changes = result.get(section) or {}
        if not changes:
            continue
        if lines:
            lines.append("")
        lines.append(section)
        for name, (a, b) in changes.items():
            if section in files:
                left, right = hash_or_absent(a), hash_or_absent(b)
            else:
                left, right = value_or_absent(a), value_or_absent(b)
            lines.append(f"    {clean(name)}: {clean(left)} → {clean(right)}")
    return lines or ["no differences"]


# ---------------------------------------------------------------------------
# restore, fsck


def format_plan(plan: dict[str, Any], manifest: dict[str, Any] | None) -> list[str]:
    """A restore plan: each path that changes, current → target hash, size and action."""
    lines = []
    if manifest is not None:
        where = f" in {manifest['notebook']}" if manifest.get("notebook") else ""
        lines.append(clean(f"restore plan for run {manifest['id']} (#{manifest.get('number')}{where})"))
    changing = [i for i in plan["items"] if i["action"] != "unchanged"]
    rows = []
    for item in changing:
        current = item["current"][:SHORT_HASH] if item["current"] else "(absent)"
        target = item["target"][:SHORT_HASH] if item["target"] else "(remove)"
        size = human_size(item["size"]) if item["target"] else ""
        rows.append([clean(item["path"]), current, "→", target, size, item["action"]])
    if rows:
        lines += [
            "    " + line for line in align([["PATH", "CURRENT", "", "TARGET", "SIZE", "ACTION"], *rows])
        ]
    unchanged = len(plan["items"]) - len(changing)
    if unchanged:
        lines.append(f"{unchanged} path{'s' if unchanged != 1 else ''} already match the run")
    for skipped in plan.get("skipped") or []:
        lines.append(clean(f"not restored: {skipped['path']} ({skipped['reason']})"))
    if changing:
        lines.append(f"to write: {human_size(plan['bytes_to_write'])}")
    return lines


def format_fsck(report: dict[str, Any]) -> list[str]:
    """What ``dotnb fsck`` (of the store, or of a remote) found."""
    lines = [f"checked {report['objects_checked']} objects"]

    def objects(title: str, found: list[dict[str, Any]]) -> None:
        if found:
            lines.append(f"{title} ({len(found)}):")
            for item in found:
                runs = ", ".join(item["runs"]) or "no run"
                lines.append(f"    {item['object']}  used by {runs}")

    objects("corrupted objects", report.get("corrupted") or [])
    objects("missing objects", report.get("missing") or [])
    on_remote = report.get("on_remote") or []
    if on_remote:
        count = len(on_remote)
        lines.append(
            f"{count} object{'s' if count != 1 else ''} of pulled runs not downloaded yet (fetched on "
            "demand; `dotnb pull --with-data` fetches them, `dotnb fsck --remote NAME` checks them)"
        )
    damaged = report.get("damaged_runs") or []
    if damaged:
        lines.append(f"unreadable runs ({len(damaged)}):")
        lines += [clean(f"    {d['run']}: {d['error']}") for d in damaged]
    for key, title in (
        ("unindexed_runs", "runs missing from the index"),
        ("stale_index_rows", "index rows without a run"),
    ):
        ids = report.get(key) or []
        if ids:
            lines.append(f"{title} ({len(ids)}): {', '.join(ids)}  (fix: dotnb fsck --rebuild-index)")
    for dup in report.get("duplicate_numbers") or []:
        lines.append(
            clean(
                f"#{dup['number']} of {dup['notebook'] or '(no notebook)'} names {len(dup['runs'])} runs: "
                f"{', '.join(dup['runs'])}  (refer to them by id)"
            )
        )
    unshared = report.get("unshared_objects") or []
    if unshared:
        count = len(unshared)
        lines.append(
            f"gave {count} object{'s' if count != 1 else ''} an interrupted restore had linked to "
            "your files bytes of their own"
        )
    for pack in report.get("damaged_packs") or []:
        lines.append(clean(f"unreadable pack {pack['pack']}: {pack['error']}"))
    orphans = report.get("orphan_packs_removed") or []
    if orphans:
        count = len(orphans)
        lines.append(f"removed {count} pack file{'s' if count != 1 else ''} an interrupted write left")
    stray = report.get("stray_temp_files") or []
    if stray:
        count = len(stray)
        lines.append(f"removed {count} temp file{'s' if count != 1 else ''} an interrupted restore left:")
        lines += [clean(f"    {rel}") for rel in stray]
    returned = report.get("returned_from_interrupted_gc") or []
    if returned:
        count = len(returned)
        lines.append(
            f"put back {count} object{'s' if count != 1 else ''} an interrupted `dotnb gc` had set aside"
        )
    lines.append("store is healthy" if report["ok"] else "problems found")
    return lines


# ---------------------------------------------------------------------------
# run, reproduce


def format_run(doc: dict[str, Any]) -> list[str]:
    """What ``dotnb run`` prints on stdout: cells run, the runs recorded, the executed copy."""
    cells = doc["cells"]
    ran = sum(1 for c in cells if c["status"] in ("ok", "expected error"))
    took = human_duration(doc["duration_s"])
    lines = [
        clean(
            f"ran {ran} of {doc['code_cells']} cells of {doc['notebook']} in {took} (kernel {doc['kernel']})"
        )
    ]
    runs = doc["runs"]
    if runs:
        lines.append(f"recorded {len(runs)} run{'s' if len(runs) != 1 else ''}:")
        lines += ["    " + line for line in format_log(runs)]
    else:
        lines.append("recorded no runs (no %%track cells; --track-all records every cell)")
    if doc.get("output"):
        lines.append(clean(f"executed notebook: {doc['output']}"))
    return lines


def format_cell_failure(cell: Any, doc: dict[str, Any], timeout: float | None) -> list[str]:
    """The stderr report of the cell that stopped ``dotnb run``, with its traceback."""
    from dotnb.headless.notebooks import first_line

    where = f"cell {cell.number} of {cell.total} ({first_line(cell.source)})"
    error = cell.error or {}
    if cell.status == "timeout":
        what = f"{where} did not finish within {timeout:g} s and was interrupted"
    elif cell.status == "kernel died":
        what = f"the kernel died during {where}"
    else:
        what = f"{where} raised {error.get('ename')}: {error.get('evalue')}"
    lines = [f"{PROG}: error: {clean(what)}"]
    lines += format_traceback_tail(error.get("traceback") or [])
    recorded = [r for r in doc["runs"] if r["id"] in {run.get("id") for run in cell.runs}]
    if not recorded and doc["runs"] and cell.status == "timeout":
        recorded = [r for r in doc["runs"] if r.get("status") == INTERRUPTED]
    for run in recorded:
        lines.append(
            clean(f"the failure is recorded as run #{run['number']} ({run['id']}, status {run['status']})")
        )
    return lines


def format_traceback_tail(traceback: list[str]) -> list[str]:
    """The last lines of a kernel's traceback, without its terminal colours."""
    import re

    text = "\n".join(traceback)
    lines = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line) for line in text.splitlines()]
    if len(lines) > TRACEBACK_LINES:
        lines = ["…", *lines[-TRACEBACK_LINES:]]
    return ["    " + clean(line) for line in lines]


def format_reproduce(report: dict[str, Any]) -> list[str]:
    """The ``dotnb reproduce`` table, environment differences, causes and the verdict."""
    lines: list[str] = []
    where = f" in {report['notebook']}" if report.get("notebook") else ""
    name = f" {report['name']!r}" if report.get("name") else ""
    head = f"run {report['run']}"
    if report.get("number") is not None:
        head += f" (#{report['number']}{name}{where})"
    if report.get("reproduction"):
        head += f"  →  reproduction {report['reproduction']} (#{report.get('reproduction_number')})"
    lines.append(clean(head))
    rows = report.get("rows") or []
    if rows:
        table = [["WHAT", "NAME", "ORIGINAL", "REPRODUCED", "VERDICT"]]
        for r in rows:
            verdict = r["verdict"] + (f" ({r['detail']})" if r.get("detail") else "")
            table.append(
                [
                    r["kind"],
                    truncate_left(clean(r["name"]), NAME_WIDTH + 8),
                    _compared_value(r["kind"], r["original"]),
                    _compared_value(r["kind"], r["reproduced"]),
                    clean(verdict),
                ]
            )
        width = terminal_width()
        lines += [""] + [truncate(line, width) if width else line for line in align(table)]
    environment = report.get("environment") or {}
    if environment:
        lines += ["", "environment differences"]
        for key, (a, b) in environment.items():
            lines.append(clean(f"    {key}: {value_or_absent(a)} → {value_or_absent(b)}"))
    elif rows:
        lines += ["", "environment: same Python, platform and package versions"]
    causes = report.get("causes") or []
    if causes:
        title = "why it may not reproduce" if report["verdict"] != "reproduced" else "notes"
        lines += ["", title]
        lines += [clean(f"    - {cause}") for cause in causes]
    for warning in report.get("warnings") or []:
        lines.append(clean(f"warning: {warning}"))
    lines.append("")
    verdict = report["verdict"]
    if verdict == "reproduced":
        lines.append(clean(f"reproduced: run {report['reproduction']} reproduces {report['run']}"))
    elif verdict == "differs":
        bad = sum(1 for r in rows if not r["ok"])
        lines.append(
            clean(
                f"differs: {bad} of {len(rows)} compared items differ "
                f"(the reproduction is recorded as run {report['reproduction']})"
            )
        )
    else:
        lines.append(clean(f"could not run: {report.get('error') or 'unknown error'}"))
        if report.get("reproduction"):
            lines.append(clean(f"the attempt is recorded as run {report['reproduction']}"))
    if report.get("workdir"):
        lines.append(clean(f"work folder kept: {report['workdir']}"))
    return lines


def _compared_value(kind: str, value: Any) -> str:
    if value is None:
        return "-"
    if kind in ("input", "output") and isinstance(value, str):
        return value[:SHORT_HASH]
    if kind == "external":
        return human_size(value)
    if kind == "metric" and isinstance(value, float):
        return f"{value:.6g}"
    return truncate(clean(json_value(value)), 24)


# ---------------------------------------------------------------------------
# remote, push, pull


def format_remotes(remotes: list[dict[str, Any]]) -> list[str]:
    """``dotnb remote list``: one line per remote, the default one marked with '*'."""
    if not remotes:
        return ["no remotes (add one with `dotnb remote add NAME URL`)"]
    lines = []
    for r in remotes:
        extra = "".join(f"  {k}={r[k]}" for k in ("endpoint_url", "region", "profile") if r.get(k))
        mark = "*" if r["default"] else " "
        lines.append(clean(f"{mark} {r['name']}  {r['url']}{extra}"))
    return lines


def format_push(result: dict[str, Any]) -> list[str]:
    """What ``dotnb push`` sent, and the runs in conflict with the remote's copy."""
    lines = [
        f"pushed {plural(result['runs_pushed'], 'run')} to {clean(result['remote'])} "
        f"({plural(result['objects_uploaded'], 'object')}, {human_size(result['bytes_uploaded'])}); "
        f"{result['runs_already']} already there"
    ]
    lines += [f"  conflict {c['id']}: {clean(c['reason'])}" for c in result["conflicts"]]
    if "kernel_states_pushed" in result:
        lines.append(
            f"kernel state of {plural(result['kernel_states_pushed'], 'run')} sent "
            f"({plural(result['kernel_state_objects_uploaded'], 'object')}, "
            f"{human_size(result['kernel_state_bytes_uploaded'])})"
        )
    return lines


def format_pull(result: dict[str, Any], with_data: bool) -> list[str]:
    """What ``dotnb pull`` brought, and the runs it rejected."""
    line = f"pulled {plural(result['runs_new'], 'new run')} from {clean(result['remote'])}"
    if with_data:
        line += (
            f"; downloaded {plural(result['objects_downloaded'], 'object')}"
            f" ({human_size(result['bytes_downloaded'])})"
        )
    lines = [line] + [
        f"  rejected {clean(str(r['id']))}: {clean(r['reason'])}" for r in result["runs_rejected"]
    ]
    # Kept (so that every reader sees the run as badly signed), never accepted in silence.
    lines += [
        f"  BAD signature on {clean(str(r['id']))}: {clean(r['reason'])}"
        for r in result.get("bad_signatures") or []
    ]
    if "kernel_states_pulled" in result:
        lines.append(
            f"kernel state of {plural(result['kernel_states_pulled'], 'run')} brought "
            f"({human_size(result['kernel_state_bytes_downloaded'])}); "
            "a checkout of them needs --trust"
        )
        lines += [
            f"  kernel state of {clean(str(r['id']))} left out: {clean(r['reason'])}"
            for r in result["kernel_states_rejected"]
        ]
    return lines


# ---------------------------------------------------------------------------
# sweep


def _sweep_best(doc: dict[str, Any]) -> str:
    best = doc.get("best")
    if not best:
        return ""
    params = ", ".join(f"{k}={v!r}" for k, v in best["params"].items())
    return f", best {doc['metric']}={best['value']:.6g} ({params})"


def format_sweep_line(doc: dict[str, Any], running: int) -> str:
    """The sweep's progress line: points done, failed and running, the best so far."""
    done = doc["ok"] + doc["error"] + doc["interrupted"]
    counts = f"{doc['ok']} ok, {doc['error']} failed, {running} running"
    return f"sweep {done}/{doc['points']}: {counts}{_sweep_best(doc)}"


def format_sweep(doc: dict[str, Any]) -> list[str]:
    """A finished sweep: one line per point, then the totals and how to list its runs."""
    lines = []
    for result in doc["results"]:
        params = ", ".join(f"{k}={v!r}" for k, v in result["params"].items())
        runs = " ".join(r[:10] for r in result["runs"]) or "no run"
        metric = doc.get("metric")
        value = (result.get("metrics") or {}).get(metric) if metric else None
        shown = f"  {metric}={value:.6g}" if isinstance(value, (int, float)) else ""
        why = f"  ({result['error']})" if result.get("error") else ""
        lines.append(f"{result['status']:<11} {params}  {runs}{shown}{why}")
    stopped = f", stopped: {doc['stopped']}" if doc.get("stopped") else ""
    lines.append(
        f"sweep {doc['sweep']}: {doc['ok']} ok, {doc['error']} failed, {doc['interrupted']} interrupted "
        f"of {doc['points']} in {doc['duration_s']:.1f}s{stopped}{_sweep_best(doc)}"
    )
    lines.append(f"its runs: dotnb log --tag {doc['tag']}")
    return lines


def format_signature(signature: dict[str, Any] | None) -> str:
    """A run's signature status in words: ``good (alice@example.com)``, ``bad: …``."""
    if not signature:
        return "unsigned"
    status = signature.get("status", "unsigned")
    if status == "good":
        return f"good signature by {clean(str(signature.get('signer')))}"
    if status == "unknown_key":
        return f"signed by a key not in the allowed signers ({clean(str(signature.get('signer')))})"
    if status == "bad":
        reason = signature.get("reason")
        return "BAD signature" + (f": {clean(str(reason))}" if reason else "")
    return "unsigned"


def _run_brief(run: dict[str, Any] | None) -> str:
    if not run:
        return "-"
    where = f" {clean(str(run['notebook']))}" if run.get("notebook") else ""
    number = f" #{run['number']}" if run.get("number") is not None else ""
    started = f" {run['started_at']}" if run.get("started_at") else ""
    seq = f" (writer's run {run['seq']})" if run.get("seq") is not None else ""
    return f"{str(run['id'])[:SHORT_ID]}{number}{where}{started}{seq}"


def format_verify(report: dict[str, Any]) -> list[str]:
    """What ``dotnb verify`` found: the counts, each break with the runs around it,
    the signatures."""
    runs = report["runs"]
    lines = [
        f"{report['where']}: {runs} run{'s' if runs != 1 else ''}, {report['chained']} chained by "
        f"{report['writers']} writer{'s' if report['writers'] != 1 else ''}, "
        f"{report['unchained']} unchained (recorded before chains)"
    ]
    breaks = report["breaks"]
    if breaks:
        lines.append(f"{len(breaks)} break{'s' if len(breaks) != 1 else ''}:")
    for item in breaks:
        lines.append(f"  {item['kind']}: {clean(item['message'])}")
        if item.get("before") or item.get("after"):
            lines.append(f"      before: {_run_brief(item.get('before'))}")
            lines.append(f"      after:  {_run_brief(item.get('after'))}")
        for run in item.get("runs") or []:
            lines.append(f"      run:    {_run_brief(run)}")
    counts = report["signatures"]
    lines.append(
        "signatures: "
        + ", ".join(f"{counts[k]} {k.replace('_', ' ')}" for k in ("good", "bad", "unknown_key", "unsigned"))
    )
    for key, title in (
        ("bad_signature_runs", "bad signature"),
        ("unknown_key_runs", "signed by a key not in the allowed signers"),
        ("unsigned_runs", "unsigned"),
    ):
        if key == "unsigned_runs" and not report["require_signed"]:
            continue
        for item in report.get(key) or []:
            reason = item.get("reason") or item.get("signer") or ""
            lines.append(f"  {title}: {item['id']}" + (f"  {clean(str(reason))}" if reason else ""))
    if report["ok"]:
        lines.append("ok: every chain is whole" + (", every run signed" if report["require_signed"] else ""))
    elif breaks:
        lines.append(f"not ok: {len(breaks)} break{'s' if len(breaks) != 1 else ''}")
    elif counts["bad"]:
        lines.append("not ok: bad signatures")
    elif not breaks:
        lines.append("not ok: --require-signed and some runs lack a good signature")
    return lines
