"""Where the local control plane keeps binaries, state and logs (all outside the repo)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Build cache shared by every run: binaries keyed by version."""
    return Path(os.environ.get("WARMSTART_CACHE", Path.home() / ".cache" / "warmstart"))


def default_state_dir() -> Path:
    """State of the one local cluster: certs, data, logs, pids, kubeconfig."""
    return Path(os.environ.get("WARMSTART_STATE", cache_dir() / "cluster"))


def go_wrappers_dir() -> Path:
    """The wrapper Go modules shipped beside this package (localcluster/go/)."""
    return Path(__file__).resolve().parent.parent / "go"
