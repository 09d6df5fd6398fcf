"""Listing runs: the one query behind ``Store.list_runs`` (``GET runs``, ``dotnb log``),
and a read-only view of the index that runs it without opening the store.

``dotnb log`` is a short-lived process: importing and opening :class:`~dotnb.store.repo.Store`
(pathlib, the object store, the index's writers) costs several times the query itself.
When the index is current, :func:`open_current_index` reads ``index.sqlite`` directly.
"Current" is decided by the same checks with which opening the store decides it has
nothing to bring up to date (:meth:`Store.reconcile <dotnb.store.repo.Store.reconcile>`):

- the store's format is one this dotnb reads;
- the index has this dotnb's schema version (else the store rebuilds it);
- no write-ahead records are pending (else the store completes them);
- the ``runs/`` folder's mtime is the one recorded when runs were last indexed
  (else some ref has no index row yet and the store indexes it).

When any of them fails, the caller opens the store instead.  Either way the rows
come from :meth:`RunListing.list_run_texts`, so both give the same output.

This module is on the start-up path of ``dotnb log`` (see :mod:`dotnb.entry`): it
imports only os, ``_sqlite3`` and import-light modules of this package (no json, re,
pathlib, typing, sqlite3.dbapi2).  :func:`indent_summaries` prints the index's
summaries as ``dotnb log --json`` does without decoding them.
"""

from __future__ import annotations

import os

# The C module itself, not the sqlite3 package: sqlite3.dbapi2 imports datetime (and
# time) to register its date adapters and converters, milliseconds of every dotnb log.
# The index is read here with plain types only (TEXT and INTEGER columns, no
# detect_types), where both behave the same.
try:
    import _sqlite3 as sqlite
except ImportError:  # pragma: no cover - an interpreter that names it otherwise
    import sqlite3 as sqlite  # type: ignore[no-redef]

from dotnb.store.errors import PathOutsideRoot, StoreFormatError
from dotnb.store.paths import path_candidates
from dotnb.store.versions import INDEX_SCHEMA, check_format

# Importing typing costs milliseconds of every CLI start; mypy reads any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Iterable, Sequence
    from typing import Any

    from dotnb.store.query import MetricCondition


STORE_DIR = ".dotnb"
INDEX_FILE = "index.sqlite"
RUNS_DIR = "runs"
FORMAT_FILE = "format"


class RunListing:
    """The one query behind ``Store.list_runs``, ``GET runs`` and ``dotnb log``:
    :class:`~dotnb.store.repo.Store` and :class:`IndexReader` both list through it,
    each supplying ``root`` and :meth:`_run_rows`."""

    root: Any  # the project root (a Path in the Store, a str in the IndexReader)

    def _run_rows(self, sql: str, args: tuple[Any, ...]) -> Iterable[Sequence[Any]]:
        raise NotImplementedError

    def list_runs(self, **filters: Any) -> list[dict[str, Any]]:
        """Run summaries, newest first, filtered as :meth:`list_run_texts` is."""
        import json

        return [json.loads(t) for t in self.list_run_texts(**filters)]

    def list_run_texts(
        self,
        notebook: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        text: str | None = None,
        author: str | None = None,
        limit: int | None = None,
        before: str | None = None,
        metrics: Iterable[MetricCondition] = (),
    ) -> list[str]:
        """Run summaries, newest first, as the index holds each: its JSON text (see
        :func:`indent_summaries`; :meth:`list_runs` decodes them).  ``before`` is an
        id cursor for paging."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("notebook", notebook), ("kind", kind), ("status", status)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        if author is not None:
            # The author column holds "user@host": match either form.
            where.append("(author=? OR substr(author, 1, instr(author, '@') - 1)=?)")
            args.extend([author, author])
        if text:
            where.append("instr(search, ?) > 0")
            args.append(text.lower())
        if before:
            where.append("id < ?")
            args.append(before)
        for condition in metrics:
            sub, sub_args = condition.sql()
            where.append(f"id IN ({sub})")
            args.extend(sub_args)
        sql = "SELECT summary FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [r[0] for r in self._run_rows(sql, tuple(args))]

    def notebook_arg(self, text: str | None) -> str | None:
        """The root-relative POSIX path the store uses for a ``--notebook`` argument
        (None for None): its first reading (relative to the working folder, then to
        the root) that names runs, else one that exists, else the first."""
        if text is None:
            return None
        candidates = path_candidates(self.root, text)
        if not candidates:
            raise PathOutsideRoot(f"notebook {text!r} is outside the project root {self.root}")
        for rel in candidates:
            if self.list_run_texts(notebook=rel, limit=1):
                return rel
        for rel in candidates:
            if os.path.exists(os.path.join(self.root, rel)):
                return rel
        return candidates[0]


def find_root_dir(start: str) -> str | None:
    """Nearest ancestor of ``start`` (itself included, symlinks resolved) that holds a ``.dotnb`` folder."""
    here = os.path.realpath(start)
    while True:
        if os.path.isdir(os.path.join(here, STORE_DIR)):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def runs_mtime(store_dir: str) -> int:
    """The ``runs/`` folder's mtime (0 when missing): it changes whenever a ref is added."""
    try:
        return os.stat(os.path.join(store_dir, RUNS_DIR)).st_mtime_ns
    except FileNotFoundError:
        return 0


class IndexReader(RunListing):
    """A store's index opened for reading only, to list runs (see :func:`open_current_index`)."""

    def __init__(self, root: str, db: sqlite3.Connection) -> None:
        self.root = root
        self._db = db

    def _run_rows(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        self._db.close()


def open_current_index(root: str | None, cwd: str) -> IndexReader | None:
    """The index of the store at ``root`` (else the one found from ``cwd``), opened to
    read, when opening the store would change nothing in it; otherwise None, and the
    caller opens the :class:`~dotnb.store.repo.Store`, which also reports any error
    (no store, a newer format, a damaged index) in its own words."""
    found = os.path.realpath(root) if root else find_root_dir(cwd)
    if found is None:
        return None
    store_dir = os.path.join(found, STORE_DIR)
    try:
        check_format(_read_format(os.path.join(store_dir, FORMAT_FILE)), "this store")
    except (OSError, ValueError, KeyError, TypeError, StoreFormatError):
        return None
    try:
        # mode=rw: never create the file.  Read-write rather than read-only because the
        # last connection to close then checkpoints and removes the WAL, as the store's
        # own does; a read-only one would leave -wal and -shm files behind.  Nothing here
        # writes a row.
        uri = _file_uri(os.path.join(store_dir, INDEX_FILE)) + "?mode=rw"
        db = sqlite.connect(uri, uri=True, timeout=60.0, isolation_level=None)
    except sqlite.Error:
        return None
    try:
        current = (
            _meta(db, "index_schema") == INDEX_SCHEMA
            and db.execute("SELECT 1 FROM pending_manifests LIMIT 1").fetchone() is None
            and _meta(db, "runs_mtime") == str(runs_mtime(store_dir))
        )
    except sqlite.Error:  # not an index this dotnb knows (or damaged): the store deals with it
        current = False
    if not current:
        db.close()
        return None
    return IndexReader(found, db)


def _read_format(path: str) -> Any:
    """The store's format version from its format file, as ``json.load(f)["format"]``
    reads it (and raising what that raises)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # What Store.init writes, json.dumps({"format": N}) and a newline, is read without
    # importing json.
    body = text[:-1] if text.endswith("\n") else text
    digits = body[11:-1]
    if (
        body.startswith('{"format": ')
        and body.endswith("}")
        and digits.isascii()
        and digits.isdigit()
        and (digits == "0" or not digits.startswith("0"))
    ):
        return int(digits)
    import json

    return json.loads(text)["format"]


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _file_uri(path: str) -> str:
    """An SQLite ``file:`` URI for an absolute path (the three characters URIs reserve escaped)."""
    for char, escaped in (("%", "%25"), ("?", "%3f"), ("#", "%23")):
        path = path.replace(char, escaped)
    path = path.replace(os.sep, "/")
    # file:///C:/... for a Windows drive; a POSIX path already starts with its slash.
    return "file://" + (path if path.startswith("/") else "/" + path)


# ---------------------------------------------------------------------------
# ``dotnb log --json`` without the json module
#
# The index holds each summary as json.dumps(summary, sort_keys=True,
# ensure_ascii=False): the separators ", " and ": ", strings escaped as that encoder
# escapes them.  The CLI prints the list of summaries as json.dumps(rows, indent=2,
# ensure_ascii=False) and a newline.  Decoding and encoding again only re-indents:
# the strings, the keys' order and the numbers' spellings come back unchanged.  So
# indent_summaries re-indents the stored texts, walking only what lies between their
# strings, and checks on the way that each text is what that encoder writes (else it
# answers None and the caller decodes and encodes).

# Where a text's walk stands: what may come next.
_VALUE = 0  # a value (after ':', after ',' in a list, at the start)
_FIRST_VALUE = 1  # a value or ']' (after '[')
_KEY = 2  # a key (after ',' in an object)
_FIRST_KEY = 3  # a key or '}' (after '{')
_COLON = 4  # ':' (after a key)
_AFTER = 5  # ',' or the closing bracket (after a value)

_INDENT = "  "
_WORDS = frozenset(("true", "false", "null", "NaN", "Infinity", "-Infinity"))
# Each bracket, comma and colon made a token of its own (a segment's tokens are then
# split at spaces).
_SPACED = str.maketrans({char: f" {char} " for char in "{}[],:"})
# The escapes json.dumps(..., ensure_ascii=False) writes: these, and \u00XX for the
# other control characters.
_SHORT_ESCAPES = frozenset('"\\bfnrt')
_HEX = "0123456789abcdef"


class _NotWritten(Exception):
    """A text is not one that json.dumps writes (:func:`indent_summaries` answers None)."""


class _Context(dict[str, "tuple[str, _Context]"]):
    """Where a text's walk stands between two strings: the open brackets (``stack``,
    the printed list's first) and what may come next (``state``).  As a dict: the
    segments walked from here (what lies between two strings: ", ", ": ", "}, "...
    they repeat), each with its indented form and the context after it."""

    __slots__ = ("_after_value", "stack", "state")

    def __init__(self, stack: str, state: int) -> None:
        super().__init__()
        self.stack = stack
        self.state = state
        self._after_value: _Context | None = None

    def after_value(self) -> _Context:
        """The context after a value here."""
        if self._after_value is None:
            self._after_value = _context(self.stack, _AFTER)
        return self._after_value

    def __missing__(self, key: str) -> tuple[str, _Context]:
        """A segment not walked from here yet: ``key`` is one a string follows, or '"'
        and a text's last segment (no segment holds a '"')."""
        if len(self) > _SEGMENTS_MAX:  # a bound: numbers make segments of their own
            self.clear()
        if self.state == _COLON and key.startswith(": "):
            # The usual one that numbers make: ": 0.25, " or ": 3}, " (the number, then
            # separators and closing brackets), walked as the number and the rest.
            scalar = key[2:].rstrip(" ,}]")
            if _scalar_ok(scalar):
                rest, after = self.after_value()[key[2 + len(scalar) :]]
                found = self[key] = (": " + scalar + rest, after)
                return found
        last = key.startswith('"')
        walked = _walk_segment(key[1:] if last else key, self.stack, self.state, last)
        if walked is None:
            raise _NotWritten
        out, stack, state = walked
        found = self[key] = (out, _context(stack, state))
        return found


_CONTEXTS: dict[tuple[str, int], _Context] = {}
_CONTEXTS_MAX = 256
_SEGMENTS_MAX = 4096


def _context(stack: str, state: int) -> _Context:
    found = _CONTEXTS.get((stack, state))
    if found is None:
        if len(_CONTEXTS) > _CONTEXTS_MAX:
            _CONTEXTS.clear()
        found = _CONTEXTS[(stack, state)] = _Context(stack, state)
    return found


def indent_summaries(texts: Sequence[str]) -> str | None:
    """``json.dumps([json.loads(t) for t in texts], indent=2, ensure_ascii=False)`` and a
    newline, as ``dotnb log --json`` prints the summaries the index holds as ``texts``,
    computed without decoding them; None when a text is not one that
    ``json.dumps(..., ensure_ascii=False)`` with its default separators writes."""
    if not texts:
        return "[]\n"
    start = _context("[", _VALUE)  # inside the printed list, a value next
    try:
        done = [_indent_text(text, start) for text in texts]
    except _NotWritten:
        return None
    return "[\n" + _INDENT + (",\n" + _INDENT).join(done) + "\n]\n"


def _indent_text(text: str, context: _Context) -> str:
    """One summary's JSON text, indented as an item of the printed list."""
    # Raw control characters are not JSON: json.dumps escapes them.  isprintable()
    # answers for most texts at C speed; the few others are looked at one by one.
    if not text.isprintable() and any(c < " " for c in text):
        raise _NotWritten
    # Split at every '"': the parts alternate between what lies outside strings and
    # string contents (copied as they are), unless a quote is escaped in a string.
    parts = text.split('"')
    last = len(parts) - 1
    if "\\" in text:
        return _indent_escaped(parts, context)
    if last % 2:
        raise _NotWritten  # a string left open
    for i in range(0, last, 2):
        parts[i], context = context[parts[i]]
    parts[last] = context['"' + parts[last]][0]
    return '"'.join(parts)


def _indent_escaped(parts: list[str], context: _Context) -> str:
    """:func:`_indent_text` for a text with backslashes: its strings may hold escaped
    quotes, and their escapes are checked."""
    last = len(parts) - 1
    in_string = False
    string_start = 0
    for i, part in enumerate(parts):
        if in_string:
            if i == last:
                raise _NotWritten  # a string left open
            if part.endswith("\\") and (len(part) - len(part.rstrip("\\"))) % 2:
                continue  # an escaped quote: the string goes on in the next part
            if ("\\" in part or i > string_start) and not _escapes_ok('"'.join(parts[string_start : i + 1])):
                raise _NotWritten
            in_string = False
        elif i == last:
            parts[i] = context['"' + part][0]
        else:
            parts[i], context = context[part]
            in_string = True
            string_start = i + 1
    return '"'.join(parts)


def _escapes_ok(content: str) -> bool:
    """Whether a string's content holds only the escapes json.dumps(ensure_ascii=False) writes."""
    at = content.find("\\")
    while at >= 0:
        char = content[at + 1 : at + 2]
        if char == "u":
            code = content[at + 2 : at + 6]
            # \u00XX with lowercase hex for a control character without a short form.
            if not (
                len(code) == 4
                and code.startswith("00")
                and code[2] in "01"
                and code[3] in _HEX
                and code not in ("0008", "0009", "000a", "000c", "000d")
            ):
                return False
            at = content.find("\\", at + 6)
        elif char and char in _SHORT_ESCAPES:
            at = content.find("\\", at + 2)
        else:
            return False
    return True


def _walk_segment(segment: str, stack: str, state: int, last: bool) -> tuple[str, str, int] | None:
    """What lies between two strings (or before the first, or after the last when
    ``last``), indented: the segment as printed, then the bracket nesting and the state
    after it (a string follows unless ``last``); None when it is not what json.dumps
    writes there."""
    # Spaces only as json.dumps's separators put them: one after each ',' and ':'.
    commas, colons = segment.count(", "), segment.count(": ")
    if commas != segment.count(",") or colons != segment.count(":") or segment.count(" ") != commas + colons:
        return None
    out: list[str] = []
    for token in segment.translate(_SPACED).split(" "):
        if not token:
            continue
        if token == ",":
            if state != _AFTER or len(stack) < 2:
                return None
            out.append(",\n" + _INDENT * len(stack))
            state = _KEY if stack[-1] == "{" else _VALUE
        elif token == ":":
            if state != _COLON:
                return None
            out.append(": ")
            state = _VALUE
        elif token == "}" or token == "]":
            opener = "{" if token == "}" else "["
            if len(stack) < 2 or stack[-1] != opener:
                return None
            stack = stack[:-1]
            if state == (_FIRST_KEY if token == "}" else _FIRST_VALUE):
                out.append(token)  # empty: {} or []
            elif state == _AFTER:
                out.append("\n" + _INDENT * len(stack) + token)
            else:
                return None
            state = _AFTER
        else:
            # A value: an opening bracket or a scalar.
            if state == _FIRST_VALUE:
                out.append("\n" + _INDENT * len(stack))
            elif state != _VALUE:
                return None
            if token == "{" or token == "[":
                stack += token
                state = _FIRST_KEY if token == "{" else _FIRST_VALUE
            elif _scalar_ok(token):
                state = _AFTER
            else:
                return None
            out.append(token)
    if last:
        if stack != "[" or state != _AFTER:
            return None
    elif state in (_FIRST_KEY, _FIRST_VALUE):
        out.append("\n" + _INDENT * len(stack))
        state = _COLON if state == _FIRST_KEY else _AFTER
    elif state in (_KEY, _VALUE):
        state = _COLON if state == _KEY else _AFTER
    else:
        return None  # a string where none may be
    return "".join(out), stack, state


def _scalar_ok(token: str) -> bool:
    """Whether json.dumps writes ``token`` for the number (or constant) json.loads reads in it."""
    if token in _WORDS:
        return True
    try:
        if "." in token or "e" in token or "E" in token:
            return repr(float(token)) == token
        return str(int(token)) == token
    except ValueError:
        return False
