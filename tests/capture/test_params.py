"""Params from cell code and from --param options; the shared JSON conversion."""

from __future__ import annotations

import enum
import json
import math
from fractions import Fraction
from typing import Any

import pytest

from dotnb.capture.params import (
    NotJsonableError,
    literal_assignments,
    parse_param_option,
    to_jsonable,
)

# ---------------------------------------------------------------- literal_assignments


def test_plain_literals() -> None:
    code = """
lr = 0.1
layers = [64, 32]
name = "x"
a, b = 1, 2
lr2: float = 0.5
neg = -3
pos = +2
sci = 1e-3
shape = (3, (4, 5))
opts = {"depth": 3, "act": "relu"}
tags = {"b", "c", "a"}
nothing = None
yes, no = True, False
"""
    assert literal_assignments(code) == {
        "lr": 0.1,
        "layers": [64, 32],
        "name": "x",
        "a": 1,
        "b": 2,
        "lr2": 0.5,
        "neg": -3,
        "pos": 2,
        "sci": 0.001,
        "shape": [3, [4, 5]],
        "opts": {"depth": 3, "act": "relu"},
        "tags": ["a", "b", "c"],
        "nothing": None,
        "yes": True,
        "no": False,
    }


def test_result_is_json() -> None:
    params = literal_assignments("a = (1, 2)\nb = {3, 1}\nc = 1e400\nd = {1: 'x'}")
    assert json.loads(json.dumps(params, allow_nan=False)) == {
        "a": [1, 2],
        "b": [1, 3],
        "c": "inf",
        "d": {"1": "x"},
    }


def test_non_finite_floats_become_strings() -> None:
    assert literal_assignments("big = 1e400\nsmall = -1e400\nlst = [1e400, 2.0]") == {
        "big": "inf",
        "small": "-inf",
        "lst": ["inf", 2.0],
    }


def test_last_assignment_wins() -> None:
    assert literal_assignments("lr = 0.1\nepochs = 3\nlr = 0.2") == {"lr": 0.2, "epochs": 3}


def test_non_literals_are_skipped() -> None:
    code = "import math\nx = f()\ny = math.pi\nz = 1 + 2\nw = [i for i in range(3)]\nv = 4"
    assert literal_assignments(code) == {"v": 4}


def test_later_non_literal_rebinding_drops_the_name() -> None:
    # The variable no longer holds the literal after the cell ran.
    assert literal_assignments("lr = 0.1\nlr = lr * 2") == {}
    assert literal_assignments("lr = 0.1\nlr += 1\nk = 1") == {"k": 1}
    assert literal_assignments("lr = 0.1\ndel lr") == {}
    assert literal_assignments("cfg = {'a': 1}\ncfg['a'] = 2") == {}
    assert literal_assignments("raw = 1\nraw = b'bytes'") == {}


def test_augmented_assignment_alone_is_not_a_param() -> None:
    assert literal_assignments("n += 1") == {}


def test_nested_blocks_are_ignored() -> None:
    code = """
def f():
    inner = 1
class C:
    attr = 2
for i in range(3):
    loop = 3
while False:
    w = 4
if True:
    cond = 5
with open(__file__) as fh:
    ctx = 6
try:
    t = 7
except Exception:
    pass
top = 8
"""
    assert literal_assignments(code) == {"top": 8}


def test_unpacking_forms() -> None:
    assert literal_assignments("a, *rest = 1, 2, 3") == {"a": 1, "rest": [2, 3]}
    assert literal_assignments("(a, b), c = (1, 2), 3") == {"a": 1, "b": 2, "c": 3}
    assert literal_assignments("a, b = [1, 2]") == {"a": 1, "b": 2}
    assert literal_assignments("x = y = 5") == {"x": 5, "y": 5}
    # Per element: the literal half is still recorded.
    assert literal_assignments("a, b = 1, f()") == {"a": 1}
    # Would raise at run time: nothing recorded.
    assert literal_assignments("a, b = 1, 2, 3") == {}


def test_annotation_without_value_binds_nothing() -> None:
    assert literal_assignments("lr: float\nk: int = 3") == {"k": 3}


def test_attribute_and_subscript_targets_are_not_params() -> None:
    assert literal_assignments("obj.lr = 0.1\nd['k'] = 2") == {}


def test_unsupported_literals_are_skipped() -> None:
    assert literal_assignments("b = b'x'\nc = 1+2j\ne = ...\nk = {1: 'a', '1': 'b'}") == {}


@pytest.mark.parametrize(
    "code, expected",
    [
        ("!ls\nx = 1", {"x": 1}),
        ("%time y = 2\nz = 3", {"z": 3}),
        ("%%track --param lr=0.1\nlr = 0.1", {"lr": 0.1}),
        ("\n\n%%track\n%%time\nv = 1", {"v": 1}),
        ("%%bash\nx = 1", {}),
        ("files = !ls\nn = 1", {"n": 1}),
        ("x = 1\nx?", {"x": 1}),
        ("%matplotlib inline\nepochs = 10", {"epochs": 10}),
    ],
)
def test_ipython_syntax(code: str, expected: dict[str, Any]) -> None:
    assert literal_assignments(code) == expected


@pytest.mark.parametrize(
    "code",
    ["def f(:\n", "x = '''unterminated", "x = 1\n  y = 2", "x = '\x00'", "", "   ", "(" * 500],
)
def test_unparseable_cells_give_nothing(code: str) -> None:
    assert literal_assignments(code) == {}


# ---------------------------------------------------------------- parse_param_option


@pytest.mark.parametrize(
    "text, expected",
    [
        ("lr=0.3", ("lr", 0.3)),
        ("epochs=10", ("epochs", 10)),
        ("layers=[64, 32]", ("layers", [64, 32])),
        ("shape=(1, 2)", ("shape", [1, 2])),
        ("name=adam", ("name", "adam")),
        ("name='adam'", ("name", "adam")),
        ("msg=hello world", ("msg", "hello world")),
        ("flag=True", ("flag", True)),
        ("flag=true", ("flag", True)),
        ("off=false", ("off", False)),
        ("none=None", ("none", None)),
        ("none=null", ("none", None)),
        ("neg=-1", ("neg", -1)),
        ("empty=", ("empty", "")),
        ("expr=1+2", ("expr", "1+2")),
        ("url=http://x?a=b", ("url", "http://x?a=b")),
        (" lr = 0.1 ", ("lr", 0.1)),
        ("big=1e400", ("big", "inf")),
    ],
)
def test_parse_param_option(text: str, expected: tuple[str, Any]) -> None:
    assert parse_param_option(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("=3", "missing NAME"),
        ("lr", "expected NAME=VALUE"),
        ("", "expected NAME=VALUE"),
        ("1x=2", "'1x' is not a valid Python variable name"),
        ("a-b=2", "not a valid Python variable name"),
        ("class=2", "not a valid Python variable name"),
        ("b=b'x'", "bytes is not JSON-serialisable"),
        ("c=1j", "complex is not JSON-serialisable"),
    ],
)
def test_parse_param_option_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid param") as info:
        parse_param_option(text)
    assert message in str(info.value)


# ---------------------------------------------------------------------- to_jsonable


class Color(str, enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Scalar:
    """Duck-types a NumPy 0-d scalar without importing NumPy."""

    shape = ()

    def __init__(self, value: Any) -> None:
        self.value = value

    def item(self) -> Any:
        return self.value


def test_to_jsonable_conversions() -> None:
    assert to_jsonable(None) is None
    assert to_jsonable(True) is True
    assert to_jsonable(3) == 3
    assert to_jsonable(float("nan")) == "nan"
    assert to_jsonable(-math.inf) == "-inf"
    assert to_jsonable((1, [2, (3,)])) == [1, [2, [3]]]
    assert to_jsonable(frozenset({3, 1, 2})) == [1, 2, 3]
    assert to_jsonable({1, "a"}) == ["a", 1]  # mixed: ordered by JSON text ('"a"' < '1')
    assert to_jsonable({"k": (1, 2), 5: None}) == {"k": [1, 2], "5": None}
    assert type(to_jsonable(Color.RED)) is str and to_jsonable(Color.RED) == "red"
    assert type(to_jsonable(Level.HIGH)) is int and to_jsonable(Level.HIGH) == 3
    assert to_jsonable(Scalar(0.5)) == 0.5
    assert to_jsonable(Scalar(float("inf"))) == "inf"
    assert to_jsonable(Fraction(1, 4)) == 0.25


@pytest.mark.parametrize(
    "value",
    [b"x", bytearray(b"x"), 1j, object(), {(1, 2): 3}, {1: "a", "1": "b"}, [b"x"], {True: 1}],
)
def test_to_jsonable_rejects(value: Any) -> None:
    with pytest.raises(NotJsonableError):
        to_jsonable(value)


def test_to_jsonable_rejects_cycles_but_not_shared_objects() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(NotJsonableError, match="cyclic"):
        to_jsonable(loop)
    shared = [1]
    assert to_jsonable([shared, shared]) == [[1], [1]]


def test_not_jsonable_is_a_type_error() -> None:
    # Callers written against json.dumps catch TypeError.
    assert issubclass(NotJsonableError, TypeError)
