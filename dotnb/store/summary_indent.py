"""``dotnb log --json`` without the json module: re-indenting the summaries the index holds.

The index holds each summary as json.dumps(summary, sort_keys=True,
ensure_ascii=False): the separators ", " and ": ", strings escaped as that encoder
escapes them.  The CLI prints the list of summaries as json.dumps(rows, indent=2,
ensure_ascii=False) and a newline.  Decoding and encoding again only re-indents:
the strings, the keys' order and the numbers' spellings come back unchanged.  So
indent_summaries re-indents the stored texts, walking only what lies between their
strings, and checks on the way that each text is what that encoder writes (else it
answers None and the caller decodes and encodes).

This module is imported by :mod:`dotnb.store.listing` on first use of
:func:`indent_summaries` (on the start-up path of ``dotnb log --json``): it imports
nothing.
"""

from __future__ import annotations

# Importing typing costs milliseconds of every CLI start; mypy reads any name
# TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

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


def forget_walks() -> None:
    """Drop the walk cache, as a new ``dotnb log`` process starts without one."""
    _CONTEXTS.clear()


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
