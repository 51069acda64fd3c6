"""X.509 certificates for certificate-based signing (model-signing's certificate signer).

A lineage may trust a certificate authority instead of (or beside) raw public keys: the
trainer's signing Secret then holds the private key followed by its certificate (and any
intermediates), and a version verifies when that certificate chains to a trusted root and
may sign code. These helpers check what model-signing leaves to its caller, with messages
that name what is wrong, never the bytes.

model-signing checks the chain at the time the signing certificate was issued (a bundle
carries no timestamp), so an expired certificate is refused where it can be: when signing.
"""

from __future__ import annotations

import datetime as dt
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_CERTIFICATE_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----"
)


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def subject_of(certificate: x509.Certificate) -> str:
    """The certificate's common name (or its whole subject when it has none)."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def certificates_in(data: bytes) -> list[x509.Certificate]:
    """Every PEM certificate in ``data`` (other blocks, e.g. a private key, are skipped)."""
    blocks = _CERTIFICATE_BLOCK.findall(data)
    try:
        return [x509.load_pem_x509_certificate(block) for block in blocks]
    except ValueError:
        raise ValueError("holds a CERTIFICATE block that does not parse") from None


def authority_chain(data: bytes) -> tuple[bytes, str]:
    """Normalised PEM of a trusted CA chain and the root's name; ``ValueError`` says why
    the chain cannot anchor trust."""
    certificates = certificates_in(data)
    if not certificates:
        raise ValueError("not a PEM certificate chain (no CERTIFICATE block)")
    roots = [c for c in certificates if c.issuer == c.subject]
    if not roots:
        # OpenSSL (as model-signing uses it) only anchors a chain at a self-signed root.
        raise ValueError("holds no self-signed root certificate")
    for certificate in certificates:
        try:
            is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            is_ca = None
        if is_ca is None or not is_ca.value.ca:
            raise ValueError(f"certificate {subject_of(certificate)!r} is not a CA certificate")
    return b"".join(_pem(c) for c in certificates), subject_of(roots[0])


def may_sign(certificate: x509.Certificate) -> bool:
    """Whether model-signing accepts the certificate for signing: key usage
    digitalSignature, or extended key usage codeSigning."""
    extensions = certificate.extensions
    try:
        if extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        usage = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CODE_SIGNING in usage


def signing_chain(
    data: bytes, key: ec.EllipticCurvePrivateKey, *, now: dt.datetime | None = None
) -> tuple[bytes, bytes] | None:
    """The (signing certificate, intermediates) PEM of a signing key file that carries
    certificates after the key, checked for use now; None for a bare key."""
    certificates = certificates_in(data)
    if not certificates:
        return None
    leaf, chain = certificates[0], certificates[1:]
    name = subject_of(leaf)
    if leaf.public_key() != key.public_key():
        raise ValueError(f"certificate {name!r} is not the certificate of the private key")
    when = now or dt.datetime.now(dt.UTC)
    if when > leaf.not_valid_after_utc:
        raise ValueError(f"certificate {name!r} expired at {_stamp(leaf.not_valid_after_utc)}")
    if when < leaf.not_valid_before_utc:
        raise ValueError(
            f"certificate {name!r} is not valid before {_stamp(leaf.not_valid_before_utc)}"
        )
    if not may_sign(leaf):
        raise ValueError(f"certificate {name!r} may not sign (no digitalSignature or codeSigning)")
    return _pem(leaf), b"".join(_pem(c) for c in chain)


def leaf_of_bundle(der: bytes) -> x509.Certificate:
    """The signing certificate a bundle carries (DER); ``ValueError`` when it does not parse."""
    return x509.load_der_x509_certificate(der)
