"""Signatures made by a real ssh-keygen, checked in-process (dotnb.store.ssh_signature
for Ed25519, by libsodium and by OpenSSL; the sshsig package for RSA): good ones good,
every damaged, misdirected or malformed one bad, an unlisted key unknown."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from dotnb.store import ssh_signature
from dotnb.store.hashing import hash_bytes
from dotnb.store.signing import SignatureChecker, sign_hashes, signature_bytes
from dotnb.store.ssh_signature import (
    ARMOR_BEGIN,
    ARMOR_END,
    LIBSODIUM,
    OPENSSL,
    Ed25519Verifier,
    InvalidSshSignature,
    dearmor,
    fingerprint,
)
from tests.ssh_keys import SshKey, allowed_signers, make_key

DIGEST = hash_bytes(b"a run's manifest")
OTHER_DIGEST = hash_bytes(b"another run's manifest")


@pytest.fixture(autouse=True, params=[LIBSODIUM, OPENSSL])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test once with each Ed25519 verifier."""
    backend: str = request.param
    monkeypatch.setattr(ssh_signature, "ed25519_backend", lambda: backend)
    return backend


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[SshKey, SshKey]:
    folder = tmp_path_factory.mktemp("keys")
    return make_key(folder, "alice@example.com"), make_key(folder, "bob@example.com")


@pytest.fixture
def checker(keys: tuple[SshKey, SshKey], tmp_path: Path) -> SignatureChecker:
    return SignatureChecker(str(allowed_signers(tmp_path / "allowed", keys[0])))


def sign(key: SshKey, tmp_path: Path, digest: str = DIGEST, namespace: str = "dotnb") -> str:
    if namespace == "dotnb":
        return sign_hashes(str(key.path), [digest], tmp_path / "tmp")[0]
    message = tmp_path / "message"
    message.write_text(digest)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key.path), "-n", namespace, str(message)], check=True
    )
    return (tmp_path / "message.sig").read_text()


def check(checker: SignatureChecker, armored: str, digest: str = DIGEST) -> dict[str, object]:
    return checker.check(signature_bytes(digest, armored), {digest}.__contains__)


def ssh_keygen_fingerprint(key: SshKey) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key.path)], capture_output=True, text=True, check=True
    )
    return out.stdout.split()[1]


def blob(armored: str) -> bytearray:
    lines = armored.strip().splitlines()
    return bytearray(base64.b64decode("".join(lines[1:-1])))


def armor(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join([ARMOR_BEGIN, *(text[i : i + 70] for i in range(0, len(text), 70)), ARMOR_END]) + "\n"


def ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def test_an_ed25519_signature_by_ssh_keygen_is_good_without_sshsig_checking_it(
    checker: SignatureChecker, keys: tuple[SshKey, SshKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    armored = sign(keys[0], tmp_path)
    # The Ed25519 path is cryptography's alone: sshsig is used only to read allowed_signers.
    import sshsig

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("sshsig.check_signature was called for an Ed25519 signature")

    monkeypatch.setattr(sshsig, "check_signature", refuse)
    assert check(checker, armored) == {"status": "good", "signer": "alice@example.com"}
    # Again with the key object built: the same answer.
    assert check(checker, armored) == {"status": "good", "signer": "alice@example.com"}


def test_a_flipped_byte_in_the_signature_or_the_message_is_bad(
    checker: SignatureChecker, keys: tuple[SshKey, SshKey], tmp_path: Path
) -> None:
    armored = sign(keys[0], tmp_path)
    data = blob(armored)
    for at in (len(data) - 1, len(data) - 40):  # in the Ed25519 signature's two halves
        damaged = bytearray(data)
        damaged[at] ^= 1
        found = check(checker, armor(bytes(damaged)))
        assert found["status"] == "bad" and "does not verify" in str(found["reason"])
    # The same signature presented for another manifest hash (a byte of the message changed).
    flipped = DIGEST[:-1] + ("0" if DIGEST[-1] != "0" else "1")
    assert check(checker, armored, flipped)["status"] == "bad"
    # A valid signature of another manifest, beside this run.
    found = checker.check(
        signature_bytes(DIGEST, sign(keys[0], tmp_path, OTHER_DIGEST)), {DIGEST}.__contains__
    )
    assert found["status"] == "bad"


def test_a_signature_for_another_namespace_is_bad(
    checker: SignatureChecker, keys: tuple[SshKey, SshKey], tmp_path: Path
) -> None:
    found = check(checker, sign(keys[0], tmp_path, namespace="git"))
    assert found["status"] == "bad" and "namespace" in str(found["reason"])
    # Relabelled dotnb without re-signing: the signature no longer matches.
    data = bytes(blob(sign(keys[0], tmp_path, namespace="git")))
    relabelled = data.replace(ssh_string(b"git"), ssh_string(b"dotnb"), 1)
    assert check(checker, armor(relabelled))["status"] == "bad"


def test_a_key_not_allowed_for_dotnb_is_unknown_with_its_fingerprint(
    keys: tuple[SshKey, SshKey], tmp_path: Path
) -> None:
    alice, bob = keys
    only_bob = SignatureChecker(str(allowed_signers(tmp_path / "allowed-bob", bob)))
    found = check(only_bob, sign(alice, tmp_path))
    assert found == {"status": "unknown_key", "signer": ssh_keygen_fingerprint(alice)}
    # Alice listed, but only for git signatures.
    git_only = tmp_path / "allowed-git"
    git_only.write_text(f'{alice.principal} namespaces="git" {alice.public}\n')
    found = check(SignatureChecker(str(git_only)), sign(alice, tmp_path))
    assert found == {"status": "unknown_key", "signer": ssh_keygen_fingerprint(alice)}
    # No allowed-signers file at all.
    assert check(SignatureChecker(None), sign(alice, tmp_path))["status"] == "unknown_key"


def test_two_keys_listed_each_signer_named(keys: tuple[SshKey, SshKey], tmp_path: Path) -> None:
    both = SignatureChecker(str(allowed_signers(tmp_path / "allowed", *keys)))
    for key in keys:
        assert check(both, sign(key, tmp_path)) == {"status": "good", "signer": key.principal}


def test_malformed_signatures_are_bad_never_an_error(
    checker: SignatureChecker, keys: tuple[SshKey, SshKey], tmp_path: Path
) -> None:
    data = bytes(blob(sign(keys[0], tmp_path)))
    sha512 = ssh_string(b"sha512")
    malformed = [
        data[:-1],  # truncated
        data + b"\0",  # trailing data
        data[:6] + (2).to_bytes(4, "big") + data[10:],  # another format version
        b"NOTSIG" + data[6:],
        data.replace(sha512, ssh_string(b"md5___"), 1),  # a hash ssh-keygen refuses
        data.replace(ssh_string(b"ssh-ed25519"), ssh_string(b"ssh-ed25518"), 1),  # the key's type
        data[:33] + bytes(32) + data[65:],  # another key (all zeros: a small-order point)
        data[:-100],
        b"",
    ]
    for item in malformed:
        found = check(checker, armor(item))
        assert found["status"] == "bad", item
    armored = sign(keys[0], tmp_path)
    for text in (
        armored.replace(ARMOR_END, ""),  # unterminated
        armored.replace("A", "*", 1),  # not base64
        "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n",
    ):
        assert check(checker, text)["status"] == "bad"


def test_an_rsa_signature_is_checked_through_sshsig(tmp_path: Path) -> None:
    key = tmp_path / "rsa"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "carol@example.com", "-f", str(key)],
        check=True,
    )
    carol = SshKey(key, "carol@example.com")
    checker = SignatureChecker(str(allowed_signers(tmp_path / "allowed", carol)))
    armored = sign(carol, tmp_path)
    assert check(checker, armored) == {"status": "good", "signer": "carol@example.com"}
    damaged = blob(armored)
    damaged[-1] ^= 1
    assert check(checker, armor(bytes(damaged)))["status"] == "bad"
    assert check(checker, sign(carol, tmp_path, namespace="git"))["status"] == "bad"
    unknown = check(SignatureChecker(None), armored)
    assert unknown == {"status": "unknown_key", "signer": ssh_keygen_fingerprint(carol)}


def test_the_checker_agrees_with_ssh_keygen_verify(
    checker: SignatureChecker, keys: tuple[SshKey, SshKey], tmp_path: Path
) -> None:
    """The reference: ``ssh-keygen -Y verify`` accepts what the checker calls good and
    refuses what it calls bad."""
    alice = keys[0]
    good = sign(alice, tmp_path)
    damaged = blob(good)
    damaged[-5] ^= 1
    allowed = tmp_path / "allowed"  # the checker's file
    sig = tmp_path / "sig"
    command = ["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-n", "dotnb", "-s", str(sig)]
    for armored, digest in ((good, DIGEST), (armor(bytes(damaged)), DIGEST), (good, OTHER_DIGEST)):
        sig.write_text(armored)
        proc = subprocess.run(
            [*command, "-I", alice.principal],
            input=digest.encode("ascii"),
            capture_output=True,
            check=False,
        )
        assert (proc.returncode == 0) == (check(checker, armored, digest)["status"] == "good")


def test_the_module_keeps_no_results(
    checker: SignatureChecker, keys: tuple[SshKey, SshKey], tmp_path: Path
) -> None:
    """A signature that verified once and was then damaged is bad at once: only key
    objects are kept between checks."""
    armored = sign(keys[0], tmp_path)
    assert check(checker, armored)["status"] == "good"
    damaged = blob(armored)
    damaged[-3] ^= 1
    assert check(checker, armor(bytes(damaged)))["status"] == "bad"
    assert check(checker, armored)["status"] == "good"


def test_the_verifier_alone_returns_the_key_it_checked_with(
    keys: tuple[SshKey, SshKey], tmp_path: Path, backend: str
) -> None:
    verifier = Ed25519Verifier("dotnb")
    assert verifier.backend == backend
    sig = dearmor(sign(keys[0], tmp_path))
    assert fingerprint(verifier.verify(sig, DIGEST.encode())) == ssh_keygen_fingerprint(keys[0])
    with pytest.raises(InvalidSshSignature):
        verifier.verify(sig, OTHER_DIGEST.encode())
    with pytest.raises(InvalidSshSignature, match="namespace"):
        Ed25519Verifier("git").verify(sig, DIGEST.encode())
