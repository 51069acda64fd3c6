"""Signed versions as the operator enforces them (ModelLineage spec.signing); the trust
boundary of who may do what is trust.py.

The reconcilers call these at three points, each a line or two at the call site:
- before a version is recorded (``verify_version``: the child of a finished job, the base,
  versions found again by recovery);
- before every rollout (``verify_version`` again, on the bytes in storage now, so a
  manifest or signature swapped after recording is caught before pods are pointed at it);
- when building the trainer Job (``add_signing``: the key Secret mounted as a file, never
  copied) and the serving patch (``serving_env``: the keys the model server trusts).

Everything here is pure or takes the storage object; unit-tested without a cluster.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any, Protocol

from warmstart import provenance, record, signing
from warmstart.api.modellineage import ModelLineageSpec
from warmstart.storage import StorageError

SIGNING_VOLUME = "signing-key"
SIGNING_MOUNT = "/var/run/warmstart/signing"
# Reason of conditions when spec.signing itself is unusable (a key that does not parse).
SIGNING_CONFIG_INVALID = "SigningConfigInvalid"
# Every reason a signature refusal writes into a condition: a lineage Degraded for one of
# them is looked at again and recovers when the version verifies.
REFUSAL_REASONS = frozenset({SIGNING_CONFIG_INVALID, *(c.value for c in signing.SignatureCheck)})


class SignatureRefused(Exception):
    """A version may not be trusted; ``reason`` is the condition reason (the failed check),
    the message names the version."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class VersionStore(Protocol):
    def read_manifest(self, version_prefix: str) -> bytes: ...

    def get_bytes(self, uri: str) -> bytes: ...


def operator_version() -> str:
    try:
        return importlib.metadata.version("warmstart")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def trusted_keys(spec: ModelLineageSpec) -> tuple[signing.TrustedKey, ...] | None:
    """The lineage's trusted keys; None when the lineage does not sign.
    Raises SignatureRefused(SigningConfigInvalid) naming the bad key."""
    if spec.signing is None:
        return None
    try:
        return signing.trust_of(spec.signing)
    except signing.SigningConfigError as exc:
        raise SignatureRefused(SIGNING_CONFIG_INVALID, f"spec.signing: {exc}") from None


def verify_version(
    store: VersionStore,
    spec: ModelLineageSpec,
    version: str | None,
    version_prefix: str,
    manifest_bytes: bytes | None = None,
) -> signing.TrustedKey | None:
    """Check a version's signature when the lineage signs; returns the key that signed it
    (None when the lineage does not sign). ``version`` None: the folder's name (the base,
    whose index name is not its folder's). Raises SignatureRefused; storage errors pass."""
    keys = trusted_keys(spec)
    if keys is None:
        return None
    try:
        return signing.verify_version_signature(
            store, version_prefix, keys, manifest_bytes=manifest_bytes, version=version
        )
    except signing.SignatureError as exc:
        raise SignatureRefused(exc.check.value, str(exc)) from None


def add_signing(job: dict[str, Any], spec: ModelLineageSpec, image: str) -> dict[str, Any]:
    """The trainer Job with what the provenance records (image, operator version) and, when
    the lineage signs, its key Secret mounted read-only as a file (only key signing.key)."""
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = container.setdefault("env", [])
    env.append({"name": provenance.TRAINER_IMAGE_ENV, "value": image})
    env.append({"name": provenance.OPERATOR_VERSION_ENV, "value": operator_version()})
    if spec.signing is None:
        return job
    env.append(
        {
            "name": signing.SIGNING_KEY_FILE_ENV,
            "value": f"{SIGNING_MOUNT}/{signing.SIGNING_KEY_SECRET_KEY}",
        }
    )
    container.setdefault("volumeMounts", []).append(
        {"name": SIGNING_VOLUME, "mountPath": SIGNING_MOUNT, "readOnly": True}
    )
    pod.setdefault("volumes", []).append(
        {
            "name": SIGNING_VOLUME,
            "secret": {
                "secretName": spec.signing.secret_ref.name,
                "items": [
                    {"key": signing.SIGNING_KEY_SECRET_KEY, "path": signing.SIGNING_KEY_SECRET_KEY}
                ],
                # The kubelet writes the file owned by root, and the trainer never runs as
                # root: 0400 is unreadable to it. Only this pod's one container mounts it.
                "defaultMode": 0o444,
            },
        }
    )
    return job


def serving_env(spec: ModelLineageSpec) -> list[dict[str, str]]:
    """Extra env for the serving container: the public keys the model server must find a
    valid signature from before it reports ready (none when the lineage does not sign)."""
    keys = trusted_keys(spec)
    if keys is None:
        return []
    return [{"name": signing.TRUSTED_KEYS_ENV, "value": signing.trusted_keys_json(keys)}]


def refuse_unsigned_recovery(
    store: VersionStore, spec: ModelLineageSpec, version: str, manifest_bytes: bytes
) -> str | None:
    """Why a version found by recovery must be left out of the index (None: keep it)."""
    try:
        verify_version(
            store, spec, version, record.version_uri(spec.storage.uri, version), manifest_bytes
        )
    except SignatureRefused as exc:
        return f"{exc.reason}: {exc}"
    except StorageError as exc:
        return f"its signature could not be read: {exc}"
    return None
