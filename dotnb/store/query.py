"""Run filters shared by ``dotnb log`` and ``GET runs``."""

from __future__ import annotations

import math
import re

from dotnb.store.errors import DotnbError

_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", "==": "=", "!=": "!="}
_CONDITION = re.compile(r"^\s*([^<>=!\s][^<>=!]*?)\s*(>=|<=|==|!=|>|<|=)\s*([^\s].*?)\s*$")


class BadQuery(DotnbError):
    pass


# A plain class, not a NamedTuple: ``dotnb log --metric`` imports this module, and
# typing costs milliseconds of every CLI start.
class MetricCondition:
    """A condition on a run's summary metric: ``name op value``."""

    __slots__ = ("name", "op", "value")

    def __init__(self, name: str, op: str, value: float) -> None:
        self.name = name
        self.op = op  # an SQL comparison operator
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricCondition) and (self.name, self.op, self.value) == (
            other.name,
            other.op,
            other.value,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.op, self.value))

    def __repr__(self) -> str:
        return f"MetricCondition({self.name!r}, {self.op!r}, {self.value!r})"

    def sql(self) -> tuple[str, tuple[str, float]]:
        return f"SELECT run_id FROM metric_values WHERE name=? AND value {self.op} ?", (self.name, self.value)


def parse_metric_condition(text: str) -> MetricCondition:
    """``acc>0.9``, ``loss <= 0.3``, ``epochs==10`` → a condition on a run's summary metric."""
    match = _CONDITION.match(text)
    if not match:
        raise BadQuery(f"metric condition {text!r} must look like NAME>VALUE (operators: > >= < <= = !=)")
    name, op, raw = match.groups()
    try:
        value = float(raw)
    except ValueError:
        raise BadQuery(f"metric condition {text!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise BadQuery(f"metric condition {text!r}: the value must be finite")
    return MetricCondition(name, _OPS[op], value)
