"""Reading a model-signing bundle before trusting it, to pick what may have made it and to
explain a failure by the check that failed (``warmstart.signing`` verifies)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from warmstart import record, signing_certs
from warmstart.signing_keys import TrustedKey, TrustKind, public_key_of

SIGNATURE_NAME = "manifest.sig"
_MAX_SIGNATURE_BYTES = 64 * 1024


class SignatureCheck(StrEnum):
    """The check a version failed; also the reason the operator writes into conditions."""

    UNSIGNED = "Unsigned"
    MALFORMED = "MalformedSignature"
    UNTRUSTED_KEY = "UntrustedKey"
    UNTRUSTED_CERTIFICATE = "UntrustedCertificate"
    OTHER_VERSION = "SignatureOfAnotherVersion"
    MANIFEST_EDITED = "ManifestEditedAfterSigning"
    INVALID = "InvalidSignature"


class SignatureError(record.RecordError):
    """A version's signature does not hold; names the version and the failed check."""

    def __init__(self, version: str, check: SignatureCheck, detail: str) -> None:
        super().__init__(f"version {version}: {check.value}: {detail}")
        self.version = version
        self.check = check
        self.detail = detail


@dataclass(frozen=True)
class Claims:
    """What a bundle says, read WITHOUT trusting it: used to explain a failure."""

    key_hint: str
    leaf: Any  # the signing certificate of a certificate-signed bundle, else None
    subject: str
    manifest_sha256: str | None


def read_claims(version: str, signature: bytes) -> Claims:
    def bad(why: str) -> SignatureError:
        return SignatureError(version, SignatureCheck.MALFORMED, f"{SIGNATURE_NAME}: {why}")

    if len(signature) > _MAX_SIGNATURE_BYTES:
        raise bad(f"larger than {_MAX_SIGNATURE_BYTES} bytes")
    try:
        bundle = json.loads(signature.decode("utf-8"))
        material = bundle["verificationMaterial"]
        chain = material.get("x509CertificateChain")
        hint = "" if chain else material["publicKey"].get("hint", "")
        leaf = (
            signing_certs.leaf_of_bundle(base64.b64decode(chain["certificates"][0]["rawBytes"]))
            if chain
            else None
        )
        payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True))
        subjects = payload["subject"]
        resources = payload["predicate"]["resources"]
    except (UnicodeDecodeError, json.JSONDecodeError, binascii.Error):
        raise bad("not a model-signing bundle (JSON with a DSSE envelope)") from None
    except (KeyError, TypeError, AttributeError, IndexError):
        raise bad("not a key- or certificate-signed model-signing bundle") from None
    except ValueError:
        raise bad("its signing certificate does not parse") from None
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(resources, list):
        raise bad("expected one subject and a list of resources")
    digest = next(
        (
            str(item.get("digest"))
            for item in resources
            if isinstance(item, dict) and item.get("name") == record.MANIFEST_NAME
        ),
        None,
    )
    return Claims(str(hint), leaf, str(subjects[0].get("name")), digest)


def trust_candidates(
    version: str, claims: Claims, trusted: Sequence[TrustedKey]
) -> list[TrustedKey]:
    """What may have made the signature, or ``SignatureError`` when nothing trusted could."""
    everything = ", ".join(k.describe() for k in trusted)
    if claims.leaf is not None:
        authorities = [k for k in trusted if k.kind is TrustKind.CERTIFICATES]
        if not authorities:
            raise SignatureError(
                version,
                SignatureCheck.UNTRUSTED_CERTIFICATE,
                f"signed with certificate {signing_certs.subject_of(claims.leaf)!r}; the "
                f"lineage trusts no certificate authority ({everything})",
            )
        return authorities
    keys = [k for k in trusted if k.kind is TrustKind.KEY]
    candidates = [k for k in keys if k.key_id == claims.key_hint] if claims.key_hint else keys
    if claims.key_hint and not candidates:
        raise SignatureError(
            version,
            SignatureCheck.UNTRUSTED_KEY,
            f"signed by key {claims.key_hint[:16]}, which is not among the trusted keys "
            f"({everything})",
        )
    return candidates


def signer_of(claims: Claims, trusted: TrustedKey) -> TrustedKey:
    """Who signed: the trusted key, or the certificate's key as issued by the authority
    (its key_id is the one provenance.json names)."""
    if claims.leaf is None:
        return trusted
    return public_key_of(
        claims.leaf.public_key(),
        "signing certificate",
        name=signing_certs.subject_of(claims.leaf),
        label=f"issued by {trusted.name}",
    )
