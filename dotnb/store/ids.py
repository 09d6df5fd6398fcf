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

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0
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


def new_run_id(now_ms: int | None = None) -> str:
    global _last_ms, _last_rand
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            _last_ms = ms
            _last_rand = _random.getrandbits(80)
        value = (ms << 80) | _last_rand
    # _encode(value, 26), two digits at a time (this is on a tracked cell's path).
    return "".join([_DIGIT_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


_DIGIT_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_PAIR_SHIFTS = range(120, -1, -10)


def is_run_id(text: str) -> bool:
    return len(text) == 26 and all(c in _ALPHABET for c in text)


def id_prefix_ok(text: str) -> bool:
    return 0 < len(text) <= 26 and all(c in _ALPHABET for c in text.upper())
