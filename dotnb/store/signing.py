"""Runs signed with the user's SSH key, as git signs commits with ``gpg.format=ssh``.

With ``signing.key`` set (:mod:`dotnb.store.settings`), each run a process records
has its manifest hash signed with ``ssh-keygen -Y sign -n dotnb`` after the run is
recorded: a kernel does it in its flush thread, off the cell's path.  The
signature is kept beside the run, never in it, so the manifest hash does not
change::

    signatures/<run id>     the signed manifest hash (hex) on the first line, then
                            the armored SSH signature of those 64 ASCII characters

A signature is checked in-process (Ed25519 directly, :mod:`dotnb.store.ssh_signature`;
other key types through the ``sshsig`` package) against the allowed-signers file
``signing.allowed_signers`` (ssh-keygen's format; a line's ``namespaces=`` option,
when present, must allow ``dotnb``), and its hash must be the run's manifest or a
manifest that one amends (:mod:`dotnb.store.chain`: a notebook snapshot attached
later replaces the manifest the kernel signed).

A run's signature status is one of :data:`STATUSES`: ``good`` (valid, by a key in
the allowed-signers file: ``signer`` is its principals), ``unknown_key`` (valid,
by a key that file does not hold, or no file is set: ``signer`` is the key's
SHA256 fingerprint), ``bad`` (does not verify, is damaged, or signs another
manifest) or ``unsigned``.  A pulled run keeps its signature as it came, so a
bad one stays bad wherever it is read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from dotnb.store.atomic import write_bytes
from dotnb.store.errors import DotnbError
from dotnb.store.hashing import is_hash
from dotnb.store.layout import SIGNATURES_DIR, TMP_DIR
from dotnb.store.settings import ALLOWED_SIGNERS, SIGNING_KEY, SettingError, expand, read_settings
from dotnb.store.ssh_signature import (
    ED25519,
    Ed25519Verifier,
    InvalidSshSignature,
    check_envelope,
    dearmor,
    fingerprint,
    public_key_blob,
)
from dotnb.store.syncing import sync_paths

NAMESPACE = "dotnb"

GOOD = "good"
BAD = "bad"
UNSIGNED = "unsigned"
UNKNOWN_KEY = "unknown_key"
STATUSES = (GOOD, BAD, UNSIGNED, UNKNOWN_KEY)

# ssh-keygen signs a batch of runs in one process; this long at most.
SIGN_TIMEOUT_S = 30.0


class SigningError(DotnbError):
    """The configured key could not sign (no ssh-keygen, unreadable or encrypted key)."""


def signature_bytes(digest: str, armored: str) -> bytes:
    """What ``signatures/<run id>`` holds for a signature of manifest ``digest``."""
    return f"{digest}\n{armored.strip()}\n".encode("ascii")


def parse_signature(data: bytes) -> tuple[str, str] | None:
    """(signed manifest hash, armored signature) of a signature file; None when damaged."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    digest, _, armored = text.partition("\n")
    if not is_hash(digest) or "BEGIN SSH SIGNATURE" not in armored:
        return None
    return digest, armored


def signature_path(store_dir: Path, run_id: str) -> Path:
    return store_dir / SIGNATURES_DIR / run_id


def read_signature(store_dir: Path, run_id: str) -> bytes | None:
    try:
        return signature_path(store_dir, run_id).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None


def write_signature(store_dir: Path, run_id: str, data: bytes, sync: bool = True) -> None:
    (store_dir / SIGNATURES_DIR).mkdir(exist_ok=True)
    write_bytes(signature_path(store_dir, run_id), data, sync=sync, tmp_dir=store_dir / TMP_DIR)


# ---------------------------------------------------------------------------
# signing


def signing_key(store_dir: Path) -> str | None:
    """The configured key's path (``~`` expanded), or None when runs are not signed."""
    key = read_settings(store_dir).get(SIGNING_KEY)
    return expand(key) if key else None


def sign_hashes(key: str, digests: list[str], tmp_dir: Path) -> list[str]:
    """Armored signatures of ``digests`` (one ``ssh-keygen -Y sign`` for them all)."""
    exe = shutil.which("ssh-keygen")
    if exe is None:
        raise SigningError("cannot sign runs: ssh-keygen is not installed")
    if not os.path.isfile(key):
        raise SettingError(f"{SIGNING_KEY}: no such file: {key}")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(_make_temp_dir(tmp_dir))
    try:
        files = []
        for n, digest in enumerate(digests):
            path = folder / f"{n}.hash"
            path.write_bytes(digest.encode("ascii"))
            files.append(str(path))
        proc = subprocess.run(
            [exe, "-q", "-Y", "sign", "-f", key, "-n", NAMESPACE, *files],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=SIGN_TIMEOUT_S,
        )
        if proc.returncode != 0:
            reason = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise SigningError(
                f"ssh-keygen could not sign with {key}: {reason[-1] if reason else proc.returncode}"
            )
        return [Path(f + ".sig").read_text("ascii") for f in files]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _make_temp_dir(tmp_dir: Path) -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="sign-", dir=tmp_dir)


def sign_runs(store_dir: Path, key: str, runs: list[tuple[str, str]]) -> None:
    """Sign each (run id, manifest hash) with ``key`` and keep the signatures."""
    if not runs:
        return
    armored = sign_hashes(key, [digest for _, digest in runs], store_dir / TMP_DIR)
    # Written together, then made durable together (one syncfs for many, as runs' refs are).
    paths = []
    for (run_id, digest), text in zip(runs, armored, strict=True):
        write_signature(store_dir, run_id, signature_bytes(digest, text), sync=False)
        paths.append(str(signature_path(store_dir, run_id)))
    sync_paths(store_dir, [*paths, str(store_dir / SIGNATURES_DIR)])


# ---------------------------------------------------------------------------
# checking


class SignatureChecker:
    """Checks signatures against one allowed-signers file (read once).

    Kept across checks: the allowed keys and the Ed25519 verifier (with the key
    objects it builds), never a signature's result: each is checked in full every
    time, and nothing is kept in the store (which whoever could forge a signature
    there could edit too)."""

    def __init__(self, allowed_signers: str | None) -> None:
        self.allowed_signers = allowed_signers
        self._keys: dict[bytes, str] | None = None  # SSH-encoded public key -> principals
        self._ed25519: Ed25519Verifier | None = None

    @classmethod
    def for_store(cls, store_dir: Path) -> SignatureChecker:
        path = read_settings(store_dir).get(ALLOWED_SIGNERS)
        return cls(expand(path) if path else None)

    def keys(self) -> dict[bytes, str]:
        if self._keys is None:
            self._keys = self._load()
        return self._keys

    def _load(self) -> dict[bytes, str]:
        if self.allowed_signers is None:
            return {}
        _require_sshsig()
        from sshsig import PublicKey
        from sshsig.allowed_signers import load_allowed_signers_file

        try:
            signers = load_allowed_signers_file(Path(self.allowed_signers))
        except OSError as exc:
            raise SettingError(
                f"{ALLOWED_SIGNERS}: cannot read {self.allowed_signers}: {exc.strerror or exc}"
            ) from None
        except (ValueError, NotImplementedError) as exc:
            raise SettingError(
                f"{ALLOWED_SIGNERS}: {self.allowed_signers} is not an allowed-signers file: {exc}"
            ) from None
        keys: dict[bytes, str] = {}
        for signer in signers:
            namespaces = (signer.options or {}).get("namespaces")
            if namespaces is not None and NAMESPACE not in namespaces.strip('"').split(","):
                continue
            try:
                key = PublicKey.from_openssh_str(f"{signer.key_type} {signer.base64_key}")
                # Re-encoded by cryptography: one encoding per key, the one a signature carries.
                keys[public_key_blob(key.openssh_str())] = signer.principals
            except (ValueError, NotImplementedError):
                continue
        return keys

    def check(self, data: bytes | None, is_version: Callable[[str], bool]) -> dict[str, Any]:
        """The status of a run's signature file ``data`` (None: there is none);
        ``is_version(h)`` says whether ``h`` is the run's manifest or one it amends."""
        if data is None:
            return {"status": UNSIGNED}
        parsed = parse_signature(data)
        if parsed is None:
            return {"status": BAD, "reason": "the signature file is damaged"}
        digest, armored = parsed
        try:
            key = self._verify(digest.encode("ascii"), armored)
        except InvalidSshSignature as exc:
            return {"status": BAD, "reason": f"the signature does not verify ({exc})"}
        if not is_version(digest):
            return {"status": BAD, "reason": f"it signs manifest {digest[:12]}, not this run's"}
        principals = self.keys().get(key)
        if principals is None:
            return {"status": UNKNOWN_KEY, "signer": fingerprint(key)}
        return {"status": GOOD, "signer": principals}

    def _verify(self, message: bytes, armored: str) -> bytes:
        """The signing key (SSH-encoded) of a valid signature of ``message`` in namespace
        dotnb; raises :class:`InvalidSshSignature` for any other."""
        _require_sshsig()  # as before: checking needs the signing extra, whatever the key
        sig = dearmor(armored)
        if sig.key_type == ED25519:
            if self._ed25519 is None:
                self._ed25519 = Ed25519Verifier(NAMESPACE)
            return self._ed25519.verify(sig, message)
        check_envelope(sig, NAMESPACE)
        from sshsig import InvalidSignature, check_signature

        try:
            key = check_signature(message, armored, namespace=NAMESPACE)
            return public_key_blob(key.openssh_str())
        except (InvalidSignature, NotImplementedError, ValueError) as exc:
            raise InvalidSshSignature(str(exc) or type(exc).__name__) from None


def _require_sshsig() -> None:
    try:
        import sshsig  # noqa: F401
    except ImportError:
        raise DotnbError(
            "checking signatures needs the sshsig package: pip install 'dotnb[signing]'"
        ) from None


def count_statuses(statuses: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for status in statuses:
        counts[status] += 1
    return counts


def remove_signature(store_dir: Path, run_id: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        signature_path(store_dir, run_id).unlink()
