"""Certificate authorities and signing certificates for the trust tests (made fresh)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from warmstart import signing

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Authority:
    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    parents: tuple[x509.Certificate, ...] = ()  # up to the root, for an intermediate

    def chain_pem(self) -> bytes:
        """What a lineage trusts: this authority's certificates up to its root."""
        return b"".join(_pem(c) for c in (self.certificate, *self.parents))

    def trusted(self, name: str | None = None) -> signing.TrustedKey:
        root = self.parents[-1] if self.parents else self.certificate
        return signing.trusted_certificates(name or self.name, _pem(root))


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    public: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    signing_usage: bool = True,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=2))
        .not_valid_after(not_after or NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
    elif signing_usage:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_authority(name: str, parent: Authority | None = None) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    if parent is None:
        cert = _certificate(name, key.public_key(), _name(name), key, ca=True)
        return Authority(name, key, cert)
    cert = _certificate(name, key.public_key(), parent.certificate.subject, parent.key, ca=True)
    return Authority(name, key, cert, (parent.certificate, *parent.parents))


def make_signer(
    directory: Path,
    authority: Authority,
    subject: str,
    *,
    signing_usage: bool = True,
    not_after: dt.datetime | None = None,
) -> Path:
    """A signing key file as the Secret holds it: the key, its certificate, intermediates."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(
        subject,
        key.public_key(),
        authority.certificate.subject,
        authority.key,
        ca=False,
        signing_usage=signing_usage,
        not_after=not_after,
    )
    intermediates = (authority.certificate, *authority.parents[:-1]) if authority.parents else ()
    path = directory / f"{subject}.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + b"".join(_pem(c) for c in (cert, *intermediates))
    )
    path.chmod(0o600)
    return path
