"""Kernel state goes to a remote and comes back only when asked (``--with-kernel-state``),
its objects checked on the way in; a plain push or pull leaves it out."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from dotnb.remote.config import add_remote
from dotnb.remote.state_transfer import pull_with_states, push_states, push_with_states
from dotnb.remote.transfer import pull, push
from dotnb.store.kernel_state import (
    GROUP_FORMAT,
    STATE_FORMAT,
    put_blob,
    put_document,
    read_state_ref,
    state_objects,
    write_state_ref,
)
from dotnb.store.layout import object_key
from dotnb.store.repo import Store
from tests.cli.invoke import dotnb, plain_env  # noqa: F401 - plain_env: autouse for this module
from tests.manifests import new_manifest


def record_state(store: Store, run_id: str, value: Any) -> str:
    """A kernel state for ``run_id`` holding ``x = value``, as a kernel writes one."""
    stream, _ = put_blob(store.objects, pickle.dumps({"x": value}, protocol=5))
    group = put_document(
        store.objects, {"format": GROUP_FORMAT, "names": ["x"], "pickle": stream, "buffers": []}
    )
    state = {
        "format": STATE_FORMAT,
        "author": "alice@laptop",
        "variables": {"x": {"type": type(value).__name__, "status": "stored", "size": 10, "group": group}},
    }
    digest = put_document(store.objects, state)
    write_state_ref(store.dir, run_id, digest)
    return digest


@pytest.fixture
def team(tmp_path: Path) -> tuple[Store, Store, str, Path]:
    shared = tmp_path / "shared"
    shared.mkdir()
    alice, bob = Store.init(tmp_path / "alice"), Store.init(tmp_path / "bob")
    for store in (alice, bob):
        add_remote(store, "origin", f"file://{shared}")
    run_id = str(alice.commit_run(new_manifest("nb.ipynb"))["id"])
    return alice, bob, run_id, shared


def test_a_plain_push_and_pull_leave_kernel_state_out(team: tuple[Store, Store, str, Path]) -> None:
    alice, bob, run_id, shared = team
    record_state(alice, run_id, 41)
    push(alice)
    assert not (shared / "kernel-state").exists()
    pull(bob)
    assert bob.manifest(run_id)["id"] == run_id
    assert read_state_ref(bob.dir, run_id) is None


def test_with_kernel_state_it_goes_and_comes_back_whole(team: tuple[Store, Store, str, Path]) -> None:
    alice, bob, run_id, shared = team
    digest = record_state(alice, run_id, list(range(100)))
    sent = push_with_states(alice)
    assert sent["runs_pushed"] == 1 and sent["kernel_states_pushed"] == 1
    assert sent["kernel_state_objects_uploaded"] == 3  # the record, its group, the pickle
    assert (shared / "kernel-state" / run_id).read_text().strip() == digest
    assert push_states(alice)["kernel_states_pushed"] == 0  # there already

    got = pull_with_states(bob)
    assert got["runs_new"] == 1 and got["kernel_states_pulled"] == 1, got
    assert read_state_ref(bob.dir, run_id) == digest
    for d in state_objects(bob.objects, digest):
        assert bob.objects.read_bytes(d, verify=True) == alice.objects.read_bytes(d)
    assert pull_with_states(bob)["kernel_states_pulled"] == 0


def test_a_damaged_state_on_the_remote_is_left_out_and_named(team: tuple[Store, Store, str, Path]) -> None:
    alice, bob, run_id, shared = team
    digest = record_state(alice, run_id, "secret")
    push_with_states(alice)
    # The pickle stream: the one object of the state that holds the value's bytes.
    stream = next(d for d in state_objects(alice.objects, digest) if b"secret" in alice.objects.read_bytes(d))
    (shared / object_key(stream)).write_bytes(b"not the pickle")
    got = pull_with_states(bob)
    assert got["runs_new"] == 1 and got["kernel_states_pulled"] == 0
    assert [r["id"] for r in got["kernel_states_rejected"]] == [run_id]
    assert read_state_ref(bob.dir, run_id) is None  # never half there


def test_the_cli_flags(team: tuple[Store, Store, str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob, run_id, _ = team
    record_state(alice, run_id, 1)
    code, out, err = dotnb(capsys, "--root", alice.root, "push", "--with-kernel-state")
    assert code == 0, err
    assert "kernel state of 1 run sent (3 objects" in out
    code, out, err = dotnb(capsys, "--root", bob.root, "pull", "--with-kernel-state")
    assert code == 0, err
    assert "kernel state of 1 run brought" in out and "needs --trust" in out
