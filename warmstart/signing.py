"""Signed versions: a model-signing (OpenSSF) signature of each version's manifest.

The hash chain (``warmstart.record``) proves nothing changed after a version was written; a
signature proves who wrote it. The trainer signs ``manifest.json`` with the lineage's
private key (an elliptic-curve key from a Secret) and stores the signature as
``<version>/manifest.sig`` BEFORE the manifest, so a committed version is signed from the
moment it exists. Every file is covered through the manifest, which lists each file's
sha256.

The signature is a Sigstore bundle in the OpenSSF model-signing format (the
``model-signing`` package, no network): a DSSE envelope whose in-toto statement names the
version (the signed "model" is the folder ``<version>/`` holding ``manifest.json``) and the
sha256 of the manifest. Key-based, the bundle names the public key; certificate-based (the
Secret holds the key followed by its certificate chain), it carries the certificates and
verifies when they chain to a certificate authority the lineage trusts. An auditor can
check a downloaded version with the model-signing CLI alone::

    model_signing verify key --signature manifest.sig --public_key key.pem \
        --ignore_unsigned_files <folder named after the version>
    model_signing verify certificate --signature manifest.sig --certificate_chain ca.pem \
        --ignore_unsigned_files <folder named after the version>

Verification here names the version and the check that failed (``SignatureCheck``):
unsigned, untrusted key or certificate, signature of another version, manifest edited
after signing, or a signature that does not verify. A lineage trusts several keys and
authorities at once so they can be rotated; removing one makes the versions it signed
unverifiable. What is trusted is parsed in ``warmstart.signing_keys``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from warmstart import record, signing_certs
from warmstart.signing_claims import (
    SIGNATURE_NAME,
    SignatureCheck,
    SignatureError,
    read_claims,
    signer_of,
    trust_candidates,
)
from warmstart.signing_keys import (
    TRUSTED_KEYS_ENV,
    SigningConfigError,
    TrustedKey,
    TrustKind,
    generate_private_key_pem,
    key_id,
    load_private_key,
    public_key_pem,
    trust_of,
    trusted_certificates,
    trusted_key,
    trusted_keys,
    trusted_keys_from_json,
    trusted_keys_json,
)

__all__ = [
    "SIGNATURE_NAME",
    "SIGNING_KEY_FILE_ENV",
    "SIGNING_KEY_SECRET_KEY",
    "TRUSTED_KEYS_ENV",
    "SignatureCheck",
    "SignatureError",
    "SigningConfigError",
    "TrustKind",
    "TrustedKey",
    "generate_private_key_pem",
    "key_id",
    "public_key_pem",
    "sign_manifest",
    "trust_of",
    "trusted_certificates",
    "trusted_key",
    "trusted_keys",
    "trusted_keys_from_json",
    "trusted_keys_json",
    "verify_manifest_signature",
    "verify_version_signature",
]

# Key of the Secret named by spec.signing.secretRef that holds the PEM private key, and for
# certificate-based signing its certificate (and intermediates) after it, in one file.
SIGNING_KEY_SECRET_KEY = "signing.key"  # noqa: S105 (a key name, not a secret)
# Where the trainer finds the private key file (a Secret volume).
SIGNING_KEY_FILE_ENV = "WARMSTART_SIGNING_KEY_FILE"

# provenance.py signs its attestation with the same key and reads it through this name.
_load_private_key = load_private_key


# --- signing -------------------------------------------------------------------------------


def _stage_manifest(root: Path, version: str, manifest_bytes: bytes) -> Path:
    # model-signing signs a folder; the folder's name is the model name in the statement, so
    # naming it after the version binds the signature to the version.
    folder = root / record.check_file_name(version)
    folder.mkdir()
    (folder / record.MANIFEST_NAME).write_bytes(manifest_bytes)
    return folder


def _hashing_config() -> Any:
    from model_signing import hashing  # noqa: PLC0415 (heavy import, only when used)

    config = hashing.Config()  # type: ignore[no-untyped-call]
    return config.use_file_serialization(hashing_algorithm="sha256")


def _read_key_file(private_key_file: Path) -> tuple[Any, tuple[bytes, bytes] | None]:
    what = f"signing key {private_key_file}"
    try:
        data = private_key_file.read_bytes()
    except OSError as exc:
        raise SigningConfigError(f"{what}: cannot read: {exc.strerror}") from None
    key = load_private_key(data, what)
    try:
        return key, signing_certs.signing_chain(data, key)
    except ValueError as exc:
        raise SigningConfigError(f"{what}: {exc}") from None


def sign_manifest(manifest_bytes: bytes, version: str, private_key_file: Path) -> bytes:
    """The model-signing bundle (bytes to store as ``manifest.sig``) for this manifest;
    certificate-based when the key file carries certificates after the key."""
    from model_signing import signing as ms_signing  # noqa: PLC0415

    _, chain = _read_key_file(private_key_file)
    with tempfile.TemporaryDirectory(prefix="warmstart-sign-") as tmp:
        root = Path(tmp)
        folder = _stage_manifest(root, version, manifest_bytes)
        signature = root / SIGNATURE_NAME
        config = ms_signing.Config()  # type: ignore[no-untyped-call]
        if chain is None:
            config = config.use_elliptic_key_signer(private_key=private_key_file)
        else:
            leaf, intermediates = root / "signing.crt", root / "chain.crt"
            leaf.write_bytes(chain[0])
            intermediates.write_bytes(chain[1])
            config = config.use_certificate_signer(
                private_key=private_key_file,
                signing_certificate=leaf,
                # model-signing cannot load an empty chain; the signing certificate
                # repeated in it is ignored when the chain is built at verification.
                certificate_chain=[intermediates if chain[1] else leaf],
            )
        config.set_hashing_config(_hashing_config()).sign(folder, signature)
        return signature.read_bytes()


def signing_key_file_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """The private key file the operator mounted for the trainer, if signing is configured."""
    value = (os.environ if env is None else env).get(SIGNING_KEY_FILE_ENV)
    return Path(value) if value else None


# --- verification --------------------------------------------------------------------------


class _NotTrusted(Exception):
    """The bundle's certificate does not chain to this authority, or may not sign."""


def _model_signing_verify(folder: Path, signature: bytes, trusted: TrustedKey, tmp: Path) -> None:
    """The model-signing library's own verification (certificate chain or key, signature,
    then every signed hash)."""
    from model_signing import verifying  # noqa: PLC0415
    from OpenSSL import crypto  # noqa: PLC0415 (model-signing's certificate verifier uses it)

    trust_file = tmp / f"{trusted.key_id}.pem"
    trust_file.write_bytes(trusted.pem)
    signature_file = tmp / SIGNATURE_NAME
    signature_file.write_bytes(signature)
    config = verifying.Config()  # type: ignore[no-untyped-call]
    if trusted.kind is TrustKind.CERTIFICATES:
        config = config.use_certificate_verifier(certificate_chain=[trust_file])
    else:
        config = config.use_elliptic_key_verifier(public_key=trust_file)
    try:
        config.set_hashing_config(_hashing_config()).verify(folder, signature_file)
    except crypto.X509StoreContextError as exc:
        raise _NotTrusted(f"{trusted.describe()}: {exc}") from None
    except ValueError as exc:
        if "cannot be used for signing" not in str(exc):
            raise
        raise _NotTrusted(f"{trusted.describe()}: the certificate may not sign") from None


def verify_manifest_signature(
    version: str, manifest_bytes: bytes, signature: bytes | None, trusted: Sequence[TrustedKey]
) -> TrustedKey:
    """Check that ``signature`` signs exactly these manifest bytes as ``version`` with a
    trusted key or a certificate from a trusted authority; returns the signer, else raises
    ``SignatureError`` naming the failed check."""
    if signature is None:
        raise SignatureError(version, SignatureCheck.UNSIGNED, f"no {SIGNATURE_NAME} beside it")
    if not trusted:
        raise SignatureError(version, SignatureCheck.UNTRUSTED_KEY, "no key is trusted")
    claims = read_claims(version, signature)
    candidates = trust_candidates(version, claims, trusted)
    stored = hashlib.sha256(manifest_bytes).hexdigest()
    refused_chains = []
    with tempfile.TemporaryDirectory(prefix="warmstart-verify-") as tmp:
        root = Path(tmp)
        folder = _stage_manifest(root, version, manifest_bytes)
        for key in candidates:
            try:
                _model_signing_verify(folder, signature, key, root)
            except _NotTrusted as exc:
                refused_chains.append(str(exc))
                continue
            except Exception:  # noqa: S112 (any failure: try the next key, explain below)
                continue
            # The statement is authentic now; it must also name this version (model-signing
            # treats the name as informative, a lineage does not).
            if claims.subject != version:
                raise SignatureError(
                    version,
                    SignatureCheck.OTHER_VERSION,
                    f"the signature was made for version {claims.subject!r}",
                )
            return signer_of(claims, key)
    if refused_chains and len(refused_chains) == len(candidates):
        # No trusted authority vouches for the certificate: what the bundle claims about the
        # version or manifest is unauthenticated, so the certificate is the reason.
        raise SignatureError(
            version,
            SignatureCheck.UNTRUSTED_CERTIFICATE,
            f"certificate {signing_certs.subject_of(claims.leaf)!r} is not trusted: "
            + "; ".join(refused_chains),
        )
    if claims.subject != version:
        raise SignatureError(
            version,
            SignatureCheck.OTHER_VERSION,
            f"the signature names version {claims.subject!r} and does not sign this manifest",
        )
    if claims.manifest_sha256 != stored:
        raise SignatureError(
            version,
            SignatureCheck.MANIFEST_EDITED,
            f"{record.MANIFEST_NAME} hashes to sha256:{stored}, the signature signed "
            f"sha256:{claims.manifest_sha256}",
        )
    tried = ", ".join(k.describe() for k in candidates)
    raise SignatureError(
        version, SignatureCheck.INVALID, f"the signature does not verify with {tried}"
    )


class SignatureReader(Protocol):
    """What reading a signature needs from object storage; ``warmstart.storage`` has it."""

    def get_bytes(self, uri: str) -> bytes: ...


def signature_uri(version_prefix: str) -> str:
    return record.ensure_prefix(version_prefix) + SIGNATURE_NAME


def read_signature(reader: SignatureReader, version_prefix: str) -> bytes | None:
    """The stored signature, or None when there is none (any other storage error raises)."""
    from warmstart.storage import ObjectNotFoundError  # noqa: PLC0415 (no boto3 for callers)

    try:
        return reader.get_bytes(signature_uri(version_prefix))
    except ObjectNotFoundError:
        return None


class VersionReader(SignatureReader, Protocol):
    def read_manifest(self, version_prefix: str) -> bytes: ...


def verify_version_signature(
    reader: VersionReader,
    version_prefix: str,
    trusted: Sequence[TrustedKey] | None = None,
    *,
    manifest_bytes: bytes | None = None,
    version: str | None = None,
    expected_digest: str | None = None,
    env: Mapping[str, str] | None = None,
) -> TrustedKey | None:
    """Verify the signature of the version stored at ``version_prefix``.

    ``trusted`` defaults to the keys in ``WARMSTART_TRUSTED_KEYS`` (how the operator tells
    the model server); with neither, the lineage does not sign and None is returned.
    ``version`` defaults to the folder name. ``expected_digest`` is the manifest digest the
    caller verified the files against: the manifest read here must still hash to it, so
    what is checked is what is loaded. Raises ``SignatureError`` (a ``RecordError``) or
    ``SigningConfigError``; storage errors pass through.
    """
    if trusted is None:
        text = (os.environ if env is None else env).get(TRUSTED_KEYS_ENV)
        if not text:
            return None
        trusted = trusted_keys_from_json(text)
    prefix = record.ensure_prefix(version_prefix)
    name = version or prefix.rstrip("/").rsplit("/", 1)[-1]
    data = reader.read_manifest(prefix) if manifest_bytes is None else manifest_bytes
    if expected_digest is not None:
        record.verify_manifest_digest(data, expected_digest, what=f"version {name}: manifest")
    return verify_manifest_signature(name, data, read_signature(reader, prefix), trusted)
