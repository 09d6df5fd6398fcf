"""Byte storage behind a remote URL, through fsspec: ``s3://`` (s3fs) and ``file://``.

A backend knows keys (``objects/ab/…``, ``runs/<id>``, ``journal/<id>``) relative
to the remote's base, and nothing about runs.  Every call translates failures
into :class:`RemoteUnavailable` naming the remote and its URL; credentials are
never part of a message (they live only in the AWS environment and config).
Calls are safe from several threads at once: transfers use a thread pool.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dotnb.remote.errors import RemoteError, RemoteUnavailable
from dotnb.remote.s3_adapter import s3_request
from dotnb.store.rawio import BINARY, pread, pwrite, read_into

UPLOAD_CONCURRENCY = 16
LIST_PAGE = 1000
# Large objects move in parts of this size, this many in flight (a sliding window:
# memory stays at WINDOW x PART whatever the object's size).  Uploads keep as many
# parts in flight as boto3's upload_file has threads (the server's CPU is the limit).
PART = 8 * 1024 * 1024
WINDOW = 8
UPLOAD_WINDOW = 10

BytesCallback = Callable[[int], None]


def read_part(buf: io.BytesIO, fd: int, start: int, length: int) -> str:
    """Fill ``buf`` with the ``length`` bytes of ``fd`` at ``start`` (in place: no new memory).

    Called through this module's global for each part of an upload (tests replace it
    to make a part fail).

    Returns the part's CRC32 as S3 wants it (base64, big-endian): the checksum
    botocore would compute on the event loop, computed here in a worker thread.
    """
    if buf.getbuffer().nbytes != length:
        buf.seek(0)
        buf.truncate(0)
        buf.seek(length - 1)
        buf.write(b"\0")
    with buf.getbuffer() as view:
        got = read_into(fd, view, start)
        crc = zlib.crc32(view)
    if got != length:
        raise OSError(f"the file shrank while it was being uploaded ({got} of {length} bytes read)")
    buf.seek(0)
    return base64.b64encode(crc.to_bytes(4, "big")).decode("ascii")


def _missing_dependency(url: str) -> RemoteError:
    return RemoteError(f"{url}: S3 remotes need s3fs, which is not installed (pip install 'dotnb[s3]')")


class Backend:
    """Shared behaviour; subclasses implement the primitive operations."""

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url

    def describe(self) -> str:
        return f"remote {self.name!r} ({self.url})"

    # Primitives: read returns None for a missing key; write with create_only
    # returns False when the key already exists (and leaves it unchanged).
    def read(self, key: str) -> bytes | None:
        raise NotImplementedError

    def read_range(self, key: str, start: int, length: int) -> bytes | None:
        """``length`` bytes of ``key`` from ``start`` (fewer at its end); None when the
        key does not exist."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def write(self, key: str, data: bytes, create_only: bool = False) -> bool:
        raise NotImplementedError

    def upload(self, local: str, key: str, callback: BytesCallback | None = None) -> None:
        raise NotImplementedError

    def download(self, key: str, local: str, callback: BytesCallback | None = None) -> bool:
        """Stream ``key`` into the file ``local``; False when the key does not exist."""
        raise NotImplementedError

    def list_sized(self, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, int]]:
        """(key, size) under ``prefix`` in lexical key order, after ``start_after`` when given."""
        raise NotImplementedError

    def list_keys(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        for key, _ in self.list_sized(prefix, start_after):
            yield key

    def close(self) -> None:
        pass


class LocalBackend(Backend):
    """A remote in a folder (a shared drive).  Writes are temp file + rename, so a
    reader never sees a partial object; ``create_only`` uses link(), which fails
    atomically when the target exists."""

    def __init__(self, name: str, url: str, path: str) -> None:
        super().__init__(name, url)
        import fsspec

        self.fs = fsspec.filesystem("file")
        self.base = Path(path)

    def _path(self, key: str) -> Path:
        return self.base.joinpath(*key.split("/"))

    def _fail(self, exc: OSError) -> RemoteUnavailable:
        what = exc.strerror or str(exc)
        return RemoteUnavailable(f"{self.describe()}: {what}")

    def _check_base(self) -> None:
        if not self.base.is_dir():
            raise RemoteUnavailable(f"{self.describe()}: the folder {self.base} does not exist")

    def read(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            self._check_base()
            return None
        except OSError as exc:
            raise self._fail(exc) from None

    def read_range(self, key: str, start: int, length: int) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                return pread(f.fileno(), length, start)
        except FileNotFoundError:
            self._check_base()
            return None
        except OSError as exc:
            raise self._fail(exc) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def _temp(self) -> Path:
        tmp = self.base / "tmp"
        tmp.mkdir(exist_ok=True)
        return tmp / f"{uuid.uuid4().hex}.part"

    def _install(self, tmp: Path, key: str, create_only: bool) -> bool:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if create_only:
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    return False
                return True
            os.replace(tmp, target)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def write(self, key: str, data: bytes, create_only: bool = False) -> bool:
        self._check_base()
        tmp = self._temp()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            return self._install(tmp, key, create_only)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise self._fail(exc) from None

    def upload(self, local: str, key: str, callback: BytesCallback | None = None) -> None:
        self._check_base()
        tmp = self._temp()
        try:
            with open(local, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(4 * 1024 * 1024):
                    dst.write(chunk)
                    if callback is not None:
                        callback(len(chunk))
                dst.flush()
                os.fsync(dst.fileno())
            self._install(tmp, key, create_only=False)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise self._fail(exc) from None

    def download(self, key: str, local: str, callback: BytesCallback | None = None) -> bool:
        try:
            with open(self._path(key), "rb") as src, open(local, "wb") as dst:
                while chunk := src.read(4 * 1024 * 1024):
                    dst.write(chunk)
                    if callback is not None:
                        callback(len(chunk))
            return True
        except FileNotFoundError:
            self._check_base()
            return False
        except OSError as exc:
            raise self._fail(exc) from None

    def list_sized(self, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, int]]:
        self._check_base()
        top = self._path(prefix.rstrip("/"))
        found: list[tuple[str, int]] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel_dir = os.path.relpath(dirpath, self.base).replace(os.sep, "/")
            for fn in filenames:
                if fn.endswith(".part"):
                    continue
                key = f"{rel_dir}/{fn}"
                if start_after is None or key > start_after:
                    try:
                        found.append((key, os.stat(os.path.join(dirpath, fn)).st_size))
                    except FileNotFoundError:
                        continue
        yield from sorted(found)


class S3Backend(Backend):
    def __init__(self, name: str, url: str, spec: dict[str, Any]) -> None:
        super().__init__(name, url)
        try:
            import s3fs
        except ImportError:
            raise _missing_dependency(url) from None
        rest = url[len("s3://") :]
        self.bucket, _, prefix = rest.partition("/")
        self.prefix = prefix.strip("/")
        client_kwargs: dict[str, Any] = {}
        if spec.get("region"):
            client_kwargs["region_name"] = spec["region"]
        kwargs: dict[str, Any] = {
            "use_listings_cache": False,
            "skip_instance_cache": True,
            "max_concurrency": UPLOAD_CONCURRENCY,
            "client_kwargs": client_kwargs,
            # Fail fast on a wrong endpoint instead of retrying for minutes.
            "config_kwargs": {"connect_timeout": 10, "retries": {"max_attempts": 3, "mode": "standard"}},
        }
        if spec.get("endpoint_url"):
            kwargs["endpoint_url"] = spec["endpoint_url"]
        if spec.get("profile"):
            kwargs["profile"] = spec["profile"]
        self.fs = s3fs.S3FileSystem(**kwargs)
        # Parts in flight and their buffers, shared by all uploads (all on the fsspec loop).
        self._window: asyncio.Semaphore | None = None
        self._buffers: list[io.BytesIO] = []

    def _path(self, key: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, key) if p)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, exc: BaseException) -> RemoteUnavailable:
        name = type(exc).__name__
        text = str(exc)
        if isinstance(exc, PermissionError):
            reason = (
                f"access denied ({text}); check the AWS credentials "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials)"
            )
        elif "NoCredentials" in name or "Unable to locate credentials" in text:
            reason = "no AWS credentials found (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
        elif "EndpointConnectionError" in name or "ConnectTimeout" in name or "ConnectionError" in name:
            reason = f"cannot connect ({text}); check the endpoint URL and the network"
        elif isinstance(exc, FileNotFoundError) and "bucket" in text.lower():
            reason = f"the bucket {self.bucket!r} does not exist"
        else:
            reason = f"{name}: {text}"
        return RemoteUnavailable(f"{self.describe()}: {reason}")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except RemoteError:
            raise
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise self._fail(exc) from None

    def _missing_or_fail(self, exc: FileNotFoundError) -> None:
        """A missing key is normal; a missing bucket is not."""
        if "bucket" in str(exc).lower():
            raise self._fail(exc) from None

    def read(self, key: str) -> bytes | None:
        try:
            with self._errors():
                # max_concurrency=1: one GET.  Otherwise s3fs sends a HEAD first (for the
                # size), and for a missing key a HEAD and a LIST.
                data: bytes = self.fs.cat_file(self._path(key), max_concurrency=1)
                return data
        except FileNotFoundError as exc:
            self._missing_or_fail(exc)
            return None

    def read_range(self, key: str, start: int, length: int) -> bytes | None:
        if length <= 0:
            return b""
        try:
            with self._errors():
                # One ranged GET (Range: bytes=start-end).
                data: bytes = self.fs.cat_file(self._path(key), start=start, end=start + length)
                return data
        except FileNotFoundError as exc:
            self._missing_or_fail(exc)
            return None

    def exists(self, key: str) -> bool:
        # HeadObject only: fs.info() follows a 404 with a LIST (is it a "directory"?).
        try:
            with self._errors():
                self.fs.call_s3("head_object", Bucket=self.bucket, Key=self._key(key))
                return True
        except FileNotFoundError as exc:
            self._missing_or_fail(exc)
            return False

    def write(self, key: str, data: bytes, create_only: bool = False) -> bool:
        try:
            # mode="create" sends If-None-Match: * — the store refuses to replace the key
            # (HTTP 412), which is how two pushers agree on who wrote a ref first.
            self.fs.pipe_file(self._path(key), data, mode="create" if create_only else "overwrite")
            return True
        except Exception as exc:
            if create_only and ("pre-condition" in str(exc) or "PreconditionFailed" in str(exc)):
                return False
            raise self._fail(exc) from None

    def upload(self, local: str, key: str, callback: BytesCallback | None = None) -> None:
        import fsspec.asyn

        with self._errors():
            fsspec.asyn.sync(self.fs.loop, self._upload, local, self._key(key), callback)

    async def _upload(self, local: str, key: str, callback: BytesCallback | None) -> None:
        """A multipart upload, UPLOAD_WINDOW parts at a time over all the uploads of this backend.

        Each part is read into a buffer kept for the next parts (a fresh process pays
        dearly for memory it touches the first time) and handed over as a stream,
        which the HTTP stack sends in small chunks: a part given as one ``bytes`` is
        copied again there (headers joined to it, the unsent rest buffered).  botocore
        does the same work per part as boto3's ``upload_file``: a SHA-256 of the
        payload for the signature (plain HTTP) and a CRC32 checksum the server checks.
        """
        size = os.path.getsize(local)
        part = max(PART, -(-size // 10_000))  # S3 allows 10,000 parts
        call = s3_request(self.fs)
        with open(local, "rb") as f:
            fd = f.fileno()
            if size <= part:
                await call("put_object", Bucket=self.bucket, Key=key, Body=f.read())
                if callback is not None:
                    callback(size)
                return
            upload_id = (await call("create_multipart_upload", Bucket=self.bucket, Key=key))["UploadId"]
            if self._window is None:
                self._window = asyncio.Semaphore(UPLOAD_WINDOW)
            window = self._window

            async def send(number: int, start: int) -> dict[str, Any]:
                length = min(part, size - start)
                async with window:
                    body = self._buffers.pop() if self._buffers else io.BytesIO()
                    crc = await asyncio.to_thread(read_part, body, fd, start, length)
                    out = await call(
                        "upload_part",
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        ContentLength=length,
                        ChecksumCRC32=crc,
                        Body=body,
                    )
                    # Only a buffer whose part was sent is used again: after an error or a
                    # cancellation its read (a thread) or its request may still be going on.
                    self._buffers.append(body)
                if callback is not None:
                    callback(length)
                return {"PartNumber": number, "ETag": out["ETag"]}

            tasks = [
                asyncio.ensure_future(send(i + 1, start)) for i, start in enumerate(range(0, size, part))
            ]
            try:
                parts = await asyncio.gather(*tasks)
                await call(
                    "complete_multipart_upload",
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": list(parts)},
                )
            except BaseException:
                # Stop the other parts before the file closes and the upload is aborted.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                with contextlib.suppress(Exception):
                    await call("abort_multipart_upload", Bucket=self.bucket, Key=key, UploadId=upload_id)
                raise

    def download(self, key: str, local: str, callback: BytesCallback | None = None) -> bool:
        import fsspec.asyn

        try:
            with self._errors():
                fsspec.asyn.sync(self.fs.loop, self._download, self._key(key), local, callback)
                return True
        except FileNotFoundError as exc:
            self._missing_or_fail(exc)
            return False

    async def _download(self, key: str, local: str, callback: BytesCallback | None) -> None:
        """Ranged GETs of PART bytes, WINDOW at a time, each written at its offset as it arrives."""
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | BINARY, 0o600)
        call = s3_request(self.fs)
        try:

            async def fetch(start: int, ranged: bool = True) -> int:
                extra = {"Range": f"bytes={start}-{start + PART - 1}"} if ranged else {}
                resp = await call("get_object", Bucket=self.bucket, Key=key, **extra)
                body, offset = resp["Body"], start
                try:
                    while chunk := await body.read(1 << 20):
                        pwrite(fd, chunk, offset)
                        offset += len(chunk)
                        if callback is not None:
                            callback(len(chunk))
                finally:
                    body.close()
                total = str(resp.get("ContentRange") or "").rpartition("/")[2]
                return int(total) if total.isdigit() else offset

            try:
                size = await fetch(0)
            except OSError as exc:
                if "range" not in str(exc).lower():
                    raise
                size = await fetch(0, ranged=False)  # an empty object: no range to ask for
            window = asyncio.Semaphore(WINDOW)

            async def rest(start: int) -> None:
                async with window:
                    await fetch(start)

            await asyncio.gather(*(rest(start) for start in range(PART, size, PART)))
        finally:
            os.close(fd)

    def list_sized(self, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, int]]:
        # ListObjectsV2 with StartAfter: an incremental pull reads only new journal keys.
        base = f"{self.prefix}/" if self.prefix else ""
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base + prefix, "MaxKeys": LIST_PAGE}
        if start_after is not None:
            args["StartAfter"] = base + start_after
        while True:
            try:
                with self._errors():
                    page = self.fs.call_s3("list_objects_v2", **args)
            except FileNotFoundError as exc:
                raise self._fail(exc) from None
            for item in page.get("Contents") or []:
                yield str(item["Key"])[len(base) :], int(item.get("Size") or 0)
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            args["ContinuationToken"] = token
            args.pop("StartAfter", None)


def open_backend(spec: dict[str, Any]) -> Backend:
    url = spec["url"]
    if url.startswith("s3://"):
        return S3Backend(spec["name"], url, spec)
    if url.startswith("file://"):
        return LocalBackend(spec["name"], url, url[len("file://") :])
    raise RemoteError(f"remote {spec['name']!r}: unsupported URL {url!r}")
