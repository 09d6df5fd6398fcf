"""The parameter space of ``dotnb sweep``: specs, grid and random points (pure functions)."""

from __future__ import annotations

import pytest

from dotnb.sweep.space import BadSpace, grid, parse_dimension, point_key, sample


def dims(*specs: str) -> list:
    return [parse_dimension(s) for s in specs]


def test_value_lists_are_python_literals() -> None:
    d = parse_dimension("opt=adam,'sgd',0.1,[64, 32],True,null")
    assert d.name == "opt"
    assert d.values == ("adam", "sgd", 0.1, [64, 32], True, None)


def test_repeated_values_count_once() -> None:
    assert parse_dimension("a=1,2,1").values == (1, 2)
    assert parse_dimension("a=1,True").values == (1, True)  # equal in Python, not the same value


def test_linear_and_log_ranges_include_both_ends() -> None:
    assert parse_dimension("a=0:1:5").values == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert parse_dimension("lr=1e-4:1e-1:log:4").values == (0.0001, 0.001, 0.01, 0.1)
    assert parse_dimension("a=3:7:1").values == (3.0,)


def test_grid_is_every_combination_last_name_fastest() -> None:
    points = grid(dims("a=1,2", "b=x,y,z"))
    assert points == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 1, "b": "z"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
        {"a": 2, "b": "z"},
    ]


def test_random_points_are_distinct_in_bounds_and_reproducible() -> None:
    space = dims("lr=1e-4:1e-1:log:5", "depth=2,4,8")
    first = sample(space, 20, seed=7)
    assert first == sample(space, 20, seed=7)
    assert first != sample(space, 20, seed=8)
    assert len(first) == 20 and len({point_key(p) for p in first}) == 20
    for point in first:
        assert 1e-4 <= point["lr"] <= 1e-1 and point["depth"] in (2, 4, 8)


def test_random_on_a_small_list_space_gives_each_point_once() -> None:
    points = sample(dims("a=1,2", "b=3,4"), 10, seed=1)
    assert sorted(point_key(p) for p in points) == sorted(point_key(p) for p in grid(dims("a=1,2", "b=3,4")))


def test_point_key_ignores_name_order() -> None:
    assert point_key({"a": 1, "b": 2}) == point_key({"b": 2, "a": 1})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lr", "expected NAME=V1,V2"),
        ("1x=1,2", "not a valid Python variable name"),
        ("a=", "has no values"),
        ("a=1:x:3", "must be numbers"),
        ("a=0:1:0", "N must be at least 1"),
        ("a=0:1:lin:3", "expected A:B:N or A:B:log:N"),
        ("a=0:1:log:3", "above 0"),
        ("a=b'x'", "not JSON-serialisable"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(BadSpace, match=message):
        parse_dimension(spec)


def test_an_empty_or_repeated_space_is_refused() -> None:
    with pytest.raises(BadSpace, match="no parameters"):
        grid([])
    with pytest.raises(BadSpace, match="more than once"):
        grid(dims("a=1", "a=2"))
    with pytest.raises(BadSpace, match="at least 1 point"):
        sample(dims("a=1"), 0, seed=None)
