"""Run manifests: canonical JSON documents stored as objects.

A manifest is self-describing (it carries ``format``) and is the source of truth
for a run; the SQLite index is only a cache over manifests.  Canonical form (sorted
keys, no insignificant whitespace, UTF-8) makes identical runs hash identically.
The JSON Schema lives in ``dotnb/schema/manifest.schema.json``.
"""

from __future__ import annotations

import json
import math
import os
import time

from dotnb.store.errors import StoreFormatError

# FORMAT_VERSION and check_format live in dotnb.store.versions, which dotnb log imports
# without this module's json; re-exported here, where their users import them from.
from dotnb.store.versions import FORMAT_VERSION as FORMAT_VERSION
from dotnb.store.versions import check_format as check_format

# Importing typing costs milliseconds of every start of a process that imports this
# module; mypy reads any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SCHEMA_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "schema", "manifest.schema.json"
)


# One encoder for every call: json.dumps with options builds a JSONEncoder each time,
# a noticeable share of encoding the small documents a tracked cell writes.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(doc: Any) -> bytes:
    return _CANONICAL.encode(doc).encode("utf-8")


def parse_manifest(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreFormatError(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or "format" not in doc or "id" not in doc:
        raise StoreFormatError("manifest lacks 'format' or 'id'")
    check_format(doc["format"], "run manifest")
    return doc


def load_schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        result: dict[str, Any] = json.load(f)
    return result


def json_safe_number(value: float) -> float | str:
    """JSON has no NaN/inf: keep them as strings so a run with a NaN loss still records."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


_iso_second: tuple[int, str] = (-1, "")  # the last whole second formatted (runs come in bursts)


def iso_time(ts: float) -> str:
    """UTC ISO-8601 with milliseconds; sorts lexically in time order."""
    global _iso_second
    second = int(ts // 1)
    cached = _iso_second
    if cached[0] != second:
        cached = _iso_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int(ts % 1 * 1000):03d}Z"


def checkpoint_manifest(
    before: str, of_run: dict[str, Any], notebook: str | None, user: str | None, host: str | None
) -> dict[str, Any]:
    """The manifest of a checkpoint recorded before something is done to the state of
    run ``of_run`` (its manifest), named ``"<before> #N"`` (the run's own number, not a
    slice of its id: ids of runs minutes apart share their first characters, the
    time).  No code and no files: the caller adds what the checkpoint keeps (the files
    a restore replaces, the kernel state a checkout replaces)."""
    from dotnb.store.ids import new_run_id
    from dotnb.store.vocabulary import CHECKPOINT, OK

    what = f"#{of_run['number']}" if of_run.get("number") else of_run["id"]
    if of_run.get("notebook") and of_run.get("notebook") != notebook:
        what += f" of {of_run['notebook']}"
    return {
        "id": new_run_id(),
        "kind": CHECKPOINT,
        "name": f"{before} {what}",
        "checkpoint_of": of_run["id"],
        "notebook": notebook,
        "notebook_snapshot": None,
        "notebook_source": None,
        "code": "",
        "lineage": [],
        "params": {},
        "metrics": {},
        "metric_series": {},
        "inputs": [],
        "outputs": [],
        "absent": [],
        "external_inputs": [],
        "status": OK,
        "error": None,
        "started_at": iso_time(time.time()),
        "duration_s": 0.0,
        # Who checkpointed, as other runs say who recorded them.
        "environment": {"user": user, "host": host},
    }
