"""Materialises a pod's volumes as directories under the pod's private directory.

configMap, secret, projected (serviceAccountToken, configMap, secret, downwardAPI),
downwardAPI, emptyDir and hostPath are supported; other volume types (PVCs, CSI, ...) make
the pod fail to start with a message saying so.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmstart_localcluster.nodeagent.podspec import ConfigError, Pod, field_value

# (kind "secret"|"configmap", namespace, name) -> raw object or None.
RawLookup = Callable[[str, str, str], dict[str, Any] | None]
# (namespace, service account, audiences, seconds, pod) -> (token, expiry as epoch seconds).
TokenIssuer = Callable[[str, str, list[str], int, Pod], tuple[str, float]]


@dataclass
class TokenFile:
    """A projected service-account token that must be refreshed before it expires."""

    path: Path
    audiences: list[str]
    seconds: int
    issued_at: float
    expires_at: float


@dataclass
class Volumes:
    root: Path
    dirs: dict[str, Path] = field(default_factory=dict)
    tokens: list[TokenFile] = field(default_factory=list)


def object_data(kind: str, obj: Mapping[str, Any]) -> dict[str, bytes]:
    """Key -> bytes of a Secret (base64 data) or ConfigMap (text data + binaryData)."""
    out: dict[str, bytes] = {}
    if kind == "secret":
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v)
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = str(v).encode()
    else:
        for k, v in (obj.get("data") or {}).items():
            out[k] = str(v).encode()
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v)
    return out


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    # Atomic replace, so a reader (e.g. a token refresh) never sees half a file.
    os.replace(tmp, path)


def _safe_join(base: Path, relative: str) -> Path:
    target = (base / relative).resolve()
    if not str(target).startswith(str(base.resolve()) + os.sep):
        raise ConfigError(f"volume item path {relative!r} escapes the volume")
    return target


def _project_keys(
    dest: Path,
    kind: str,
    namespace: str,
    source: Mapping[str, Any],
    lookup: RawLookup,
    default_mode: int,
) -> None:
    name = source.get("name") or source.get("secretName") or ""
    obj = lookup(kind, namespace, name)
    if obj is None:
        if source.get("optional"):
            return
        raise ConfigError(f'{kind} "{name}" not found')
    data = object_data(kind, obj)
    items = source.get("items")
    if items:
        for item in items:
            if item["key"] not in data:
                if source.get("optional"):
                    continue
                raise ConfigError(f'key "{item["key"]}" not found in {kind} "{name}"')
            _write(_safe_join(dest, item["path"]), data[item["key"]],
                   int(item.get("mode", default_mode)))
    else:
        for key, value in data.items():
            _write(_safe_join(dest, key), value, default_mode)


def _downward_items(dest: Path, pod: Pod, items: list[dict[str, Any]], default_mode: int) -> None:
    for item in items:
        if "fieldRef" not in item:
            raise ConfigError("downwardAPI volume items support fieldRef only on the local node")
        value = field_value(pod, item["fieldRef"]["fieldPath"])
        _write(_safe_join(dest, item["path"]), value.encode(), int(item.get("mode", default_mode)))


def prepare(
    pod: Pod, root: Path, lookup: RawLookup, issue_token: TokenIssuer
) -> Volumes:
    """Writes every volume of the pod under root/<volume name>/; raises ConfigError."""
    ns = pod["metadata"]["namespace"]
    sa = pod["spec"].get("serviceAccountName", "default")
    vols = Volumes(root=root)
    for volume in pod["spec"].get("volumes", []):
        name = volume["name"]
        if "hostPath" in volume:
            vols.dirs[name] = Path(volume["hostPath"]["path"])
            continue
        dest = root / name
        dest.mkdir(parents=True, exist_ok=True)
        vols.dirs[name] = dest
        if "emptyDir" in volume:
            continue
        if "configMap" in volume:
            src = volume["configMap"]
            _project_keys(dest, "configmap", ns, src, lookup, int(src.get("defaultMode", 0o644)))
        elif "secret" in volume:
            src = volume["secret"]
            _project_keys(dest, "secret", ns, src, lookup, int(src.get("defaultMode", 0o644)))
        elif "downwardAPI" in volume:
            src = volume["downwardAPI"]
            _downward_items(dest, pod, src.get("items", []), int(src.get("defaultMode", 0o644)))
        elif "projected" in volume:
            src = volume["projected"]
            mode = int(src.get("defaultMode", 0o644))
            for source in src.get("sources", []):
                if "serviceAccountToken" in source:
                    tok = source["serviceAccountToken"]
                    audiences = [tok["audience"]] if tok.get("audience") else []
                    seconds = int(tok.get("expirationSeconds", 3600))
                    path = _safe_join(dest, tok["path"])
                    token, expires = issue_token(ns, sa, audiences, seconds, pod)
                    _write(path, token.encode(), mode)
                    vols.tokens.append(TokenFile(path, audiences, seconds, time.time(), expires))
                elif "configMap" in source:
                    _project_keys(dest, "configmap", ns, source["configMap"], lookup, mode)
                elif "secret" in source:
                    _project_keys(dest, "secret", ns, source["secret"], lookup, mode)
                elif "downwardAPI" in source:
                    _downward_items(dest, pod, source["downwardAPI"].get("items", []), mode)
                else:
                    raise ConfigError(
                        f"projected volume {name!r}: source {sorted(source)} is not supported "
                        "by the local node agent"
                    )
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise ConfigError(
                f"volume {name!r} of type {kinds} is not supported by the local node agent "
                "(supported: configMap, secret, projected, downwardAPI, emptyDir, hostPath)"
            )
    return vols


def refresh_tokens(vols: Volumes, pod: Pod, issue_token: TokenIssuer) -> None:
    """Re-issues projected tokens past 80% of their life, as kubelet does."""
    now = time.time()
    ns = pod["metadata"]["namespace"]
    sa = pod["spec"].get("serviceAccountName", "default")
    for tok in vols.tokens:
        if now < tok.issued_at + 0.8 * (tok.expires_at - tok.issued_at):
            continue
        token, expires = issue_token(ns, sa, tok.audiences, tok.seconds, pod)
        _write(tok.path, token.encode(), tok.path.stat().st_mode & 0o777)
        tok.issued_at, tok.expires_at = now, expires
