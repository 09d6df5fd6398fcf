"""Notebook documents for headless runs: reading them strictly, injecting parameters, writing.

Parameters follow papermill's convention, so notebooks written for papermill run
unchanged: the cell tagged ``parameters`` holds the defaults, and the overrides
go into a new cell tagged ``injected-parameters`` placed right after it (a
previous injection is replaced).  Unlike papermill, a notebook without a
``parameters`` cell is refused: injecting at the top would let the notebook's
own assignments silently undo the override while the runs recorded it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dotnb.capture.assignments import BIND, DELETE, target_names, top_level
from dotnb.headless import CouldNotRun
from dotnb.store.atomic import write_bytes
from dotnb.store.errors import NotebookInvalid

if TYPE_CHECKING:
    from nbformat import NotebookNode

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
# Cells that raised when the run was recorded carry this tag in a reproduction, so
# that nbclient goes on past them as the user's kernel did.
RAISES_TAG = "raises-exception"
DEFAULT_KERNEL = "python3"


def read_notebook(path: Path) -> NotebookNode:
    """The notebook at ``path`` as nbformat 4, validated; :class:`NotebookInvalid` otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CouldNotRun(f"{path}: no such notebook") from None
    except IsADirectoryError:
        raise CouldNotRun(f"{path} is a folder, not a notebook") from None
    return parse_notebook(data, path.name)


def parse_notebook(data: bytes, name: str) -> NotebookNode:
    import nbformat
    from nbformat.validator import normalize

    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotebookInvalid(f"{name} is not a notebook: not valid JSON ({exc})") from None
    except RecursionError:
        raise NotebookInvalid(f"{name} is not a notebook: JSON nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nbformat"), int):
        raise NotebookInvalid(f"{name} is not a notebook: no 'nbformat' version in its JSON")
    if doc["nbformat"] < 4 or not isinstance(doc.get("cells"), list):
        # Old formats and damaged documents: nbformat converts what it can.
        try:
            doc = dict(nbformat.convert(nbformat.from_dict(doc), 4))
        except Exception as exc:
            raise NotebookInvalid(f"{name} is not a valid notebook: {_first_line(str(exc))}") from None
    try:
        # normalize() adds the cell ids nbformat 4.5 requires (notebooks written by
        # older tools lack them) instead of warning about each cell.
        _, doc = normalize(doc)
        # reads() also joins multi-line sources stored as lists of lines.
        nb = nbformat.reads(json.dumps(doc), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        raise NotebookInvalid(f"{name} is not a valid notebook: {_first_line(str(exc))}") from None
    return nb


def notebook_bytes(nb: NotebookNode) -> bytes:
    import nbformat

    return nbformat.writes(nb).encode("utf-8")


def write_notebook(nb: NotebookNode, path: Path) -> None:
    """Write ``nb`` to ``path`` atomically (a temp file beside it, then a rename)."""
    write_bytes(path, notebook_bytes(nb))


def kernel_name_of(nb: NotebookNode) -> str:
    spec = nb.metadata.get("kernelspec") or {}
    name = spec.get("name") if isinstance(spec, dict) else None
    return name if isinstance(name, str) and name else DEFAULT_KERNEL


def tags(cell: Any) -> list[str]:
    value = (cell.get("metadata") or {}).get("tags") or []
    return [t for t in value if isinstance(t, str)] if isinstance(value, list) else []


def inject_parameters(nb: NotebookNode, params: dict[str, Any]) -> list[str]:
    """Insert ``params`` after the cell tagged ``parameters``; returns warnings.

    ``params`` values are JSON values (from :func:`dotnb.capture.params.parse_param_option`),
    whose ``repr`` is a Python literal.
    """
    import nbformat

    nb.cells = [c for c in nb.cells if INJECTED_TAG not in tags(c)]
    index = next((i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in tags(c)), None)
    if index is None:
        raise CouldNotRun(
            "-p needs a cell tagged 'parameters' (the papermill convention) to put the values "
            "after; none is tagged in this notebook. In JupyterLab: select the cell that sets "
            "the defaults, open the property inspector (gear icon) and add the tag 'parameters'."
        )
    assigned = assigned_names(nb.cells[index].source)
    warnings = [
        f"-p {name}: the parameters cell does not assign {name}; it is set anyway"
        for name in params
        if assigned is not None and name not in assigned
    ]
    lines = ["# Parameters injected by `dotnb run -p`"]
    lines += [f"{name} = {value!r}" for name, value in params.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines) + "\n", metadata={"tags": [INJECTED_TAG]})
    nb.cells.insert(index + 1, cell)
    return warnings


def assigned_names(source: str) -> set[str] | None:
    """Names bound by top-level assignments in ``source`` (annotations and augmented
    assignments included, ``del`` not); None when it is not plain Python."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    names: set[str] = set()
    for kind, targets, _ in top_level(tree):
        if kind != DELETE:
            for target in targets:
                names |= target_names(target)
    return names


def assigned_values(source: str) -> dict[str, str | None] | None:
    """The names a cell's top-level statements assign, each with the source text of the
    value a plain ``name = value`` gives it (None for any other form: unpacking, ``+=``,
    an attribute); None when the cell is not plain Python."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found: dict[str, str | None] = {}
    for kind, targets, statement in top_level(tree):
        if kind == DELETE:
            for target in targets:
                for name in target_names(target):
                    found.pop(name, None)
            continue
        value = getattr(statement, "value", None)
        text = ast.get_source_segment(source, value) if kind == BIND and value is not None else None
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = text
            else:
                for name in target_names(target):
                    found[name] = None
    return found


def lineage_notebook(cells: list[tuple[str, bool]], kernelspec: dict[str, Any] | None) -> NotebookNode:
    """A notebook of lineage cells ``(code, raised_originally)``, in execution order."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    if kernelspec:
        nb.metadata["kernelspec"] = kernelspec
    for code, raised in cells:
        metadata = {"tags": [RAISES_TAG]} if raised else {}
        nb.cells.append(nbformat.v4.new_code_cell(code, metadata=metadata))
    return nb


def first_line(source: str, limit: int = 60) -> str:
    """The first non-blank line of a cell, shortened: how progress and errors name a cell."""
    for line in source.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return "(empty cell)"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unknown error"
