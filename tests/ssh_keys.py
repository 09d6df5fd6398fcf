"""Real ed25519 keys made with ssh-keygen, and allowed-signers files naming them."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SshKey:
    path: Path  # the private key; its public key is beside it, .pub
    principal: str

    @property
    def public(self) -> str:
        """``ssh-ed25519 AAAA…`` (without the comment)."""
        return " ".join(self.path.with_suffix(".pub").read_text().split()[:2])


def make_key(folder: Path, principal: str) -> SshKey:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / principal.split("@")[0]
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", principal, "-f", str(path)], check=True
    )
    return SshKey(path, principal)


def allowed_signers(path: Path, *keys: SshKey) -> Path:
    """An allowed-signers file (ssh-keygen's format) trusting ``keys`` for dotnb."""
    path.write_text("".join(f'{k.principal} namespaces="dotnb" {k.public}\n' for k in keys))
    return path
