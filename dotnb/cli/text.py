"""Terminal text: escaping, display widths, truncation, aligned columns, sizes, durations, times.

Pure functions over strings and numbers.  Imports stay inside the functions that
need them (unicodedata, json, datetime): ``dotnb`` is a short-lived process and
most of its commands never show a table.
"""

from __future__ import annotations

# mypy reads any name TYPE_CHECKING as true; importing typing costs milliseconds.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SHORT_HASH = 12
SHORT_ID = 10
NAME_WIDTH = 32


def clean(text: str) -> str:
    """Escape control and format characters so names and paths cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def display_width(text: str) -> int:
    import unicodedata

    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def truncate(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def truncate_left(text: str, width: int) -> str:
    """Keep the end of a long path: its file name tells more than its first folders."""
    if display_width(text) <= width:
        return text
    return "…" + truncate(text[::-1], width - 1)[:-1][::-1]


def align(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, each column padded to its widest cell (the last one is not)."""
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        padded = [c + " " * (widths[i] - display_width(c)) for i, c in enumerate(r[:-1])]
        lines.append("  ".join([*padded, r[-1]]).rstrip())
    return lines


def dedent(text: str) -> str:
    """``textwrap.dedent(text).strip("\\n")`` without importing textwrap (and re) at start-up:
    help texts are written indented in the source and dedented as their parser is built."""
    lines = text.split("\n")
    margins = [len(line) - len(line.lstrip(" \t")) for line in lines if line.strip(" \t")]
    margin = min(margins, default=0)
    return "\n".join(line[margin:] if line.strip(" \t") else "" for line in lines).strip("\n")


def local_time(iso: Any) -> str:
    """A manifest's UTC ISO time in the local zone, to the second."""
    from datetime import datetime

    if not isinstance(iso, str):
        return "-"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def human_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def human_size(size: Any) -> str:
    if not isinstance(size, int):
        return "-"
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def short_value(value: Any, limit: int = 24) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json_value(value)
    return truncate(clean(text), limit)


def json_value(value: Any) -> str:
    """A param or metric value as one line: strings as they are, the rest as JSON."""
    import json

    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def value_or_absent(value: Any) -> str:
    return "(absent)" if value is None else json_value(value)


def hash_or_absent(digest: Any) -> str:
    return str(digest)[:SHORT_HASH] if digest else "(absent)"
