"""What a lineage trusts to sign its versions: public keys and certificate authorities.

``warmstart.signing`` signs and verifies; this module parses the trust it verifies against
(``spec.signing.trustedKeys`` and ``spec.signing.trustedCertificates``), carries it to the
model server as JSON (``WARMSTART_TRUSTED_KEYS``) and reads the trainer's signing key. A
bad key or certificate is reported by name, never by its bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from warmstart import signing_certs

if TYPE_CHECKING:
    from warmstart.api.signing import Signing

# How the server is told what to trust: a JSON list of {"name", "publicKey"} or
# {"name", "certificateChain"} (PEM), the same entries as spec.signing.
TRUSTED_KEYS_ENV = "WARMSTART_TRUSTED_KEYS"

_SUPPORTED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})


class SigningConfigError(ValueError):
    """A key given to sign or verify with is unusable; the message names it (never its bytes)."""


class TrustKind(StrEnum):
    KEY = "publicKey"
    CERTIFICATES = "certificateChain"


def key_id(public_pem: bytes) -> str:
    """The key's id: sha256 (hex) of its SubjectPublicKeyInfo PEM, as model-signing's hint."""
    return hashlib.sha256(public_pem).hexdigest()


@dataclass(frozen=True)
class TrustedKey:
    """What a lineage trusts: a public key (``pem`` is normalised SubjectPublicKeyInfo PEM)
    or a certificate authority (``pem`` is its certificate chain, a root among them), whose
    certificates may sign. ``label`` says more about it (a certificate's subject)."""

    name: str
    pem: bytes
    kind: TrustKind = TrustKind.KEY
    label: str = ""

    @property
    def key_id(self) -> str:
        return key_id(self.pem)

    def describe(self) -> str:
        if self.kind is TrustKind.CERTIFICATES:
            return f"certificate authority {self.name} ({self.label})"
        return f"{self.name} ({self.label + ', ' if self.label else ''}{self.key_id[:16]})"


def _check_curve(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey, what: str) -> None:
    if key.curve.name not in _SUPPORTED_CURVES:
        raise SigningConfigError(
            f"{what}: curve {key.curve.name} is not supported; use P-256, P-384 or P-521"
        )


def public_key_of(
    key: ec.EllipticCurvePublicKey | object, what: str, *, name: str, label: str = ""
) -> TrustedKey:
    """A trusted key from a parsed public key (a certificate's, or a PEM's)."""
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningConfigError(f"{what}: not an elliptic-curve key (model-signing needs one)")
    _check_curve(key, what)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TrustedKey(name=name, pem=pem, label=label)


def trusted_key(name: str, public_pem: str | bytes) -> TrustedKey:
    """Parse one trusted public key; ``SigningConfigError`` names the key when it is bad."""
    data = public_pem.encode("ascii", "replace") if isinstance(public_pem, str) else public_pem
    what = f"trusted key {name!r}"
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningConfigError(f"{what}: not a PEM public key") from None
    return public_key_of(key, what, name=name)


def trusted_certificates(name: str, chain_pem: str | bytes) -> TrustedKey:
    """Parse a trusted certificate authority (its chain, the root included)."""
    data = chain_pem.encode("ascii", "replace") if isinstance(chain_pem, str) else chain_pem
    what = f"trusted certificate authority {name!r}"
    try:
        pem, subject = signing_certs.authority_chain(data)
    except ValueError as exc:
        raise SigningConfigError(f"{what}: {exc}") from None
    return TrustedKey(name=name, pem=pem, kind=TrustKind.CERTIFICATES, label=subject)


def trusted_keys(pairs: Iterable[tuple[str, str | bytes]]) -> tuple[TrustedKey, ...]:
    return tuple(trusted_key(name, pem) for name, pem in pairs)


def trust_of(spec: Signing) -> tuple[TrustedKey, ...]:
    """Everything ``spec.signing`` trusts: its public keys, then its certificate authorities."""
    keys = trusted_keys((k.name, k.public_key) for k in spec.trusted_keys)
    authorities = tuple(
        trusted_certificates(c.name, c.certificate_chain) for c in spec.trusted_certificates
    )
    return keys + authorities


def trusted_keys_json(keys: Sequence[TrustedKey]) -> str:
    """The value of ``WARMSTART_TRUSTED_KEYS`` for these keys and authorities."""
    return json.dumps([{"name": k.name, k.kind.value: k.pem.decode("ascii")} for k in keys])


def trusted_keys_from_json(text: str, *, source: str = TRUSTED_KEYS_ENV) -> tuple[TrustedKey, ...]:
    """Parse ``WARMSTART_TRUSTED_KEYS``; ``SigningConfigError`` names the bad entry."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SigningConfigError(f"{source}: not valid JSON: {exc.msg}") from None
    if not isinstance(raw, list) or not raw:
        raise SigningConfigError(f"{source}: expected a non-empty JSON list of keys")
    keys = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise SigningConfigError(f"{source}[{index}]: expected {{name, publicKey}}")
        name = str(item.get("name") or f"key-{index}")
        if isinstance(item.get(TrustKind.CERTIFICATES.value), str):
            keys.append(trusted_certificates(name, item[TrustKind.CERTIFICATES.value]))
        elif isinstance(item.get(TrustKind.KEY.value), str):
            keys.append(trusted_key(name, item[TrustKind.KEY.value]))
        else:
            raise SigningConfigError(
                f"{source}[{index}]: expected {{name, publicKey}} or {{name, certificateChain}}"
            )
    return tuple(keys)


def generate_private_key_pem() -> bytes:
    """A new P-256 private key (PKCS#8 PEM, unencrypted: it lives in a Secret)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(private_pem: bytes, *, what: str = "signing key") -> bytes:
    """The SubjectPublicKeyInfo PEM of a private key (what goes into spec.signing)."""
    key = load_private_key(private_pem, what)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(private_pem: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    """The private key of a PEM file (certificates after it, if any, are ignored here)."""
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Never echo the key material: the message names only where it came from.
        raise SigningConfigError(f"{what}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningConfigError(f"{what}: not an elliptic-curve key (model-signing needs one)")
    _check_curve(key, what)
    return key
