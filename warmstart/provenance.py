"""Build provenance: an in-toto Statement with the SLSA provenance v1 predicate per version.

Stored as ``<version>/provenance.json``, written before the manifest and signed with the
lineage's signing key. The format is a DSSE envelope (the envelope in-toto attestations and
model-signing bundles use)::

    {"payloadType": "application/vnd.in-toto+json",
     "payload": base64(statement JSON),
     "signatures": [{"keyid": <sha256 hex of the public key PEM>, "sig": base64(ECDSA)}]}

The signature is ECDSA over the DSSE pre-authentication encoding (PAE) of payloadType and
payload, with SHA-256/384/512 for P-256/384/521, so any DSSE verifier checks it with the
public key from spec.signing.trustedKeys. ``signatures`` is empty when the lineage does not
sign. The statement:

- subject: every model file with its sha256, and manifest.json (binding it to the version)
- predicate.buildDefinition.externalParameters: the resolved training spec
- predicate.buildDefinition.resolvedDependencies: the parent's manifest and every dataset
- predicate.runDetails.builder: the trainer image (its digest when the image is pinned by
  digest) and the operator version that launched it
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from warmstart import record, signing

PROVENANCE_NAME = "provenance.json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://warmstart.dev/trainer/train/v1"
BUILDER_ID = "https://warmstart.dev/trainer"
# Set by the operator on the trainer container: what the provenance says built the version.
TRAINER_IMAGE_ENV = "WARMSTART_TRAINER_IMAGE"
OPERATOR_VERSION_ENV = "WARMSTART_OPERATOR_VERSION"


class ProvenanceError(record.RecordError):
    """A provenance document is missing, malformed or not signed by a trusted key."""


@dataclass(frozen=True)
class Builder:
    """What ran the build: the trainer image reference and the operator that launched it."""

    image: str | None
    operator_version: str | None

    @property
    def image_digest(self) -> str | None:
        """The image's sha256 when it is referenced by digest (repo@sha256:...), else None."""
        if self.image and "@sha256:" in self.image:
            digest = self.image.rsplit("@", 1)[1]
            return digest if record.is_digest(digest) else None
        return None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Builder:
        return cls(env.get(TRAINER_IMAGE_ENV) or None, env.get(OPERATOR_VERSION_ENV) or None)


def _hex(digest: str) -> str:
    return digest.removeprefix(record.DIGEST_PREFIX)


def build_statement(
    manifest: record.Manifest,
    manifest_bytes: bytes,
    *,
    parameters: Mapping[str, Any],
    builder: Builder,
    started_on: str | None = None,
) -> dict[str, Any]:
    """The in-toto Statement (SLSA provenance v1) of a version about to be committed."""
    subjects = [
        {"name": entry.name, "digest": {"sha256": _hex(entry.sha256)}}
        for entry in sorted(manifest.files, key=lambda e: e.name)
    ]
    subjects.append(
        {
            "name": record.MANIFEST_NAME,
            "digest": {"sha256": _hex(record.sha256_bytes(manifest_bytes))},
        }
    )
    dependencies: list[dict[str, Any]] = []
    if manifest.parent is not None:
        dependencies.append(
            {
                "name": f"parent:{manifest.parent.version}",
                "uri": record.manifest_uri(manifest.parent.uri),
                "digest": {"sha256": _hex(manifest.parent.manifest_digest)},
            }
        )
    dependencies.extend(
        {
            "name": f"dataset:{ref.role}",
            "uri": ref.uri,
            "digest": {"sha256": _hex(ref.sha256)},
            "annotations": {"examples": ref.examples},
        }
        for ref in manifest.datasets
    )
    builder_json: dict[str, Any] = {"id": BUILDER_ID}
    if builder.operator_version:
        builder_json["version"] = {"warmstart-operator": builder.operator_version}
    if builder.image:
        image: dict[str, Any] = {"name": "trainer-image", "uri": builder.image}
        if builder.image_digest:
            image["digest"] = {"sha256": _hex(builder.image_digest)}
        builder_json["builderDependencies"] = [image]
    metadata: dict[str, Any] = {"invocationId": f"{manifest.lineage}/{manifest.version}"}
    if started_on:
        metadata["startedOn"] = started_on
    if manifest.created_at:
        metadata["finishedOn"] = manifest.created_at
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": dict(parameters),
                "internalParameters": {"software": dict(manifest.software)},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {"builder": builder_json, "metadata": metadata},
        },
    }


# --- DSSE ----------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature is computed over."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _hash_for(curve: ec.EllipticCurve) -> hashes.HashAlgorithm:
    return {256: hashes.SHA256(), 384: hashes.SHA384()}.get(curve.key_size, hashes.SHA512())


def envelope(statement: Mapping[str, Any], private_key_file: Path | None) -> bytes:
    """The DSSE envelope bytes; signed when a key file is given."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")
    signatures = []
    if private_key_file is not None:
        what = f"signing key {private_key_file}"
        try:
            pem = private_key_file.read_bytes()
        except OSError as exc:
            raise signing.SigningConfigError(f"{what}: cannot read: {exc.strerror}") from None
        key = signing._load_private_key(pem, what)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        sig = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(_hash_for(key.curve)))
        signatures.append(
            {"keyid": signing.key_id(public), "sig": base64.b64encode(sig).decode("ascii")}
        )
    document = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": signatures,
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


@dataclass(frozen=True)
class VerifiedProvenance:
    statement: dict[str, Any]
    signed_by: signing.TrustedKey | None


def open_envelope(
    data: bytes,
    *,
    where: str,
    trusted: Sequence[signing.TrustedKey] | None,
    manifest_digest: str | None = None,
) -> VerifiedProvenance:
    """Decode a provenance envelope. With ``trusted`` its signature must verify with one of
    those keys; with ``manifest_digest`` its manifest.json subject must match it."""
    try:
        document = json.loads(data.decode("utf-8"))
        if document["payloadType"] != PAYLOAD_TYPE:
            raise ProvenanceError(f"{where}: payloadType is not {PAYLOAD_TYPE}")
        payload = base64.b64decode(document["payload"], validate=True)
        statement = json.loads(payload)
        sigs = document["signatures"]
        if not isinstance(statement, dict) or not isinstance(sigs, list):
            raise ProvenanceError(f"{where}: not a DSSE envelope of an in-toto statement")
    except (UnicodeDecodeError, json.JSONDecodeError, binascii.Error, KeyError, TypeError):
        raise ProvenanceError(f"{where}: not a DSSE envelope of an in-toto statement") from None
    signer = None
    if trusted is not None:
        signer = _verify_signatures(payload, sigs, trusted, where)
    if manifest_digest is not None:
        subjects = statement.get("subject") or []
        named = [
            s for s in subjects if isinstance(s, dict) and s.get("name") == record.MANIFEST_NAME
        ]
        got = named[0].get("digest", {}).get("sha256") if named else None
        if got != _hex(manifest_digest):
            raise ProvenanceError(
                f"{where}: describes manifest sha256:{got}, the version's manifest is "
                f"{manifest_digest}: provenance of another version or build"
            )
    return VerifiedProvenance(statement, signer)


def _verify_signatures(
    payload: bytes, sigs: list[Any], trusted: Sequence[signing.TrustedKey], where: str
) -> signing.TrustedKey:
    if not sigs:
        raise ProvenanceError(f"{where}: unsigned")
    by_id = {key.key_id: key for key in trusted}
    message = pae(PAYLOAD_TYPE, payload)
    for entry in sigs:
        key = by_id.get(str(entry.get("keyid"))) if isinstance(entry, dict) else None
        if key is None:
            continue
        public = serialization.load_pem_public_key(key.pem)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        try:
            public.verify(
                base64.b64decode(str(entry.get("sig")), validate=True),
                message,
                ec.ECDSA(_hash_for(public.curve)),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            raise ProvenanceError(
                f"{where}: signature by {key.describe()} does not verify"
            ) from None
        return key
    ids = ", ".join(str(e.get("keyid", "?"))[:16] for e in sigs if isinstance(e, dict))
    raise ProvenanceError(f"{where}: signed by key(s) {ids}, none of them trusted")


def provenance_uri(version_prefix: str) -> str:
    return record.ensure_prefix(version_prefix) + PROVENANCE_NAME
