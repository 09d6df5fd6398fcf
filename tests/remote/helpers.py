"""Helpers for the remote end-to-end tests: the CLI as a subprocess, store and bucket inspection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dotnb.store.hashing import is_hash
from dotnb.store.referenced import manifest_objects
from dotnb.store.repo import Store

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "analysis.ipynb"
PREP_CELL = """%%track --name prep --metrics rows
import csv, os
with open("data/input.csv", newline="") as f:
    table = list(csv.reader(f))
with open("data/blob.bin", "rb") as f:
    blob = f.read()
rows = len(table) - 1
os.makedirs("out", exist_ok=True)
with open("out/result.csv", "w", newline="") as f:
    f.write("x,double,blob\\n")
    for (x,) in table[1:]:
        f.write(f"{x},{2 * int(x)},{blob[int(x)]}\\n")
"""
SCALE_CELL = """%%track --name scale
factor = 3
with open("out/result.csv") as f:
    lines = f.read().splitlines()
with open("out/scaled.csv", "w") as f:
    f.write("\\n".join(lines[:1] + [f"{line},{factor}" for line in lines[1:]]) + "\\n")
"""
INPUT_CSV = b"x\n" + b"".join(b"%d\n" % i for i in range(1, 41))
BLOB = bytes(range(256)) * 64 + b"\x00\xff\r\n"
# Distinctive, so that a grep for them cannot match anything by accident.
KEY = "DOTNBTESTKEY7Q2W9E"
SECRET = "dotnb-e2e-secret-5f8c1a7d93b24e60"


def base_env(user: str, tmp: Path) -> dict[str, str]:
    """The environment of a CLI process: no dotnb/Jupyter/AWS settings from the caller,
    no AWS config files, ``user`` as the login name (what ``getpass.getuser`` reads)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOTNB_", "JPY_", "AWS_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["USER"] = env["LOGNAME"] = user
    # Never read the machine's ~/.aws: the tests say exactly which credentials are used.
    env["AWS_CONFIG_FILE"] = str(tmp / "no-aws-config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp / "no-aws-credentials")
    return env


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"dotnb {' '.join(self.args)} → exit {self.returncode}\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


def command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "dotnb", *map(str, args)]


def dotnb(*args: str | Path, cwd: Path, env: dict[str, str], timeout: float = 120) -> Result:
    """Run the CLI as a subprocess in ``cwd`` with exactly ``env``."""
    proc = subprocess.run(
        command(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Result([str(a) for a in args], proc.returncode, proc.stdout, proc.stderr)


def ok(result: Result) -> Result:
    assert result.returncode == 0, str(result)
    assert "Traceback" not in result.stderr, str(result)
    return result


def fails(result: Result, code: int = 1) -> Result:
    assert result.returncode == code, str(result)
    assert "Traceback" not in result.stderr, str(result)
    return result


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def new_project(root: Path) -> Path:
    """An empty project: a notebook and an initialised store."""
    from tests.conftest import make_notebook

    make_notebook(root / NOTEBOOK, ["%load_ext dotnb", "print('my own work')"])
    Store.init(root).close()
    return root


# ---------------------------------------------------------------------------
# the local store


def local_objects(root: Path) -> set[str]:
    """Names of the objects in a project's store: ``.dotnb/objects`` and its packs."""
    return stored_objects(root / ".dotnb")


def stored_objects(base: Path) -> set[str]:
    """Names of the objects under a store's or a ``file://`` remote's folder ``base``:
    files of their own in ``objects/``, and those listed by the indexes in ``packs/``
    (read as the format says: an 8-byte header, then 48-byte records)."""
    found = set()
    if (base / "objects").is_dir():
        for sub in (base / "objects").iterdir():
            if sub.is_dir() and len(sub.name) == 2:
                found.update(sub.name + f.name for f in sub.iterdir() if is_hash(sub.name + f.name))
    for index in sorted((base / "packs").glob("*.idx")) if (base / "packs").is_dir() else []:
        data = index.read_bytes()
        found.update(data[i : i + 32].hex() for i in range(8, len(data) - 47, 48))
    return found


def corrupt_local_objects(root: Path) -> list[str]:
    """Local objects whose bytes do not hash to their name (should always be empty)."""
    store = Store(root)
    try:
        return [d for d in local_objects(root) if not store.objects.verify(d)]
    finally:
        store.close()


def manifests(root: Path) -> dict[str, dict[str, Any]]:
    """Every run's manifest in a project's store, by id."""
    store = Store(root)
    try:
        return {row["id"]: store.manifest(row["id"]) for row in store.list_runs()}
    finally:
        store.close()


def data_objects(manifest: dict[str, Any]) -> set[str]:
    """Hashes of a run's input and output files."""
    return {e["hash"] for key in ("inputs", "outputs") for e in manifest[key] if e.get("hash")}


def all_objects(root: Path, manifest: dict[str, Any]) -> set[str]:
    """Every object a run of the store at ``root`` uses, under its folders' trees too."""
    objects = root / ".dotnb" / "objects"
    return manifest_objects(manifest, lambda digest: (objects / digest[:2] / digest[2:]).read_bytes())


def workspace(root: Path) -> dict[str, bytes]:
    """Every file of a project outside ``.dotnb/``, path → bytes (symlinks not followed)."""
    files: dict[str, bytes] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir.parts[:1] == (".dotnb",):
            dirnames[:] = []
            continue
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                files[str(rel_dir / name)] = path.read_bytes()
    return files


def tree(base: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``base`` (except ``skip``): path → (size, mtime_ns)."""
    found: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if Path(dirpath) / d != skip]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            found[str(path.relative_to(base))] = (st.st_size, st.st_mtime_ns)
    return found


def assert_no_credentials(*roots: Path, secrets: tuple[str, ...] = ()) -> None:
    """Neither the access key, the secret nor ``secrets`` is in any file under ``ROOT/.dotnb/``."""
    for root in roots:
        store_dir = root / ".dotnb"
        assert store_dir.is_dir(), store_dir
        for dirpath, _, filenames in os.walk(store_dir):
            for name in filenames:
                path = Path(dirpath) / name
                if path.is_symlink():
                    continue
                data = path.read_bytes()
                assert SECRET.encode() not in data, f"the secret key is written in {path}"
                assert KEY.encode() not in data, f"the access key id is written in {path}"
                for secret in secrets:
                    assert secret.encode() not in data, f"{secret!r} is written in {path}"


# ---------------------------------------------------------------------------
# runs built through the store API (fast; for tests that need many or large files)


def record_files_run(root: Path, files: dict[str, bytes], *, name: str, user: str) -> str:
    """Write ``files`` under ``root`` and commit a run that outputs them; returns its id."""
    from tests.manifests import new_manifest

    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    store = Store.init(root)
    try:
        code = f"# {name}\nwrite_files()\n"
        code_hash, _ = store.objects.put_bytes(code.encode())
        manifest = new_manifest(
            notebook=None,
            name=name,
            code=code,
            lineage=[{"execution_count": 1, "code_hash": code_hash, "tracked": True}],
            outputs=sorted(store.snapshot_files(sorted(files)), key=lambda e: e["path"]),
            environment={"user": user, "host": f"{user}-box"},
        )
        return str(store.commit_run(manifest)["id"])
    finally:
        store.close()


# ---------------------------------------------------------------------------
# the bucket


def remote_keys(client: Any, bucket: str, prefix: str = "team/") -> list[str]:
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def remote_object_names(client: Any, bucket: str, prefix: str = "team/") -> set[str]:
    """Object hashes under ``<prefix>objects/``."""
    base = prefix + "objects/"
    return {k[len(base) :].replace("/", "") for k in remote_keys(client, bucket, base)}
