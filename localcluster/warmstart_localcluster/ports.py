"""Loopback ports for the cluster's components: free ones, or ones the user pinned."""

from __future__ import annotations

import os
import socket

from warmstart_localcluster.errors import ClusterError


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports free right now; held open together so they differ."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def fixed_port(env_var: str) -> int | None:
    """A port the user pinned through env_var; refused up front when something holds it."""
    raw = os.environ.get(env_var)
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ClusterError(f"{env_var}={raw!r} is not a port number")
    port = int(raw)
    if port_in_use(port):
        raise ClusterError(
            f"port {port} ({env_var}) is already in use on 127.0.0.1: stop what holds it "
            f"(`ss -ltnp 'sport = :{port}'` shows it) or unset {env_var} to pick a free port"
        )
    return port
