"""Run filters shared by ``dotnb log`` and ``GET runs``."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from dotnb.store.errors import DotnbError

_OPS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "=": "=", "==": "=", "!=": "!="}
_CONDITION = re.compile(r"^\s*([^<>=!\s][^<>=!]*?)\s*(>=|<=|==|!=|>|<|=)\s*([^\s].*?)\s*$")


class BadQuery(DotnbError):
    pass


class MetricCondition(NamedTuple):
    name: str
    op: str  # an SQL comparison operator
    value: float

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
