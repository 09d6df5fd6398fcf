"""Large objects against a real S3 server (SeaweedFS): the multipart upload and the
ranged download of ``S3Backend``, with small parts so that the files stay small."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from dotnb.remote import backend as backend_module
from dotnb.remote.backend import S3Backend, open_backend
from dotnb.remote.errors import RemoteUnavailable
from tests.remote.seaweed import SeaweedS3

MiB = 1024 * 1024
PART = 5 * MiB  # S3's smallest part


@pytest.fixture
def s3_backend(s3: SeaweedS3, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setattr(backend_module, "PART", PART)
    monkeypatch.setattr(backend_module, "UPLOAD_WINDOW", 2)
    monkeypatch.setattr(backend_module, "WINDOW", 2)
    b = open_backend({"name": "big", "url": f"s3://{bucket}/team"})
    assert isinstance(b, S3Backend)
    yield b
    b.close()


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_large_objects_go_up_in_parts_and_come_back_whole(
    s3_backend: S3Backend, tmp_path: Path, s3_client: Any, bucket: str
) -> None:
    # Two objects at once share the window of parts in flight and its buffers; the
    # last part of each is short, and their sizes differ.
    sizes = {"a": 3 * PART + 12_345, "b": 2 * PART + 1}
    data = {name: random_file(tmp_path / f"{name}.bin", size) for name, size in sizes.items()}
    reported = {name: 0 for name in sizes}
    errors: list[BaseException] = []

    def upload(name: str) -> None:
        def count(n: int) -> None:
            reported[name] += n

        try:
            s3_backend.upload(str(tmp_path / f"{name}.bin"), f"objects/{name}", callback=count)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(name,)) for name in sizes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert reported == sizes
    for name, size in sizes.items():
        head = s3_client.head_object(Bucket=bucket, Key=f"team/objects/{name}")
        assert head["ContentLength"] == size
        assert head["ETag"].strip('"').endswith(f"-{-(-size // PART)}")  # a multipart upload
        out = tmp_path / f"{name}.out"
        assert s3_backend.download(f"objects/{name}", str(out))
        assert out.read_bytes() == data[name]


def test_a_failed_part_aborts_the_upload_and_leaves_no_object(
    s3_backend: S3Backend, tmp_path: Path, s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    random_file(tmp_path / "big.bin", 4 * PART)
    real = backend_module.read_part

    def failing(buf: Any, fd: int, start: int, length: int) -> str:
        if start >= 2 * PART:
            raise OSError("disk on fire")
        return real(buf, fd, start, length)

    monkeypatch.setattr(backend_module, "read_part", failing)
    with pytest.raises(RemoteUnavailable, match="disk on fire"):
        s3_backend.upload(str(tmp_path / "big.bin"), "objects/big")
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="team/").get("KeyCount", 0) == 0
    assert not s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads")

    # The next upload of the same object works (buffers of the failed one are reused or dropped).
    monkeypatch.setattr(backend_module, "read_part", real)
    data = random_file(tmp_path / "big.bin", 4 * PART - 7)
    s3_backend.upload(str(tmp_path / "big.bin"), "objects/big")
    out = tmp_path / "big.out"
    assert s3_backend.download("objects/big", str(out))
    assert out.read_bytes() == data


def test_a_file_that_shrinks_during_its_upload_is_an_error(
    s3_backend: S3Backend, tmp_path: Path, s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.bin"
    random_file(path, 3 * PART)
    real = backend_module.read_part

    def shrinking(buf: Any, fd: int, start: int, length: int) -> str:
        os.truncate(path, 2 * PART + 10)
        return real(buf, fd, start, length)

    monkeypatch.setattr(backend_module, "read_part", shrinking)
    with pytest.raises(RemoteUnavailable, match="shrank"):
        s3_backend.upload(str(path), "objects/big")
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="team/").get("KeyCount", 0) == 0


def test_large_objects_move_through_the_public_call_s3_where_s3fs_lacks_the_coroutine(
    s3_backend: S3Backend, tmp_path: Path, s3_client: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with an s3fs that has no _call_s3: dotnb.remote.s3_adapter's fallback.
    monkeypatch.setattr(s3_backend.fs, "_call_s3", None)
    data = random_file(tmp_path / "big.bin", 2 * PART + 3)
    s3_backend.upload(str(tmp_path / "big.bin"), "objects/big")
    head = s3_client.head_object(Bucket=bucket, Key="team/objects/big")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart upload
    out = tmp_path / "big.out"
    assert s3_backend.download("objects/big", str(out))
    assert out.read_bytes() == data
