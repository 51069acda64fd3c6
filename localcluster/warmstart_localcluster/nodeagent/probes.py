"""Readiness and liveness probes: httpGet, tcpSocket and exec, as kubelet runs them."""

from __future__ import annotations

import http.client
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ProbeState:
    """Counters kubelet keeps per probe: successes/failures in a row and the last result."""

    spec: dict[str, Any]
    ok: bool = False
    successes: int = 0
    failures: int = 0
    next_at: float = 0.0
    last_message: str = field(default="")

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))

    @property
    def initial_delay(self) -> float:
        return float(self.spec.get("initialDelaySeconds", 0))

    def record(self, success: bool, message: str) -> bool:
        """Counts one result; returns True when the probe's verdict changed."""
        self.last_message = message
        before = self.ok
        if success:
            self.successes += 1
            self.failures = 0
            if self.successes >= int(self.spec.get("successThreshold", 1)):
                self.ok = True
        else:
            self.failures += 1
            self.successes = 0
            if self.failures >= int(self.spec.get("failureThreshold", 3)):
                self.ok = False
        return before != self.ok


def resolve_port(port: int | str, container: Mapping[str, Any]) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports", []):
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"probe names port {port!r}, which the container does not declare")


def run_probe(
    spec: Mapping[str, Any],
    container: Mapping[str, Any],
    pod_ip: str,
    exec_prefix: list[str],
    env: Mapping[str, str],
) -> tuple[bool, str]:
    """One probe attempt; exec_prefix enters the container's mount namespace."""
    timeout = float(spec.get("timeoutSeconds", 1))
    try:
        if "httpGet" in spec:
            get = spec["httpGet"]
            host = get.get("host") or pod_ip
            port = resolve_port(get["port"], container)
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
                conn.request("GET", get.get("path", "/"), headers=headers)
                status = conn.getresponse().status
            finally:
                conn.close()
            return 200 <= status < 400, f"HTTP probe returned {status}"
        if "tcpSocket" in spec:
            sock = spec["tcpSocket"]
            port = resolve_port(sock["port"], container)
            with socket.create_connection((sock.get("host") or pod_ip, port), timeout=timeout):
                return True, "TCP connect succeeded"
        if "exec" in spec:
            result = subprocess.run(
                [*exec_prefix, *spec["exec"]["command"]],
                env=dict(env),
                capture_output=True,
                timeout=max(timeout, 1.0),
                check=False,
            )
            out = (result.stdout + result.stderr).decode(errors="replace").strip()[-200:]
            return result.returncode == 0, f"exec probe exited {result.returncode}: {out}"
    except (OSError, subprocess.TimeoutExpired, http.client.HTTPException, ValueError) as exc:
        return False, f"probe failed: {exc}"
    return False, "probe has no handler (httpGet, tcpSocket or exec)"
