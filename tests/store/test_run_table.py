"""The Experiments table: sorting, filtering and paging in the index, columns discovered."""

from __future__ import annotations

import time
from typing import Any

import pytest

from dotnb.store.annotating import note_run, tag_run
from dotnb.store.manifest import iso_time
from dotnb.store.query import BadQuery
from dotnb.store.repo import Store
from dotnb.store.run_table import RunTable


def commit(store: Store, notebook: str = "nb.ipynb", **fields: Any) -> str:
    manifest: dict[str, Any] = {
        "kind": "run",
        "notebook": notebook,
        "code": "x = 1",
        "params": {},
        "metrics": {},
        "status": "ok",
        "started_at": iso_time(time.time()),
        "duration_s": 1.0,
        "environment": {"user": "ada", "host": "box"},
        **fields,
    }
    return str(store.commit_run(manifest)["id"])


@pytest.fixture
def table(store: Store) -> tuple[RunTable, list[str]]:
    ids = [
        commit(store, params={"lr": 0.1, "opt": "adam"}, metrics={"acc": 0.8, "loss": 0.5}, name="a"),
        commit(store, params={"lr": 0.3, "opt": "sgd"}, metrics={"acc": 0.95}, name="b", duration_s=9.0),
        commit(
            store,
            params={"lr": "auto", 'q"k': 2, "a.b": 1},
            metrics={"acc": 0.9, 'loss "train"': 0.1},
            status="error",
        ),
        commit(store, "other.ipynb", params={"depth": 3}, metrics={"f1": 0.5}),
    ]
    tag_run(store, ids[0], ["baseline"])
    tag_run(store, ids[1], ["baseline", "best"])
    note_run(store, ids[2], "auto lr diverged")
    return RunTable(store.index), ids


def ids_of(page: dict[str, Any]) -> list[str]:
    return [r["id"] for r in page["runs"]]


def test_columns_are_discovered(table: tuple[RunTable, list[str]]) -> None:
    t, _ = table
    assert t.columns() == {
        "params": ["a.b", "depth", "lr", "opt", 'q"k'],
        "metrics": ["acc", "f1", "loss", 'loss "train"'],
    }
    assert t.columns("other.ipynb") == {"params": ["depth"], "metrics": ["f1"]}


def test_sort_by_metric_param_and_builtin_missing_last(table: tuple[RunTable, list[str]]) -> None:
    t, (a, b, c, d) = table
    assert ids_of(t.query(sort="metric:acc")) == [b, c, a, d]
    assert ids_of(t.query(sort="metric:acc", descending=False)) == [a, c, b, d]
    # Runs without the metric come last, whichever the direction.
    assert ids_of(t.query(sort="metric:loss", descending=False)) == [a, b, c, d]
    assert ids_of(t.query(sort="metric:loss")) == [a, d, c, b]
    assert ids_of(t.query(sort="param:lr", descending=False))[:2] == [a, b]
    assert ids_of(t.query(sort="duration"))[0] == b
    # Param names a JSON path cannot quote (or that look like paths) sort too.
    assert ids_of(t.query(sort='param:q"k'))[0] == c
    assert ids_of(t.query(sort="param:a.b"))[0] == c
    assert ids_of(t.query(filters=['param:q"k = 2'])) == [c]
    assert ids_of(t.query(sort="started", descending=False)) == [a, b, c, d]


def test_filters(table: tuple[RunTable, list[str]]) -> None:
    t, (a, b, c, d) = table
    assert set(ids_of(t.query(filters=["acc > 0.85"]))) == {b, c}
    assert ids_of(t.query(filters=["acc > 0.85", "lr >= 0.3"])) == [b]
    assert ids_of(t.query(filters=["opt = adam"])) == [a]
    assert ids_of(t.query(filters=["lr = auto"])) == [c]
    assert set(ids_of(t.query(filters=["status != ok"]))) == {c}
    assert ids_of(t.query(filters=["tag = best"])) == [b]
    assert set(ids_of(t.query(filters=["tag != best"]))) == {a, c, d}
    assert ids_of(t.query(filters=['metric:loss "train" < 0.2'])) == [c]
    assert ids_of(t.query(filters=["name ~ B"])) == [b]
    assert ids_of(t.query(tags=["baseline"], sort="number", descending=False)) == [a, b]
    assert ids_of(t.query(text="diverged")) == [c]
    page = t.query(notebook="nb.ipynb", filters=["acc >= 0"], limit=1, offset=1, sort="started")
    assert page["total"] == 3 and ids_of(page) == [b]
    row = t.query(filters=["tag = best"])["runs"][0]
    assert row["tags"] == ["baseline", "best"] and row["note"] is None


@pytest.mark.parametrize("bad", ["nope > 1", "acc > high", "acc", "opt > 2x", "tag > 1"])
def test_bad_filters_say_why(table: tuple[RunTable, list[str]], bad: str) -> None:
    with pytest.raises(BadQuery):
        table[0].query(filters=[bad])


def test_bad_sort(table: tuple[RunTable, list[str]]) -> None:
    with pytest.raises(BadQuery):
        table[0].query(sort="DROP TABLE runs")


def test_grouping_keeps_each_notebooks_or_names_runs_together(table: tuple[RunTable, list[str]]) -> None:
    t, (a, b, c, d) = table
    # By notebook: nb.ipynb's runs (by acc, best first), then other.ipynb's.
    assert ids_of(t.query(sort="metric:acc", group="notebook")) == [b, c, a, d]
    assert ids_of(t.query(sort="started", descending=False, group="notebook")) == [a, b, c, d]
    # By name: "a", then "b", then the runs without a name, sorted within.
    assert ids_of(t.query(sort="started", group="name")) == [a, b, d, c]
    page = t.query(sort="started", group="notebook", offset=2, limit=2)
    assert ids_of(page) == [a, d] and page["total"] == 4
    with pytest.raises(BadQuery, match="group must be one of notebook, name, sweep"):
        t.query(group="status")


def test_grouping_by_sweep_keeps_each_sweeps_runs_together(store: Store) -> None:
    one, two = "sweep:01M98SWEEPAAAAAAAAAAAAAAAA", "sweep:01M98SWEEPBBBBBBBBBBBBBBBB"
    runs = [commit(store, metrics={"acc": acc}) for acc in (0.1, 0.9, 0.5, 0.7, 0.3)]
    tag_run(store, runs[0], [two])
    tag_run(store, runs[1], ["best", two])  # other tags beside the sweep's
    tag_run(store, runs[2], [one])
    tag_run(store, runs[4], [one])
    page = RunTable(store.index).query(sort="metric:acc", group="sweep")
    # Sweep one (by acc), then sweep two, then the run of no sweep.
    assert ids_of(page) == [runs[2], runs[4], runs[1], runs[0], runs[3]]


def test_input_and_output_changes_count_files_new_or_changed_since_the_run_before(store: Store) -> None:
    root = store.root

    def files(**contents: str) -> list[dict[str, Any]]:
        for name, text in contents.items():
            (root / name).write_text(text)
        return store.snapshot_files(sorted(contents))

    first = commit(store, inputs=files(**{"a.csv": "1", "b.csv": "1"}), outputs=files(**{"m.pkl": "1"}))
    # Same input bytes; b.csv changed, c.csv is new; the output is rewritten with the same bytes.
    second = commit(
        store,
        inputs=files(**{"a.csv": "1", "b.csv": "2", "c.csv": "1"}),
        outputs=files(**{"m.pkl": "1"}),
    )
    # Another notebook's run in between is not "the run before" of nb.ipynb's runs.
    other = commit(store, "other.ipynb", inputs=files(**{"a.csv": "9"}))
    third = commit(
        store, inputs=files(**{"a.csv": "9", "b.csv": "2", "c.csv": "1"}), outputs=files(**{"m.pkl": "2"})
    )
    fourth = commit(store, inputs=files(**{"b.csv": "2"}))  # fewer inputs: none new or changed
    t = RunTable(store.index)
    page = t.query(sort="started", descending=False)
    changes = {r["id"]: (r["inputs_changed"], r["outputs_changed"]) for r in page["runs"]}
    assert changes == {first: (2, 1), second: (2, 0), other: (1, 0), third: (1, 1), fourth: (0, 0)}
    # Sortable and filterable like any numeric column.
    changed_first = t.query(filters=["inputs_changed > 0"], sort="inputs_changed")
    assert ids_of(changed_first) == [second, first, third, other]
    assert ids_of(t.query(filters=["outputs_changed = 1", "inputs_changed < 2"])) == [third]
    unchanged_first = t.query(sort="outputs_changed", descending=False, notebook="nb.ipynb")
    assert ids_of(unchanged_first)[:2] == [second, fourth]


def test_pages_of_one_query_follow_every_change_to_the_runs(store: Store) -> None:
    """The order a query sorts is kept for its next pages, and no longer than the runs
    stay as they were: a run added, tagged, noted or given a new metric moves it."""
    ids = [commit(store, metrics={"acc": i / 10}) for i in range(5)]
    t = RunTable(store.index)

    def by_acc(**query: Any) -> list[str]:
        pages = [t.query(sort="metric:acc", offset=o, limit=2, **query) for o in (0, 2, 4)]
        assert all(p["total"] == pages[0]["total"] for p in pages)
        return [i for p in pages for i in ids_of(p)]

    assert by_acc() == ids[::-1]
    newest = commit(store, metrics={"acc": 0.25})
    assert by_acc() == [ids[4], ids[3], newest, ids[2], ids[1], ids[0]]
    assert t.query(sort="metric:acc")["total"] == 6
    # Annotations change what tag filters and searches keep.
    assert by_acc(tags=["keep"]) == []
    tag_run(store, ids[1], ["keep"])
    assert by_acc(tags=["keep"]) == [ids[1]]
    assert by_acc(text="odd one") == []
    note_run(store, ids[3], "the odd one")
    assert by_acc(text="odd one") == [ids[3]]
    # Another store's table never answers from this one's order.
    other = Store.init(store.root / "elsewhere")
    try:
        assert RunTable(other.index).query(sort="metric:acc")["runs"] == []
    finally:
        other.close()
