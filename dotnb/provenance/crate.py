"""RO-Crate (Process Run Crate profile) of a subject, through the ``rocrate`` package, and
bringing such a crate back into a store as runs.

The crate holds, per run: a ``CreateAction`` (who, when, status) whose instrument is
the cell's code, whose objects are the files it read and its parameters, whose
results are the files it wrote and its metrics; the notebook snapshot and the
environment as files of their own.  With data, the files' bytes are in the crate
too.  Under ``dotnb/`` it also holds each run's manifest and the objects a manifest
refers to (code, lineage, trees, snapshot, environment), so that
:func:`import_crate` can record the runs in another store exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from rocrate.rocrate import ROCrate

from dotnb.provenance.subject import Subject
from dotnb.store.errors import DotnbError
from dotnb.store.hashing import hash_bytes
from dotnb.store.manifest import canonical_json
from dotnb.store.paths import check_relpath
from dotnb.store.referenced import manifest_objects
from dotnb.store.repo import Store

PROCESS_RUN_PROFILE = "https://w3id.org/ro/wfrun/process/0.5"
MANIFESTS = "dotnb/runs"
OBJECTS = "dotnb/objects"
DATA = "data"


class CrateInvalid(DotnbError):
    """A crate dotnb did not make, or one damaged since."""


def _data_path(digest: str, path: str) -> str:
    return f"{DATA}/{digest[:12]}/{path}"


def write_crate(store: Store, subject: Subject, out: Path, with_data: bool = False) -> Path:
    """Write the crate of ``subject`` to folder ``out`` (or a zip when ``out`` ends in .zip)."""
    with tempfile.TemporaryDirectory(prefix="dotnb-crate-") as staging_dir:
        staging = Path(staging_dir)
        crate = ROCrate()
        crate.root_dataset["name"] = f"Provenance of {subject.title}"
        crate.root_dataset["conformsTo"] = [{"@id": PROCESS_RUN_PROFILE}]
        crate.add_jsonld({"@id": PROCESS_RUN_PROFILE, "@type": "CreativeWork", "name": "Process Run Crate"})
        people: set[str] = set()
        files: dict[str, str] = {}  # content key -> crate @id
        data_files = {n["hash"]: n for n in subject.graph.nodes.values() if n["type"] == "content"}

        def stage(rel: str, data: bytes, properties: dict[str, Any]) -> str:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            crate.add_file(str(target), dest_path=rel, properties=properties)
            return rel

        def file_ref(digest: str, path: str) -> dict[str, str]:
            key = f"{digest}:{path}"
            if key not in files:
                properties = {"name": path, "identifier": f"blake3:{digest}"}
                if with_data and store.objects.has(digest):
                    files[key] = stage(
                        _data_path(digest, path),
                        store.objects.read_bytes(digest),
                        {**properties, "@type": "File"},
                    )
                else:
                    files[key] = f"#file-{hash_bytes(key.encode())[:24]}"
                    crate.add_jsonld({"@id": files[key], "@type": "File", **properties})
            return {"@id": files[key]}

        for run_id in sorted(subject.manifests):
            manifest = subject.manifests[run_id]
            expanded = store.expanded(manifest)
            node = subject.graph.nodes[f"run:{run_id}"]
            base = f"runs/{run_id}"
            code = stage(
                f"{base}/code.py",
                (manifest.get("code") or "").encode(),
                {
                    "@type": ["File", "SoftwareSourceCode"],
                    "name": f"code of run {run_id}",
                    "programmingLanguage": "Python",
                },
            )
            objects: list[dict[str, str]] = []
            snap = manifest.get("notebook_snapshot")
            if isinstance(snap, dict) and snap.get("hash") and store.objects.has(snap["hash"]):
                name = os.path.basename(manifest.get("notebook") or "notebook.ipynb")
                objects.append(
                    {
                        "@id": stage(
                            f"{base}/{name}",
                            store.objects.read_bytes(snap["hash"]),
                            {"name": "notebook snapshot"},
                        )
                    }
                )
            env = dict(manifest.get("environment") or {})
            if env.get("distributions") and store.objects.has(env["distributions"]):
                env["distributions"] = json.loads(store.objects.read_bytes(env["distributions"]))
            objects.append(
                {
                    "@id": stage(
                        f"{base}/environment.json",
                        json.dumps(env, indent=1, sort_keys=True).encode(),
                        {"name": "environment", "encodingFormat": "application/json"},
                    )
                }
            )
            for i, (name, value) in enumerate(sorted((manifest.get("params") or {}).items())):
                pid = f"#param-{run_id}-{i}"
                crate.add_jsonld(
                    {"@id": pid, "@type": "PropertyValue", "name": name, "value": json.dumps(value)}
                )
                objects.append({"@id": pid})
            objects += [file_ref(e["hash"], e["path"]) for e in expanded.get("inputs") or [] if e.get("hash")]
            results = [file_ref(e["hash"], e["path"]) for e in expanded.get("outputs") or [] if e.get("hash")]
            for i, (name, value) in enumerate(sorted((manifest.get("metrics") or {}).items())):
                mid = f"#metric-{run_id}-{i}"
                crate.add_jsonld(
                    {"@id": mid, "@type": "PropertyValue", "name": name, "value": json.dumps(value)}
                )
                results.append({"@id": mid})
            action: dict[str, Any] = {
                "@id": f"#run-{run_id}",
                "@type": "CreateAction",
                "name": f"{node.get('notebook') or ''} #{node.get('number')} ({run_id})",
                "startTime": manifest.get("started_at"),
                "instrument": {"@id": code},
                "object": objects,
                "result": results,
                "actionStatus": {
                    "@id": "http://schema.org/CompletedActionStatus"
                    if manifest.get("status") == "ok"
                    else "http://schema.org/FailedActionStatus"
                },
            }
            author = node.get("author")
            if author:
                pid = f"#person-{hash_bytes(author.encode())[:24]}"
                if pid not in people:
                    people.add(pid)
                    crate.add_jsonld({"@id": pid, "@type": "Person", "name": author})
                action["agent"] = {"@id": pid}
            crate.add_jsonld(action)
            # What dotnb needs to record the run again elsewhere: the manifest and its objects.
            stage(
                f"{MANIFESTS}/{run_id}.json",
                canonical_json(manifest),
                {"name": f"dotnb manifest of {run_id}"},
            )
            for digest in sorted(manifest_objects(manifest, store.objects.read_bytes)):
                if digest in data_files or not store.objects.has(digest):
                    continue  # data travel only with --with-data, under data/
                if not (staging / OBJECTS / digest).exists():
                    stage(f"{OBJECTS}/{digest}", store.objects.read_bytes(digest), {"name": "dotnb object"})
        if str(out).endswith(".zip"):
            crate.write_zip(str(out))
        else:
            crate.write(str(out))
    return out


def _crate_folder(crate_path: Path, scratch: Path) -> Path:
    if zipfile.is_zipfile(crate_path):
        with zipfile.ZipFile(crate_path) as zf:
            for name in zf.namelist():
                check_relpath(name.rstrip("/"))  # no member may leave the folder
            zf.extractall(scratch)
        return scratch
    return crate_path


def import_crate(store: Store, crate_path: Path) -> list[str]:
    """Record the runs of a crate made by ``dotnb export --format ro-crate`` in ``store``;
    returns their ids (runs already here are left alone).  Every file of the crate is
    stored as an object (named by its own hash), so a manifest whose objects are all
    in the crate can be restored from byte for byte."""
    with tempfile.TemporaryDirectory(prefix="dotnb-crate-") as scratch_dir:
        folder = _crate_folder(crate_path, Path(scratch_dir))
        if not (folder / "ro-crate-metadata.json").is_file():
            raise CrateInvalid(f"{crate_path}: no ro-crate-metadata.json")
        ROCrate(str(folder))  # refuses a malformed crate
        manifests_dir = folder / MANIFESTS
        if not manifests_dir.is_dir():
            raise CrateInvalid(f"{crate_path}: not made by dotnb export (no {MANIFESTS}/)")
        for sub in (OBJECTS, DATA, "runs"):
            for dirpath, _, names in os.walk(folder / sub):
                for name in names:
                    full = Path(dirpath) / name
                    if full.is_symlink():
                        raise CrateInvalid(
                            f"{crate_path}: a symlink in the crate ({full.relative_to(folder)})"
                        )
                    store.objects.put_bytes(full.read_bytes())
        manifests = []
        for path in sorted(manifests_dir.glob("*.json")):
            manifest = json.loads(path.read_bytes())
            if not isinstance(manifest, dict) or not isinstance(manifest.get("id"), str):
                raise CrateInvalid(f"{crate_path}: {path.name} is not a run manifest")
            manifests.append(manifest)
        known = store.index.all_run_ids()
        added = []
        for manifest in sorted(manifests, key=lambda m: (str(m.get("started_at")), m["id"])):
            if manifest["id"] in known:
                continue
            store.commit_run(manifest)
            added.append(manifest["id"])
        return added


def remove_output(out: Path) -> None:
    """Make room for a crate at ``out`` (a folder written before by export)."""
    if out.is_dir() and (out / "ro-crate-metadata.json").exists():
        shutil.rmtree(out)
