"""The values a ``parameters`` cell gives its names, as the Sweep… dialog shows them."""

from __future__ import annotations

from dotnb.headless.notebooks import assigned_values


def test_plain_assignments_keep_their_value_text_and_other_forms_have_none() -> None:
    source = (
        "lr = 1e-3  # learning rate\n"
        "name: str = 'resnet'\n"
        "a = b = [1, 2]\n"
        "x, y = 1, 2\n"
        "steps = 10\n"
        "steps += 5\n"
        "cfg = {}\n"
        "cfg['k'] = 3\n"
        "gone = 1\n"
        "del gone\n"
        "if True:\n"
        "    hidden = 1\n"
    )
    assert assigned_values(source) == {
        "lr": "1e-3",
        "name": "'resnet'",
        "a": "[1, 2]",
        "b": "[1, 2]",
        "x": None,
        "y": None,
        "steps": None,
        "cfg": None,
    }


def test_a_cell_that_is_not_python_has_no_values() -> None:
    assert assigned_values("%%bash\necho hi\n") is None
