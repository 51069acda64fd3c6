"""Object storage as the operator sees it: a lineage's bucket, with the lineage's own
credentials (read from the Secret it references, in its own namespace), and the lineage
record read from it."""

from __future__ import annotations

from dataclasses import dataclass

from warmstart import record
from warmstart.api.constants import StorageSecretKeys
from warmstart.storage import S3Settings, Storage, StorageError
from warmstart_operator.kube import Kube


class CredentialsMissing(Exception):
    """The lineage's Secret or one of its keys is missing; the message names it."""


@dataclass(frozen=True)
class ReadManifest:
    manifest: record.Manifest
    digest: str
    raw: bytes


def storage_for(kube: Kube, namespace: str, secret_name: str) -> Storage:
    data = kube.get_secret_data(namespace, secret_name)
    if data is None:
        raise CredentialsMissing(f'Secret "{secret_name}" not found in namespace {namespace}')
    missing = [k for k in StorageSecretKeys.REQUIRED if not data.get(k)]
    if missing:
        raise CredentialsMissing(f'Secret "{secret_name}" has no key {missing[0]}')
    return Storage(S3Settings.from_env(data))


def read_manifest(storage: Storage, version_prefix: str) -> ReadManifest:
    """Reads and parses a version's manifest; StorageError / record.RecordError on failure."""
    raw = storage.read_manifest(version_prefix)
    return ReadManifest(
        manifest=record.parse_manifest(raw, source=record.manifest_uri(version_prefix)),
        digest=record.manifest_digest(raw),
        raw=raw,
    )


__all__ = ["CredentialsMissing", "ReadManifest", "StorageError", "read_manifest", "storage_for"]
