"""Writes kubeconfig files with the certificates embedded, so they work from any directory."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from warmstart_localcluster.pki import Pki

CONTEXT = "warmstart-local"


def write(path: Path, server: str, pki: Pki, client: str) -> None:
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": CONTEXT,
            "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
        }],
        "users": [{
            "name": f"{CONTEXT}-{client}",
            "user": {
                "client-certificate-data": b64(pki.client_cert(client)),
                "client-key-data": b64(pki.client_key(client)),
            },
        }],
        "contexts": [{
            "name": CONTEXT,
            "context": {"cluster": CONTEXT, "user": f"{CONTEXT}-{client}", "namespace": "default"},
        }],
        "current-context": CONTEXT,
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
