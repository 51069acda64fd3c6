"""The real node's network: a bridge and pod range that exist only on this machine.

Layout (all host-global, so only one real-node cluster per machine):
- bridge BRIDGE with NODE_IP/24; the node, the API server (in this mode) and CoreDNS's
  upstream-less resolver live there; pods get addresses from POD_SUBNET through CNI.
- blackhole routes for the whole pod range and the Service range: a host packet to an
  address the bridge does not serve is dropped instead of following the default route.
- a policy rule sends everything that enters from the bridge to a table holding only the
  bridge's subnet and a blackhole default: no pod packet is ever forwarded off the machine.
  Service traffic still works because kube-proxy's DNAT happens before that lookup.
- an iptables chain that drops packets for NODE_IP arriving on any other interface, so the
  API server and kubelet listening there are not reachable from outside.
Teardown removes each of these by name, so it is idempotent and safe after a crash.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

from warmstart_localcluster.errors import ClusterError

BRIDGE = "wsnode0"
NODE_IP = "10.244.0.1"
POD_SUBNET = "10.244.0.0/24"
POD_RANGE = "10.244.0.0/16"
SERVICE_RANGE = "10.0.0.0/24"
DNS_SERVICE_IP = "10.0.0.10"
ROUTE_TABLE = "2440"
RULE_PRIORITY = "2440"
CHAIN = "WARMSTART-NODE"

_SYSCTLS = {
    # Pod -> Service -> pod on the same bridge is routed (DNAT, then out the bridge again).
    "net/ipv4/ip_forward": "1",
    # kube-proxy's DNAT must see traffic between pods on the bridge.
    "net/bridge/bridge-nf-call-iptables": "1",
}


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), check=check, capture_output=True, text=True)


def _quiet(*argv: str) -> None:
    _run(*argv, check=False)


def owner() -> str | None:
    """The state dir of the real node whose bridge exists on this machine, if any."""
    shown = _run("ip", "-d", "-o", "link", "show", BRIDGE, check=False)
    if shown.returncode != 0:
        return None
    words = shown.stdout.split()
    return words[words.index("alias") + 1] if "alias" in words else ""


def setup(state_dir: Path) -> None:
    """Creates bridge, routes, policy rule and the input guard (after a teardown)."""
    holder = owner()
    if holder is not None and holder != str(state_dir):
        # The bridge and ranges are one per machine: never take over another cluster's.
        raise ClusterError(
            f"another real node holds {BRIDGE} (state dir {holder or 'unknown'}): "
            f"`warmstart-cluster --state-dir {holder or 'DIR'} down` it first"
        )
    teardown()
    saved: dict[str, str] = {}
    for key, value in _SYSCTLS.items():
        path = Path("/proc/sys") / key
        saved[key] = path.read_text().strip()
        path.write_text(value)
    # Kept so `down` can put the host's settings back as they were.
    (state_dir / "sysctls.json").write_text(json.dumps(saved))
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "link", "set", BRIDGE, "alias", str(state_dir))
    _run("ip", "addr", "add", f"{NODE_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    _run("ip", "route", "add", "blackhole", POD_RANGE)
    _run("ip", "route", "add", "blackhole", SERVICE_RANGE)
    _run("ip", "route", "add", POD_SUBNET, "dev", BRIDGE, "src", NODE_IP, "table", ROUTE_TABLE)
    _run("ip", "route", "add", "blackhole", "default", "table", ROUTE_TABLE)
    _run("ip", "rule", "add", "iif", BRIDGE, "lookup", ROUTE_TABLE, "priority", RULE_PRIORITY)
    _run("iptables", "-w", "-N", CHAIN)
    _run("iptables", "-w", "-A", CHAIN, "-d", NODE_IP, "-i", "lo", "-j", "RETURN")
    _run("iptables", "-w", "-A", CHAIN, "-d", NODE_IP, "-i", BRIDGE, "-j", "RETURN")
    _run("iptables", "-w", "-A", CHAIN, "-d", NODE_IP, "-j", "DROP")
    _run("iptables", "-w", "-I", "INPUT", "-j", CHAIN)


def teardown(state_dir: Path | None = None) -> None:
    """Removes everything setup() made; each step tolerates its object being absent."""
    while _run("ip", "rule", "del", "priority", RULE_PRIORITY, check=False).returncode == 0:
        pass
    _quiet("ip", "route", "flush", "table", ROUTE_TABLE)
    _quiet("ip", "route", "del", "blackhole", POD_RANGE)
    _quiet("ip", "route", "del", "blackhole", SERVICE_RANGE)
    # Host ends of pod veths go with their namespaces, unless another process on the machine
    # still holds a namespace (a mount namespace made while it was mounted copies its
    # mount): delete them by hand, then the bridge.
    for line in _run("ip", "-o", "link", "show", "master", BRIDGE, check=False).stdout.splitlines():
        _quiet("ip", "link", "del", line.split(":")[1].strip().split("@")[0])
    _quiet("ip", "link", "del", BRIDGE)
    while _run("iptables", "-w", "-D", "INPUT", "-j", CHAIN, check=False).returncode == 0:
        pass
    _quiet("iptables", "-w", "-F", CHAIN)
    _quiet("iptables", "-w", "-X", CHAIN)
    _remove_chains()
    if state_dir is not None:
        saved_path = state_dir / "sysctls.json"
        if saved_path.is_file():
            for key, value in json.loads(saved_path.read_text()).items():
                (Path("/proc/sys") / key).write_text(value)
            saved_path.unlink()


# Chains that kube-proxy, the kubelet and the CNI portmap plugin create (for IPv4 and IPv6).
_CHAIN_PREFIXES = ("KUBE-", "CNI-")


def _remove_chains() -> None:
    for tool in ("iptables", "ip6tables"):
        for table in ("nat", "filter", "mangle"):
            saved = _run(f"{tool}-save", "-t", table, check=False).stdout.splitlines()
            ours = [line[1:].split()[0] for line in saved
                    if line.startswith(":") and line[1:].startswith(_CHAIN_PREFIXES)]
            # Jumps into our chains from the built-in ones first, then the chains themselves.
            for line in saved:
                words = shlex.split(line)
                if (line.startswith("-A ") and not words[1].startswith(_CHAIN_PREFIXES)
                        and "-j" in words and words[words.index("-j") + 1] in ours):
                    _quiet(tool, "-w", "-t", table, "-D", *words[1:])
            for chain in ours:
                _quiet(tool, "-w", "-t", table, "-F", chain)
            for chain in ours:
                _quiet(tool, "-w", "-t", table, "-X", chain)


def write_cni_config(conf_dir: Path) -> None:
    """bridge + host-local + loopback (implicit) + portmap; no masquerade: nothing leaves."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "cniVersion": "1.0.0",
        "name": "warmstart",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": NODE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(conf_dir.parent / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    (conf_dir / "10-warmstart.conflist").write_text(json.dumps(config, indent=2))


def snapshot() -> dict[str, list[str]]:
    """What a real node changes on the host; after `down` it must equal the earlier one.

    iptables: rules and user chains only (iptables-nft keeps a table's empty built-in
    chains once anything has used it, which is no rule of ours).
    """
    rules = []
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            for line in _run(f"{tool}-save", "-t", table, check=False).stdout.splitlines():
                if line.startswith("-A ") or (line.startswith(":") and "- [" in line):
                    rules.append(f"{tool} {table} {line.split(' [')[0]}")
    return {
        "links": sorted(line.split(":")[1].strip().split("@")[0] for line in
                        _run("ip", "-o", "link", "show").stdout.splitlines()),
        "routes": sorted(_run("ip", "route", "show", "table", "all").stdout.splitlines()),
        "rules": _run("ip", "rule", "show").stdout.splitlines(),
        "iptables": sorted(rules),
    }
