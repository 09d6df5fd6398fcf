"""The ignore rules: a folder's names checked together say what each path checked
alone says (hidden names, caches, ``.dotnbignore`` patterns, paths added)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dotnb.capture.ignore import IgnoreRules

NAMES = {
    ".hidden",
    ".",
    "..twice",
    "a",
    "a.log",
    "b.",
    "x.y",
    "__pycache__",
    "__pycache__x",
    "café.csv",
    " space",
    "keep.log",
    "mid.dle",
}


@pytest.mark.parametrize("patterns", ["", "*.log\n!keep.log\n", "sub/\n"])
@pytest.mark.parametrize("folder", ["", "data", "data/sub"])
def test_names_checked_together_are_ignored_as_each_alone(tmp_path: Path, patterns: str, folder: str) -> None:
    (tmp_path / ".dotnbignore").write_text(patterns)
    rules = IgnoreRules(tmp_path)
    prefix = f"{folder}/" if folder else ""
    rules.add_ignored_path(prefix + "x.y")
    together = rules.names_matcher()(folder, NAMES)
    assert together == {name for name in NAMES if rules.is_ignored(prefix + name)}
    assert {".hidden", ".", "..twice", "__pycache__", "x.y"} <= together
    if not patterns:
        assert together == {".hidden", ".", "..twice", "__pycache__", "x.y"}


def test_an_empty_name_and_names_in_a_hidden_folder_are_ignored(tmp_path: Path) -> None:
    matcher = IgnoreRules(tmp_path).names_matcher()
    assert matcher("data", {"", "a"}) == {""}
    assert matcher("data/.cache", {"a", "b"}) == {"a", "b"}
    assert matcher("data", {"a", "b"}) == set()
