"""A real model server process on 127.0.0.1 serving a tiny model published to file:// storage."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.trainer.support import LABELS, file_prefix, make_tiny_base, publish_dir
from warmstart.storage import Storage
from warmstart_localcluster import processes

MODEL = "reviews"
VERSION = "v1"


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int
    digest: str
    log: Path

    @property
    def url(self) -> str:
        """host:port, as tritonclient takes it."""
        return f"{self.host}:{self.port}"

    @property
    def base(self) -> str:
        return f"http://{self.url}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def publish_tiny_version(directory: Path) -> tuple[str, str]:
    """A tiny classifier published as version v1; returns its URI and manifest digest."""
    checkpoint = make_tiny_base(directory / "checkpoint", seed=3, labels=LABELS)
    uri = file_prefix(directory / "bucket" / MODEL / VERSION)
    return uri, publish_dir(Storage(), checkpoint, uri, labels=LABELS)


def ready_status(base: str) -> int:
    try:
        with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, ConnectionError):
        return 0


@contextmanager
def running_server(
    directory: Path, env: Mapping[str, str] | None = None, timeout: float = 180
) -> Iterator[RunningServer]:
    """Starts ``python -m warmstart_trainer serve`` and yields once it is ready."""
    uri, digest = publish_tiny_version(directory)
    port = free_port()
    log = directory / "server.log"
    command = [
        sys.executable, "-m", "warmstart_trainer", "serve", "--uri", uri, "--digest", digest,
        "--host", "127.0.0.1", "--port", str(port), "--model-name", MODEL, "--device", "cpu",
    ]
    environment = {**os.environ, "WARMSTART_WORKDIR": str(directory / "work"), **(env or {})}
    with log.open("w") as output:
        process = subprocess.Popen(command, env=environment, stdout=output, stderr=output)
    server = RunningServer("127.0.0.1", port, digest, log)
    try:
        deadline = time.monotonic() + timeout
        while ready_status(server.base) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the server did not become ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        processes.stop(process)


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP exchange with the standard library: status, headers, body (errors too)."""
    sent = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), exc.read()


def error_of(body: bytes) -> str:
    document = json.loads(body)
    assert set(document) == {"error"}, document  # the protocol's error body, nothing else
    message = document["error"]
    assert isinstance(message, str) and message
    return message
