"""Pure functions over a pod manifest (a dict as the API server returns it).

The node agent's decisions that need no I/O live here so they are unit-tested without a
cluster: environment resolution (with $(VAR) expansion), downward-API values, which volume
source feeds which mount, the pod phase from container states, and scheduling fit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Pod = dict[str, Any]
# (kind "secret"|"configmap", namespace, name) -> data (decoded str values) or None if absent.
Lookup = Callable[[str, str, str], Mapping[str, str] | None]


class ConfigError(Exception):
    """The pod references something that is not there (kubelet: CreateContainerConfigError)."""


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes $(VAR) expansion: known names substituted, unknown kept, $$ escapes."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(sub, value)


def field_value(pod: Pod, field_path: str) -> str:
    """Value of a downward-API fieldRef such as metadata.name or status.podIP."""
    meta = pod.get("metadata", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod.get("spec", {}).get("nodeName", ""),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", ""),
        "status.podIP": pod.get("status", {}).get("podIP", ""),
        "status.hostIP": pod.get("status", {}).get("hostIP", ""),
        "status.podIPs": ",".join(
            ip.get("ip", "") for ip in pod.get("status", {}).get("podIPs", [])
        ),
        "status.hostIPs": ",".join(
            ip.get("ip", "") for ip in pod.get("status", {}).get("hostIPs", [])
        ),
    }
    if field_path in simple:
        return str(simple[field_path])
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", field_path)
    if match:
        return str(meta.get(match.group(1), {}).get(match.group(2), ""))
    if field_path == "metadata.labels":
        return "\n".join(f'{k}="{v}"' for k, v in sorted(meta.get("labels", {}).items()))
    if field_path == "metadata.annotations":
        return "\n".join(f'{k}="{v}"' for k, v in sorted(meta.get("annotations", {}).items()))
    raise ConfigError(f"unsupported fieldRef.fieldPath {field_path!r}")


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1, "m": 0.001, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


def quantity(value: str | int | float) -> float:
    """Parses a resource quantity ("500m", "2Gi", 3) into a number of base units."""
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIX:
        raise ConfigError(f"cannot parse resource quantity {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def resource_field_value(container: dict[str, Any], ref: dict[str, Any], node_alloc: Mapping[
        str, str]) -> str:
    """resourceFieldRef: limits/requests of the container, node allocatable when unset."""
    resource = ref["resource"]
    section, _, name = resource.partition(".")
    spec = container.get("resources", {}).get(section, {})
    raw = spec.get(name) or node_alloc.get(name, "0")
    divisor = quantity(ref.get("divisor", "1"))
    amount = quantity(raw) / divisor
    # Kubernetes rounds up so a container never sees less than it asked for.
    return str(int(-(-amount // 1)))


def container_env(
    pod: Pod,
    container: dict[str, Any],
    lookup: Lookup,
    base_env: Mapping[str, str],
    node_alloc: Mapping[str, str],
) -> dict[str, str]:
    """The environment a container starts with: image env, envFrom, then env (in order)."""
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = dict(base_env)
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
            if key not in source:
                continue
            ref = source[key]
            data = lookup(kind, ns, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind} "{ref["name"]}" not found')
            for name, value in data.items():
                env[prefix + name] = value
    for item in container.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
            continue
        source = item.get("valueFrom")
        if not source:
            env[name] = ""
            continue
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in source:
            env[name] = resource_field_value(container, source["resourceFieldRef"], node_alloc)
        else:
            for kind, key in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
                if key not in source:
                    continue
                ref = source[key]
                data = lookup(kind, ns, ref["name"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        break
                    what = f'{kind} "{ref["name"]}"'
                    if data is None:
                        raise ConfigError(f"{what} not found")
                    raise ConfigError(f'key "{ref["key"]}" not found in {what}')
                env[name] = data[ref["key"]]
    return env


def command_line(container: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    """command + args with $(VAR) expanded; the image's entrypoint is unknown here."""
    if not container.get("command"):
        raise ConfigError(
            f'container "{container["name"]}" has no command: the local node agent runs '
            "commands, not images, so every container must set `command`"
        )
    argv = [expand(str(a), env) for a in container["command"]]
    return argv + [expand(str(a), env) for a in container.get("args", [])]


@dataclass(frozen=True)
class Mount:
    """One volumeMount resolved against the pod's volumes."""

    volume: str
    path: str
    sub_path: str
    read_only: bool


def mounts(container: dict[str, Any]) -> list[Mount]:
    return [
        Mount(
            volume=m["name"],
            path=m["mountPath"],
            sub_path=m.get("subPath", ""),
            read_only=bool(m.get("readOnly", False)),
        )
        for m in container.get("volumeMounts", [])
    ]


def fits_node(pod: Pod, node_labels: Mapping[str, str], allocatable: Mapping[str, str]) -> str:
    """Empty string if the pod may run here, else the reason it cannot (for PodScheduled)."""
    for key, value in pod.get("spec", {}).get("nodeSelector", {}).items():
        if node_labels.get(key) != value:
            return f"node does not match nodeSelector {key}={value}"
    for container in pod.get("spec", {}).get("containers", []):
        requests = container.get("resources", {}).get("requests", {})
        limits = container.get("resources", {}).get("limits", {})
        for name in set(requests) | set(limits):
            if name in ("cpu", "memory", "ephemeral-storage"):
                continue
            wanted = quantity(requests.get(name, limits.get(name, "0")))
            have = quantity(allocatable.get(name, "0"))
            if wanted > have:
                return f"insufficient {name} (requested {wanted:g}, node has {have:g})"
    return ""


def pod_phase(states: list[tuple[str, int | None]], restart_pending: bool) -> str:
    """Phase from (state, exit code) per regular container: state is running|waiting|terminated.

    Mirrors kubelet: once every container has terminated and none will be restarted, the pod
    Succeeded if every exit code is 0, else Failed; anything started before that is Running.
    """
    if not states:
        return "Pending"
    terminated = [code for state, code in states if state == "terminated"]
    if len(terminated) == len(states) and not restart_pending:
        return "Succeeded" if all(code == 0 for code in terminated) else "Failed"
    if terminated or any(state == "running" for state, _ in states):
        return "Running"
    return "Pending"


def restart_wanted(restart_policy: str, exit_code: int) -> bool:
    if restart_policy == "Always":
        return True
    return restart_policy == "OnFailure" and exit_code != 0


def crash_backoff(restart_count: int) -> float:
    """Seconds before restart N: kubelet doubles from 10 s to 5 min; locally 1 s to 10 s."""
    return float(min(10, 2 ** max(0, restart_count - 1)))
