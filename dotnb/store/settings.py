"""``.dotnb/config.json``: a store's settings, as ``dotnb config NAME [VALUE]`` reads
and writes them (like ``git config``).

Only settings named in :data:`SETTINGS` exist; each is a string.  Paths are kept
as given (``~`` expanded when used), so a store's settings can name a key in the
user's home.  The file is small and read whenever a setting is needed (a kernel
reads it off the cell's path, when it signs), so a change applies at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dotnb.store.atomic import write_bytes
from dotnb.store.errors import DotnbError
from dotnb.store.layout import TMP_DIR

CONFIG_FILE = "config.json"

SIGNING_KEY = "signing.key"
ALLOWED_SIGNERS = "signing.allowed_signers"

# Every setting, with what ``dotnb config --help`` says of it.
SETTINGS = {
    SIGNING_KEY: "SSH private key (or its .pub, key in ssh-agent) new runs' manifest hashes are signed with",
    ALLOWED_SIGNERS: "allowed-signers file (ssh-keygen format) signatures are checked against",
}


class SettingError(DotnbError):
    """A setting name or value that cannot be used: a mistake in the command line."""

    exit_code = 2


def _path(store_dir: Path) -> Path:
    return store_dir / CONFIG_FILE


def read_settings(store_dir: Path) -> dict[str, str]:
    """Every setting the store has (an empty dict when it has no config file)."""
    try:
        data = json.loads(_path(store_dir).read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (ValueError, UnicodeDecodeError):
        raise DotnbError(f"{_path(store_dir)} is not valid JSON; fix or remove it") from None
    if not isinstance(data, dict):
        raise DotnbError(f"{_path(store_dir)} is not a dotnb config file; fix or remove it")
    return {k: v for k, v in data.items() if k in SETTINGS and isinstance(v, str)}


def get_setting(store_dir: Path, name: str) -> str | None:
    check_name(name)
    return read_settings(store_dir).get(name)


def set_setting(store_dir: Path, name: str, value: str | None) -> None:
    """Set ``name`` to ``value`` (None removes it), after checking the value."""
    check_name(name)
    settings = read_settings(store_dir)
    if value is None:
        settings.pop(name, None)
    else:
        check_value(name, value)
        settings[name] = value
    text = json.dumps(settings, indent=2, sort_keys=True) + "\n"
    write_bytes(_path(store_dir), text.encode("utf-8"), tmp_dir=store_dir / TMP_DIR)


def check_name(name: str) -> None:
    if name not in SETTINGS:
        raise SettingError(f"unknown setting {name!r} (settings: {', '.join(sorted(SETTINGS))})")


def check_value(name: str, value: str) -> None:
    """A path setting must name a readable file."""
    path = expand(value)
    if not os.path.isfile(path):
        raise SettingError(f"{name}: no such file: {value}")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise SettingError(f"{name}: cannot read {value}: {exc.strerror or exc}") from None


def expand(value: str) -> str:
    return os.path.expanduser(value)


def describe() -> list[dict[str, Any]]:
    return [{"name": name, "help": text} for name, text in SETTINGS.items()]
