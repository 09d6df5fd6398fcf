"""``.dotnb/remotes.json``: the remotes a store knows, like git's ``[remote]`` sections.

Only locations and non-secret options are kept (URL, endpoint, region, profile);
credentials come from the standard AWS environment variables and config files at
the time of use, so they never reach the store, a manifest or a log.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dotnb.remote.errors import NoRemoteConfigured, RemoteConfigError, RemoteError, UnknownRemote
from dotnb.store.atomic import write_bytes

if TYPE_CHECKING:
    from dotnb.store.repo import Store

CONFIG_FILE = "remotes.json"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
OPTIONS = ("endpoint_url", "region", "profile")


def _path(store: Store) -> Any:
    return store.dir / CONFIG_FILE


def has_remotes(store: Store) -> bool:
    return bool(_load(store)["remotes"])


def _load(store: Store) -> dict[str, Any]:
    try:
        data = json.loads(_path(store).read_text("utf-8"))
    except FileNotFoundError:
        return {"default": None, "remotes": {}}
    except ValueError:
        raise RemoteConfigError(f"{_path(store)} is not valid JSON; fix or remove it") from None
    if not isinstance(data, dict) or not isinstance(data.get("remotes"), dict):
        raise RemoteConfigError(f"{_path(store)} is not a dotnb remotes file; fix or remove it")
    return data


def _save(store: Store, data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_bytes(_path(store), text.encode("utf-8"), tmp_dir=store.dir / "tmp")


def _entry(name: str, spec: dict[str, Any], default: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "url": spec["url"],
        "default": name == default,
        **{opt: spec.get(opt) for opt in OPTIONS},
    }


def list_remotes(store: Store) -> list[dict[str, Any]]:
    data = _load(store)
    return [_entry(n, s, data.get("default")) for n, s in sorted(data["remotes"].items())]


def get_remote(store: Store, name: str | None = None) -> dict[str, Any]:
    """The named remote, or the default one when ``name`` is None."""
    data = _load(store)
    remotes = data["remotes"]
    if name is None:
        if not remotes:
            raise NoRemoteConfigured("no remote is configured (add one with `dotnb remote add NAME URL`)")
        name = data.get("default")
        if name not in remotes:
            raise NoRemoteConfigured(
                "no default remote; name one (remotes: " + ", ".join(sorted(remotes)) + ")"
            )
    if name is None or name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise UnknownRemote(f"no remote named {name!r} (configured: {known})")
    return _entry(name, remotes[name], data.get("default"))


def check_url(url: str) -> str:
    """Normalise and validate a remote URL; refuse credentials embedded in it."""
    parts = urlsplit(url)
    if parts.username or parts.password or "@" in parts.netloc:
        raise RemoteError(
            "refusing a URL with credentials in it: they would be stored in plain text; "
            "use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or an AWS profile instead"
        )
    if parts.query or parts.fragment:
        raise RemoteError(f"remote URLs take no query or fragment: {url!r}")
    if parts.scheme == "s3":
        bucket = parts.netloc
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
            raise RemoteError(f"{url!r}: {bucket!r} is not a valid S3 bucket name")
        prefix = parts.path.strip("/")
        return f"s3://{bucket}/{prefix}".rstrip("/")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise RemoteError(f"{url!r}: a file remote needs an absolute path, e.g. file:///mnt/team/dotnb")
        return "file://" + (parts.path.rstrip("/") or "/")
    raise RemoteError(f"unsupported remote URL {url!r}: use s3://BUCKET/PREFIX or file:///ABSOLUTE/PATH")


def add_remote(
    store: Store,
    name: str,
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    default: bool = False,
) -> dict[str, Any]:
    if not NAME_RE.fullmatch(name):
        raise RemoteError(
            f"{name!r} is not a valid remote name (letters, digits, '.', '_', '-'; up to 64 characters)"
        )
    url = check_url(url)
    if endpoint_url is not None:
        ep = urlsplit(endpoint_url)
        if ep.scheme not in ("http", "https") or not ep.netloc or ep.username or ep.password:
            # Never echo the URL: it may hold the very credentials being refused.
            raise RemoteError("--endpoint-url must be an http(s) URL without credentials in it")
    data = _load(store)
    if name in data["remotes"]:
        raise RemoteError(f"a remote named {name!r} already exists ({data['remotes'][name]['url']})")
    spec = {"url": url}
    for opt, value in (("endpoint_url", endpoint_url), ("region", region), ("profile", profile)):
        if value:
            spec[opt] = value
    data["remotes"][name] = spec
    if default or not data.get("default") or data.get("default") not in data["remotes"]:
        data["default"] = name
    _save(store, data)
    return _entry(name, spec, data["default"])


def remove_remote(store: Store, name: str) -> None:
    data = _load(store)
    if name not in data["remotes"]:
        get_remote(store, name)  # raises UnknownRemote with the list
    del data["remotes"][name]
    if data.get("default") == name:
        # A single remaining remote becomes the default; with several, the user picks.
        data["default"] = next(iter(data["remotes"])) if len(data["remotes"]) == 1 else None
    _save(store, data)
    store.index.forget_remote(name)
