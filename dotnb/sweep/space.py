"""A sweep's parameter space: ``-p`` specs parsed into dimensions, expanded into points.

Pure functions over plain values (no store, no Dask), so the CLI, the REST API and
tests share them.  A spec is ``NAME=V1,V2,…`` (each value a Python literal, read as
``dotnb run -p`` reads one), ``NAME=A:B:N`` (N values evenly spaced from A to B,
both included) or ``NAME=A:B:log:N`` (N values evenly spaced in log10, A and B > 0).

Grid sampling is every combination, in the order the specs were given (the last
name varies fastest).  Random sampling draws ``n`` points with a seeded
:class:`random.Random`: a value list is sampled uniformly, a range uniformly over
``[A, B]`` (in log space for ``log``); repeated points are drawn again, so a sweep
never runs one point twice (a small value space gives fewer points).
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import Any

from dotnb.capture.params import parse_param_option
from dotnb.store.errors import DotnbError
from dotnb.store.vocabulary import EXIT_COULD_NOT_RUN


class BadSpace(DotnbError):
    """A parameter spec that cannot be read, or a space with no point (exit status 2)."""

    exit_code = EXIT_COULD_NOT_RUN


@dataclass(frozen=True)
class Dimension:
    name: str
    values: tuple[Any, ...]  # what a grid takes; a range's N evenly spaced values
    low: float | None = None  # a range's bounds, for random sampling
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None and self.high is not None


def parse_dimension(text: str) -> Dimension:
    """One ``-p`` spec as a :class:`Dimension`; :class:`BadSpace` says what is wrong."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name:
        raise BadSpace(f"invalid sweep param {text!r}: expected NAME=V1,V2,… or NAME=A:B:N")
    if not name.isidentifier():
        raise BadSpace(f"invalid sweep param {text!r}: {name!r} is not a valid Python variable name")
    parts = spec.split(":")
    if len(parts) in (3, 4) and not spec.startswith(("'", '"', "[", "{")):
        return _range(name, text, parts)
    values = [_value(name, item) for item in _split_top_level(spec)]
    if not values:
        raise BadSpace(f"sweep param {name!r} has no values")
    return Dimension(name, tuple(_unique(values)))


def _range(name: str, text: str, parts: list[str]) -> Dimension:
    log = len(parts) == 4
    if log and parts[2].strip() != "log":
        raise BadSpace(f"invalid range {text!r}: expected A:B:N or A:B:log:N")
    try:
        low, high = float(parts[0]), float(parts[1])
        count = int(parts[-1])
    except ValueError:
        raise BadSpace(f"invalid range {text!r}: A and B must be numbers and N a whole number") from None
    if count < 1:
        raise BadSpace(f"invalid range {text!r}: N must be at least 1")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise BadSpace(f"invalid range {text!r}: A and B must be finite")
    if log and (low <= 0 or high <= 0):
        raise BadSpace(f"invalid range {text!r}: a log range needs A and B above 0")
    if count == 1:
        values = [low]
    elif log:
        a, b = math.log10(low), math.log10(high)
        values = [10 ** (a + (b - a) * i / (count - 1)) for i in range(count)]
    else:
        values = [low + (high - low) * i / (count - 1) for i in range(count)]
    values = [_round(v) for v in values]
    return Dimension(name, tuple(_unique(values)), low=low, high=high, log=log)


def _round(value: float) -> float:
    # 12 significant digits: 1e-4:1e-1:log:4 gives 0.001, not 0.0010000000000000002.
    return float(f"{value:.12g}")


def _value(name: str, item: str) -> Any:
    try:
        return parse_param_option(f"{name}={item}")[1]
    except ValueError as exc:
        raise BadSpace(str(exc)) from None


def _split_top_level(spec: str) -> list[str]:
    """``spec`` split at commas outside brackets and quotes (``[64,32],[128]`` is two values)."""
    items: list[str] = []
    depth, quote, start = 0, "", 0
    for i, c in enumerate(spec):
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(spec[start:i])
            start = i + 1
    items.append(spec[start:])
    return [item.strip() for item in items if item.strip()]


def _unique(values: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for v in values:
        if not any(type(v) is type(s) and v == s for s in seen):
            seen.append(v)
    return seen


def grid(dimensions: list[Dimension]) -> list[dict[str, Any]]:
    """Every combination of the dimensions' values (the last name varies fastest)."""
    _check_names(dimensions)
    if not dimensions:
        raise BadSpace("the sweep has no parameters: give at least one -p NAME=V1,V2,…")
    names = [d.name for d in dimensions]
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(d.values for d in dimensions))
    ]


def sample(dimensions: list[Dimension], n: int, seed: int | None) -> list[dict[str, Any]]:
    """``n`` distinct random points (fewer when the space has fewer), reproducible by ``seed``."""
    _check_names(dimensions)
    if not dimensions:
        raise BadSpace("the sweep has no parameters: give at least one -p NAME=V1,V2,…")
    if n < 1:
        raise BadSpace("--random needs at least 1 point")
    rng = random.Random(seed)
    finite = all(not d.is_range for d in dimensions)
    limit = math.prod(len(d.values) for d in dimensions) if finite else n
    points: list[dict[str, Any]] = []
    keys: set[str] = set()
    attempts = 0
    while len(points) < min(n, limit) and attempts < 100 * n:
        attempts += 1
        point = {d.name: _draw(d, rng) for d in dimensions}
        key = point_key(point)
        if key not in keys:
            keys.add(key)
            points.append(point)
    return points


def _draw(d: Dimension, rng: random.Random) -> Any:
    if d.low is not None and d.high is not None:
        if d.log:
            return _round(10 ** rng.uniform(math.log10(d.low), math.log10(d.high)))
        return _round(rng.uniform(d.low, d.high))
    return rng.choice(d.values)


def point_key(point: dict[str, Any]) -> str:
    """A point's identity: its params as canonical JSON (name order does not matter)."""
    import json

    return json.dumps(point, sort_keys=True, separators=(",", ":"))


def _check_names(dimensions: list[Dimension]) -> None:
    names = [d.name for d in dimensions]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise BadSpace(f"sweep param {repeated[0]!r} is given more than once")
