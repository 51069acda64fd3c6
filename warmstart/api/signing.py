"""ModelLineage spec.signing: who may sign this lineage's versions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from warmstart.api.base import ApiModel
from warmstart.api.common import LocalObjectReference
from warmstart.api.fields import DnsLabel
from warmstart.api.markers import Cel, ListType

MAX_TRUSTED_KEYS = 8
# A P-521 SubjectPublicKeyInfo PEM is under 300 characters; the bound keeps CEL cheap.
MAX_PUBLIC_KEY_LENGTH = 1024

PublicKeyPEM = Annotated[
    str,
    Field(min_length=1, max_length=MAX_PUBLIC_KEY_LENGTH),
    Cel(
        'self.matches("^[[:space:]]*-----BEGIN PUBLIC KEY-----[^-]+-----END PUBLIC KEY-----'
        '[[:space:]]*$")',
        "must be a PEM public key (-----BEGIN PUBLIC KEY----- ... -----END PUBLIC KEY-----)",
    ),
]


class TrustedPublicKey(ApiModel):
    """A public key whose signatures this lineage accepts."""

    name: DnsLabel
    """A name for the key (e.g. ci-2026), shown in verification results."""

    public_key: PublicKeyPEM
    """Elliptic-curve public key (P-256, P-384 or P-521) in PEM (SubjectPublicKeyInfo)."""


class Signing(ApiModel):
    """Signed versions: the trainer signs every manifest it commits, and the operator, the
    model server and `warmstart lineage verify` refuse a version whose signature does not
    verify with one of trustedKeys."""

    secret_ref: LocalObjectReference
    """Secret in the lineage's namespace whose key signing.key holds the elliptic-curve
    private key (PEM) the trainer signs with. Only the trainer pod mounts it."""

    trusted_keys: Annotated[
        list[TrustedPublicKey],
        Field(min_length=1, max_length=MAX_TRUSTED_KEYS),
        ListType("map", ("name",)),
    ]
    """Public keys whose signatures are accepted. List the new key beside the old one to
    rotate; removing a key makes the versions it signed unverifiable."""


class HistoryHead(ApiModel):
    """The newest entry of the serving history in object storage (<storage.uri>/_history/),
    kept here, outside the bucket, so removing or editing that entry is detected."""

    seq: Annotated[int, Field(ge=1)]
    """Its sequence number."""

    digest: Annotated[str, Field(max_length=71)]
    """sha256 of its bytes."""
