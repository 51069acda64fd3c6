"""Object storage as the operator sees it: a lineage's bucket, with the lineage's own
credentials (read from the Secret it references, in its own namespace), and the lineage
record read from it."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from warmstart import record
from warmstart.api.constants import StorageSecretKeys
from warmstart.storage import ObjectInfo, S3Settings, Storage, StorageError
from warmstart_operator.cluster import Cluster


class ObjectStore(Protocol):
    """What the reconcilers need of object storage (warmstart.storage.Storage has it)."""

    def read_manifest(self, version_prefix: str) -> bytes: ...

    # Signatures (signatures.py) and the serving history (servinghistory.py) read and write
    # objects of their own beside the manifests.
    def get_bytes(self, uri: str) -> bytes: ...

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None: ...

    def exists(self, uri: str) -> bool: ...

    def list(self, prefix_uri: str) -> list[ObjectInfo]: ...

    def delete(self, uri: str) -> None: ...


def s3_store(secret_data: Mapping[str, str]) -> ObjectStore:
    return Storage(S3Settings.from_env(dict(secret_data)))


class CredentialsMissing(Exception):
    """The lineage's Secret or one of its keys is missing; the message names it."""


@dataclass(frozen=True)
class ReadManifest:
    manifest: record.Manifest
    digest: str
    raw: bytes


class StoreCache:
    """One S3 client per (namespace, Secret, Secret contents): building a boto3 client costs
    tens of milliseconds and megabytes, too much for every reconcile. The Secret is still
    read each time, so rotated credentials take effect at once."""

    def __init__(self, kube: Cluster,
                 factory: Callable[[Mapping[str, str]], ObjectStore] = s3_store) -> None:
        self.kube = kube
        self._factory = factory
        self._cache: dict[tuple[str, str], tuple[str, ObjectStore]] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, secret_name: str) -> ObjectStore:
        data = _secret_data(self.kube, namespace, secret_name)
        fingerprint = hashlib.sha256(
            repr(sorted(data.items())).encode()).hexdigest()
        key = (namespace, secret_name)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == fingerprint:
                return cached[1]
            store = self._factory(data)
            self._cache[key] = (fingerprint, store)
            return store


def _secret_data(kube: Cluster, namespace: str, secret_name: str) -> dict[str, str]:
    data = kube.get_secret_data(namespace, secret_name)
    if data is None:
        raise CredentialsMissing(f'Secret "{secret_name}" not found in namespace {namespace}')
    missing = [k for k in StorageSecretKeys.REQUIRED if not data.get(k)]
    if missing:
        raise CredentialsMissing(f'Secret "{secret_name}" has no key {missing[0]}')
    return data


def read_manifest(storage: ObjectStore, version_prefix: str) -> ReadManifest:
    """Reads and parses a version's manifest; StorageError / record.RecordError on failure."""
    raw = storage.read_manifest(version_prefix)
    return ReadManifest(
        manifest=record.parse_manifest(raw, source=record.manifest_uri(version_prefix)),
        digest=record.manifest_digest(raw),
        raw=raw,
    )


__all__ = ["CredentialsMissing", "ObjectStore", "ReadManifest", "StorageError", "StoreCache",
           "read_manifest"]
