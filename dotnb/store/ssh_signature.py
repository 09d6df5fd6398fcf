"""SSH signatures (``ssh-keygen -Y sign``) read and, for Ed25519 keys, checked in-process,
as OpenSSH's ``PROTOCOL.sshsig`` defines them.

An armored signature is the base64 of::

    "SSHSIG" uint32 version(1) string publickey string namespace string reserved
    string hash_algorithm string signature

and ``signature`` is the key's signature over::

    "SSHSIG" string namespace string reserved("") string hash_algorithm string H(message)

Checking one here costs the Ed25519 verification and little else (see
:func:`ed25519_backend` for who verifies).  Other key types go through ``sshsig``
(:mod:`dotnb.store.signing`), after the same checks of the envelope.

Checked as ``ssh-keygen -Y verify`` checks (``sshsig.c``): the magic and version,
no trailing data, the namespace, a hash algorithm it accepts (sha256, sha512),
a signature of the key's own type.  Anything that does not parse is an
:class:`InvalidSshSignature`, never a valid signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAGIC = b"SSHSIG"
VERSION = 1
ED25519 = b"ssh-ed25519"
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"

# The hash algorithms ssh-keygen accepts in a signature (sshsig.c, hashalg_allowed).
HASHES: dict[bytes, Callable[[bytes], Any]] = {
    b"sha256": hashlib.sha256,
    b"sha512": hashlib.sha512,
}

# Ed25519 key objects kept by a checker, at most: a store holds a handful of keys,
# so this bounds only the memory a store full of made-up keys could take.
ED25519_KEYS_KEPT = 1024


class InvalidSshSignature(ValueError):
    """The signature is damaged, malformed, for another namespace, or does not verify."""


@dataclass(frozen=True)
class SshSignature:
    """The fields of an armored signature (``PROTOCOL.sshsig``)."""

    public_key: bytes  # the signing key as SSH encodes it (string type, then the key)
    namespace: bytes
    hash_algorithm: bytes
    signature: bytes  # string signature type, then the signature itself

    @property
    def key_type(self) -> bytes:
        return _strings(self.public_key, 1, exact=False)[0]


def dearmor(armored: str) -> SshSignature:
    """The fields of an armored signature (raises :class:`InvalidSshSignature`)."""
    text = armored.strip()
    if not text.startswith(ARMOR_BEGIN) or not text.endswith(ARMOR_END):
        raise InvalidSshSignature("not an armored SSH signature")
    try:
        blob = base64.b64decode("".join(text[len(ARMOR_BEGIN) : -len(ARMOR_END)].split()), validate=True)
    except binascii.Error as exc:
        raise InvalidSshSignature(f"its base64 is damaged ({exc})") from None
    if blob[:6] != MAGIC or len(blob) < 10:
        raise InvalidSshSignature("no SSHSIG preamble")
    version = int.from_bytes(blob[6:10], "big")
    if version != VERSION:
        raise InvalidSshSignature(f"signature format version {version}")
    public_key, namespace, _reserved, hash_algorithm, signature = _strings(blob[10:], 5)
    return SshSignature(public_key, namespace, hash_algorithm, signature)


def check_envelope(sig: SshSignature, namespace: str) -> None:
    """The checks that do not depend on the key type: the namespace and the hash."""
    if sig.namespace != namespace.encode("ascii"):
        raise InvalidSshSignature(
            f"made for namespace {sig.namespace.decode('ascii', 'replace')!r}, not {namespace!r}"
        )
    if sig.hash_algorithm not in HASHES:
        raise InvalidSshSignature(f"hash algorithm {sig.hash_algorithm!r} is not allowed")


def fingerprint(public_key: bytes) -> str:
    """``SHA256:…`` as ``ssh-keygen -l`` prints it, of a key as SSH encodes it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(public_key).digest()).decode("ascii").rstrip("=")


def public_key_blob(openssh: str) -> bytes:
    """The SSH encoding of a public key written ``type base64 [comment]``."""
    parts = openssh.split()
    if len(parts) < 2:
        raise ValueError("not an OpenSSH public key")
    return base64.b64decode(parts[1], validate=True)


# An Ed25519 key and signature as SSH encodes them: a fixed prefix, then 32 or 64 bytes.
ED25519_KEY_PREFIX = b"\0\0\0\x0bssh-ed25519\0\0\0\x20"
ED25519_SIG_PREFIX = b"\0\0\0\x0bssh-ed25519\0\0\0\x40"


# Who checks an Ed25519 signature: libsodium (through PyNaCl, the ``signing`` extra)
# when it is installed, else OpenSSL (through ``cryptography``).  Both check the
# signature in full; libsodium takes about half OpenSSL's time here (60 µs against
# 115 µs of CPU a signature) and is, if anything, stricter (it also refuses
# small-order keys and a non-canonical R).
LIBSODIUM = "libsodium"
OPENSSL = "openssl"


def ed25519_backend() -> str:
    try:
        import nacl.bindings  # noqa: F401
    except ImportError:
        return OPENSSL
    return LIBSODIUM


class Ed25519Verifier:
    """Checks Ed25519 signatures in one namespace.

    Kept between calls: the signed data's constant prefix and, with OpenSSL, the key
    objects built (a public key's 32 bytes parsed once); never whether a signature
    verified: every signature is checked in full on every call."""

    def __init__(self, namespace: str, backend: str | None = None) -> None:
        self.namespace = namespace
        self.backend = backend or ed25519_backend()
        self._check = self._libsodium() if self.backend == LIBSODIUM else self._openssl()
        # What the signed data starts with, per hash algorithm: only H(message) follows.
        self._prefixes = {
            name: MAGIC + _string(namespace.encode("ascii")) + _string(b"") + _string(name) for name in HASHES
        }

    def verify(self, sig: SshSignature, message: bytes) -> bytes:
        """The signing key (SSH-encoded) of a valid signature of ``message``; raises
        :class:`InvalidSshSignature` otherwise."""
        check_envelope(sig, self.namespace)
        public_key, signature = sig.public_key, sig.signature
        # Compared whole: nothing may precede, follow or replace the two fixed layouts.
        if len(public_key) != 51 or not public_key.startswith(ED25519_KEY_PREFIX):
            raise InvalidSshSignature("not an Ed25519 key as SSH encodes one")
        if len(signature) != 83 or not signature.startswith(ED25519_SIG_PREFIX):
            raise InvalidSshSignature("not an Ed25519 signature as SSH encodes one")
        hashed = HASHES[sig.hash_algorithm](message).digest()
        data = self._prefixes[sig.hash_algorithm] + _string(hashed)
        if not self._check(public_key[19:], signature[19:], data):
            raise InvalidSshSignature("the Ed25519 signature does not match")
        return public_key

    @staticmethod
    def _libsodium() -> Callable[[bytes, bytes, bytes], bool]:
        from nacl.bindings import crypto_sign_open
        from nacl.exceptions import CryptoError

        def check(raw_key: bytes, raw_sig: bytes, data: bytes) -> bool:
            try:
                crypto_sign_open(raw_sig + data, raw_key)
            except (CryptoError, ValueError):  # nacl's ValueError is a CryptoError too
                return False
            return True

        return check

    @staticmethod
    def _openssl() -> Callable[[bytes, bytes, bytes], bool]:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        keys: dict[bytes, Ed25519PublicKey] = {}

        def check(raw_key: bytes, raw_sig: bytes, data: bytes) -> bool:
            key = keys.get(raw_key)
            if key is None:
                try:
                    key = Ed25519PublicKey.from_public_bytes(raw_key)
                except ValueError:
                    return False
                if len(keys) >= ED25519_KEYS_KEPT:
                    keys.clear()
                keys[raw_key] = key
            try:
                key.verify(raw_sig, data)
            except InvalidSignature:
                return False
            return True

        return check


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _strings(data: bytes, count: int, exact: bool = True) -> list[bytes]:
    """``count`` SSH strings (uint32 length, bytes) from the start of ``data``; with
    ``exact``, nothing may follow them."""
    found = []
    at = 0
    for _ in range(count):
        end = at + 4
        if end > len(data):
            raise InvalidSshSignature("truncated")
        size = int.from_bytes(data[at:end], "big")
        at = end + size
        if at > len(data):
            raise InvalidSshSignature("truncated")
        found.append(data[end:at])
    if exact and at != len(data):
        raise InvalidSshSignature("trailing data")
    return found
