"""Run ids: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32).

They are unique across machines without coordination and sort by creation time,
so ``ORDER BY id`` is time order.  Within one process ids are strictly increasing
even inside one millisecond (the random part is incremented).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# The random part comes from a generator seeded by the OS (and again in a forked
# child, so two processes never share a sequence): an os.urandom call per id is a
# system call, which in a busy kernel waits for the GIL on its way back.
_random = random.Random(os.urandom(32))
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def time_ms(run_id: str) -> int | None:
    """The millisecond timestamp a run id (or any ULID) starts with; None if it is not one."""
    ms = 0
    for ch in run_id[:10].upper():
        digit = _ALPHABET.find(ch)
        if digit < 0:
            return None
        ms = ms * 32 + digit
    return ms if len(run_id) >= 10 else None


def id_floor(ms: int) -> str:
    """The smallest id prefix of time ``ms``: every id made at or after ``ms`` sorts above it."""
    return _encode(max(0, ms), 10)


class RunIdSource:
    """Makes run ids, strictly increasing within the source even inside one millisecond
    (the random part is incremented).  ``random_bits(80)`` gives the random part of the
    first id of a millisecond (default: a generator seeded by the OS)."""

    __slots__ = ("_last_ms", "_last_rand", "_lock", "_random_bits")

    def __init__(self, random_bits: Callable[[int], int] | None = None) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0
        self._random_bits = _random.getrandbits if random_bits is None else random_bits

    def new(self, now_ms: int | None = None) -> str:
        """A new id, of time ``now_ms`` (default: now) or of the last id's time if later."""
        with self._lock:
            ms = int(time.time() * 1000) if now_ms is None else now_ms
            if ms <= self._last_ms:
                ms = self._last_ms
                self._last_rand = (self._last_rand + 1) & ((1 << 80) - 1)
            else:
                self._last_ms = ms
                self._last_rand = self._random_bits(80)
            value = (ms << 80) | self._last_rand
        # _encode(value, 26), two digits at a time (this is on a tracked cell's path).
        return "".join([_DIGIT_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


# The process's ids.  A bound method, not a function calling it: new_run_id is on a
# tracked cell's path.
new_run_id = RunIdSource().new


_DIGIT_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_PAIR_SHIFTS = range(120, -1, -10)


def is_run_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)


def id_prefix_ok(text: str) -> bool:
    return 0 < len(text) <= 26 and all(c in _ALPHABET for c in text.upper())
