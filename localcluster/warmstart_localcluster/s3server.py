"""A real S3-compatible server for the local cluster: SeaweedFS (master, volume, filer, S3).

Authentication is on: an admin identity with a random secret is written to the S3 config,
so a request with wrong credentials is refused exactly as on AWS. Every port is on
127.0.0.1 (on a real node the S3 gateway alone listens on the node's bridge address, which
pods reach and the node's input guard keeps from everything else) and chosen free at
start; telemetry is off (the machine has no internet, and a test cluster must not phone
home anyway).
"""

from __future__ import annotations

import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from warmstart_localcluster import processes
from warmstart_localcluster.ports import fixed_port, free_ports

REGION = "us-east-1"


# Two extra identities, each allowed only its own bucket (named like the identity), so
# tests and the demo can show that one tenant's credentials cannot reach another's data.
TENANTS = ("tenant-a", "tenant-b")


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = REGION
    tenants: dict[str, tuple[str, str]] = field(default_factory=dict)


def write_config(path: Path, identities: dict[str, tuple[str, str, list[str]]]) -> None:
    """identities: name -> (access key, secret key, actions such as "Admin" or "Read:bucket")."""
    config = {
        "identities": [
            {
                "name": name,
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": actions,
            }
            for name, (access, secret, actions) in identities.items()
        ]
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(config, indent=2))


def start(weed: Path, state_dir: Path, timeout: float, host: str = "127.0.0.1") -> S3Server:
    data = state_dir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    access_key = "warmstart-admin"
    secret_key = secrets.token_urlsafe(24)
    config = state_dir / "s3-identities.json"
    identities = {"admin": (access_key, secret_key, ["Admin", "Read", "List", "Tagging",
                                                     "Write"])}
    tenants = {name: (f"{name}-key", secrets.token_urlsafe(24)) for name in TENANTS}
    for name, (access, secret) in tenants.items():
        identities[name] = (access, secret, [f"{a}:{name}" for a in ("Read", "Write", "List",
                                                                      "Tagging")])
    write_config(config, identities)
    ports = free_ports(8)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
    s3 = fixed_port("WARMSTART_S3_PORT") or s3
    print("==> starting SeaweedFS S3 server", file=sys.stderr, flush=True)
    processes.start("seaweedfs", [
        str(weed), "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        # Small volumes keep the data directory small; tests write little.
        "-master.volumeSizeLimitMB=256",
        "-volume.max=0",
        f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
        "-filer",
        f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={data / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
        # Only the authenticated S3 gateway may face pods; master, volume and filer (no
        # authentication) stay on loopback.
        f"-s3.ip.bind={host}",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-s3.localSocket={data / 's3.sock'}",
        f"-s3.config={config}",
        "-s3.allowDeleteBucketNotEmpty=true",
    ], state_dir)
    endpoint = f"http://{host}:{s3}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(endpoint):
            return S3Server(endpoint, access_key, secret_key, tenants=tenants)
        time.sleep(0.3)
    raise RuntimeError(
        f"SeaweedFS S3 did not answer at {endpoint} within {timeout:.0f}s; last log lines:\n"
        + processes.log_tail(state_dir, "seaweedfs")
    )


def healthy(endpoint: str) -> bool:
    """True once the S3 gateway answers and its filer is connected."""
    try:
        with urllib.request.urlopen(f"{endpoint}/healthz", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, OSError):
        return False
