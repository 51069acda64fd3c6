"""ModelLineage spec.signing: who may sign this lineage's versions."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from warmstart.api.base import ApiModel
from warmstart.api.common import LocalObjectReference
from warmstart.api.fields import DnsLabel
from warmstart.api.markers import Cel, ListType

MAX_TRUSTED_KEYS = 8
MAX_TRUSTED_AUTHORITIES = 4
# A P-521 SubjectPublicKeyInfo PEM is under 300 characters; the bound keeps CEL cheap.
MAX_PUBLIC_KEY_LENGTH = 1024
# An elliptic-curve CA certificate is about 800 PEM characters: room for a root and a few
# intermediates, still cheap for CEL.
MAX_CERTIFICATE_CHAIN_LENGTH = 8192

PublicKeyPEM = Annotated[
    str,
    Field(min_length=1, max_length=MAX_PUBLIC_KEY_LENGTH),
    Cel(
        'self.matches("^[[:space:]]*-----BEGIN PUBLIC KEY-----[^-]+-----END PUBLIC KEY-----'
        '[[:space:]]*$")',
        "must be a PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)",
    ),
]

CertificateChainPEM = Annotated[
    str,
    Field(min_length=1, max_length=MAX_CERTIFICATE_CHAIN_LENGTH),
    Cel(
        'self.matches("^[[:space:]]*(-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----'
        '[[:space:]]*)+$")',
        "must be PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
    ),
]


class TrustedPublicKey(ApiModel):
    """A public key whose signatures this lineage accepts."""

    name: DnsLabel
    """A name for the key (e.g. ci-2026), shown in verification results."""

    public_key: PublicKeyPEM
    """Elliptic-curve public key (P-256, P-384 or P-521) in PEM (SubjectPublicKeyInfo)."""


class TrustedCertificateAuthority(ApiModel):
    """A certificate authority whose signing certificates this lineage accepts."""

    name: DnsLabel
    """A name for the authority (e.g. ml-platform-ca), shown in verification results."""

    certificate_chain: CertificateChainPEM
    """The authority's certificates in PEM: its self-signed root, and intermediates if
    signing certificates are issued by one. A signing certificate must chain to the root
    and allow digitalSignature (key usage) or codeSigning (extended key usage)."""


class Signing(ApiModel):
    """Signed versions: the trainer signs every manifest it commits, and the operator, the
    model server and `warmstart lineage verify` refuse a version whose signature does not
    verify with one of trustedKeys or a certificate issued by one of trustedCertificates."""

    crd_rules = (
        Cel(
            "(has(self.trustedKeys) ? size(self.trustedKeys) : 0)"
            " + (has(self.trustedCertificates) ? size(self.trustedCertificates) : 0) > 0",
            "list at least one trusted key or certificate authority",
            field_path=".trustedKeys",
            reason="FieldValueRequired",
        ),
    )

    secret_ref: LocalObjectReference
    """Secret in the lineage's namespace whose key signing.key holds the elliptic-curve
    private key (PEM) the trainer signs with; for certificate-based signing, followed by
    its certificate and any intermediates (PEM, signing certificate first). Only the
    trainer pod mounts it."""

    trusted_keys: Annotated[
        list[TrustedPublicKey],
        Field(max_length=MAX_TRUSTED_KEYS),
        ListType("map", ("name",)),
    ] = Field(default=None, validate_default=True)
    """Public keys whose signatures are accepted. List the new key beside the old one to
    rotate; removing a key makes the versions it signed unverifiable."""

    trusted_certificates: Annotated[
        list[TrustedCertificateAuthority],
        Field(max_length=MAX_TRUSTED_AUTHORITIES),
        ListType("map", ("name",)),
    ] = Field(default=None, validate_default=True)
    """Certificate authorities whose signing certificates are accepted (certificate-based
    signing, no network: the chain is checked here, not against a transparency log).
    Rotating works as for keys; removing an authority makes the versions its certificates
    signed unverifiable."""

    @field_validator("trusted_keys", "trusted_certificates", mode="before")
    @classmethod
    def _absent_is_empty(cls, value: object) -> object:
        # Absent in the object (the CRD has no empty-list defaults) reads as empty here, so
        # callers iterate either list without a None check.
        return [] if value is None else value

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Absent, not [], on the way back out: objects round-trip as they were written.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v != []}

    @model_validator(mode="after")
    def _trusts_something(self) -> Signing:
        # The same rule as crd_rules, for objects that never went through the API server.
        if not self.trusted_keys and not self.trusted_certificates:
            raise ValueError("list at least one trusted key or certificate authority")
        return self


class HistoryHead(ApiModel):
    """The newest entry of the serving history in object storage (<storage.uri>/_history/),
    kept here, outside the bucket, so removing or editing that entry is detected."""

    seq: Annotated[int, Field(ge=1)]
    """Its sequence number."""

    digest: Annotated[str, Field(max_length=71)]
    """sha256 of its bytes."""
