"""The image registry on 127.0.0.1 that the real node pulls the project's images from.

CNCF distribution (built from its Go module) over one storage directory in the cache.
`scripts/build-images` pushes with buildah through a registry of its own for the length of
the push (`warmstart-cluster push-images REF...`); each real-node
cluster runs one for its lifetime, so the kubelet pulls as on any cluster. The transfer is
by layer: after a code change only the small /app layer moves (buildah skips the blobs the
registry has, containerd fetches only the blobs its store lacks), where a docker-archive
moved all 6 GB of the trainer image twice.

Images keep their `localhost/warmstart/...` names: containerd's hosts directory maps the
host `localhost` to this registry's address, which changes with every start.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from warmstart_localcluster import binaries, processes
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.paths import cache_dir
from warmstart_localcluster.ports import free_ports

# The images scripts/build-images makes; the node pulls each one the registry has.
PROJECT_IMAGES = ("localhost/warmstart/trainer:dev", "localhost/warmstart/operator:dev")
_NAME_HOST = "localhost"
# The push's registry address, kept the same from push to push (see _push_port).
PUSH_PORT = 5281


def storage_dir() -> Path:
    return cache_dir() / "registry"


def repository(ref: str) -> tuple[str, str]:
    """`localhost/warmstart/trainer:dev` -> ("warmstart/trainer", "dev")."""
    path, _, tag = ref.partition("/")[2].rpartition(":")
    return path, tag


def manifest(ref: str) -> str:
    """The manifest digest the tag points at in the registry's storage, "" if none (read
    from disk: no server needed)."""
    path, tag = repository(ref)
    link = (storage_dir() / "docker/registry/v2/repositories" / path / "_manifests/tags"
            / tag / "current/link")
    try:
        return link.read_text().strip()
    except OSError:
        return ""


def has(ref: str) -> bool:
    return bool(manifest(ref))


def pushed() -> list[str]:
    return [ref for ref in PROJECT_IMAGES if has(ref)]


def write_config(path: Path, port: int) -> Path:
    storage_dir().mkdir(parents=True, exist_ok=True)
    path.write_text(f"""version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage_dir()}
  delete:
    enabled: true
http:
  # Loopback only: nothing off this machine can push or pull.
  addr: 127.0.0.1:{port}
""")
    return path


def _wait_ready(address: str, timeout: float, state_dir: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise ClusterError(f"the image registry at {address} did not answer in {timeout:.0f}s:\n"
                       f"{processes.log_tail(state_dir, 'registry')}")


def start(state_dir: Path, port: int | None = None, timeout: float = 30.0) -> str:
    """Starts a registry whose process belongs to state_dir (a cluster's: stopped with the
    cluster); returns host:port."""
    port = port or free_ports(1)[0]
    config = write_config(state_dir / "registry.yml", port)
    processes.start("registry", [str(binaries.ensure("registry")), "serve", str(config)],
                    state_dir)
    address = f"127.0.0.1:{port}"
    _wait_ready(address, timeout, state_dir)
    return address


def write_hosts(hosts_dir: Path, address: str) -> Path:
    """containerd's hosts directory: the `localhost/...` names resolve to this registry."""
    host = hosts_dir / _NAME_HOST
    host.mkdir(parents=True, exist_ok=True)
    (host / "hosts.toml").write_text(
        f'server = "http://{address}"\n\n'
        f'[host."http://{address}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
    )
    return hosts_dir


def _push_port() -> int:
    """PUSH_PORT when free, else any free port.

    buildah remembers which compressed blob it pushed where (its blob info cache), keyed by
    registry address: at the same address an unchanged 3 GB layer is skipped, at a new one
    it is compressed again (minutes) only to find the registry has it."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", PUSH_PORT))
        except OSError:
            return free_ports(1)[0]
    return PUSH_PORT


@contextmanager
def _serving() -> Iterator[str]:
    """A registry for the length of a push, over the same storage."""
    with tempfile.TemporaryDirectory(prefix="warmstart-registry-") as tmp:
        try:
            yield start(Path(tmp), port=_push_port())
        finally:
            processes.stop_all(Path(tmp))


def push(refs: Sequence[str], buildah: Sequence[str]) -> None:
    """Pushes local images (buildah's store) by layer, then drops what no tag references."""
    with _serving() as address:
        for ref in refs:
            path, tag = repository(ref)
            started = time.monotonic()
            print(f"==> pushing {ref} to the local registry", file=sys.stderr, flush=True)
            result = subprocess.run(
                [*buildah, "push", "--tls-verify=false", ref,
                 f"docker://{address}/{path}:{tag}"],
                stdout=sys.stderr, stderr=subprocess.STDOUT, check=False,
            )
            if result.returncode != 0:
                raise ClusterError(f"pushing {ref} failed (exit {result.returncode})")
            print(f"==> pushed {ref} in {time.monotonic() - started:.0f}s", file=sys.stderr,
                  flush=True)
    collect_garbage()


def collect_garbage() -> None:
    """Offline: a replaced `dev` leaves its old manifest untagged; its unique layers go."""
    with tempfile.TemporaryDirectory(prefix="warmstart-registry-") as tmp:
        config = write_config(Path(tmp) / "registry.yml", free_ports(1)[0])
        result = subprocess.run(
            [str(binaries.ensure("registry")), "garbage-collect", "--delete-untagged",
             str(config)], capture_output=True, text=True, check=False,
        )
    if result.returncode != 0:
        raise ClusterError(f"registry garbage-collect failed: {result.stdout[-2000:]}")
