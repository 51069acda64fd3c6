"""Signed versions: a model-signing (OpenSSF) signature of each version's manifest.

The hash chain (``warmstart.record``) proves nothing changed after a version was written; a
signature proves who wrote it. The trainer signs ``manifest.json`` with the lineage's
private key (an elliptic-curve key from a Secret) and stores the signature as
``<version>/manifest.sig`` BEFORE the manifest, so a committed version is signed from the
moment it exists. Every file is covered through the manifest, which lists each file's
sha256.

The signature is a Sigstore bundle in the OpenSSF model-signing format (the
``model-signing`` package, key-based, no network): a DSSE envelope whose in-toto statement
names the version (the signed "model" is the folder ``<version>/`` holding
``manifest.json``) and the sha256 of the manifest. An auditor can check a downloaded
version with the model-signing CLI alone::

    model_signing verify key --signature manifest.sig --public_key key.pem \
        --ignore_unsigned_files <folder named after the version>

Verification here names the version and the check that failed (``SignatureCheck``):
unsigned, untrusted key, signature of another version, manifest edited after signing, or a
signature that does not verify. A lineage trusts several public keys at once so keys can be
rotated; removing a key makes the versions it signed unverifiable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from warmstart import record

SIGNATURE_NAME = "manifest.sig"
# Key of the Secret named by spec.signing.secretRef that holds the PEM private key.
SIGNING_KEY_SECRET_KEY = "signing.key"  # noqa: S105 (a key name, not a secret)
# Where the trainer finds the private key file (a Secret volume), and how the server is
# told which public keys to trust (JSON list of {"name", "publicKey"}).
SIGNING_KEY_FILE_ENV = "WARMSTART_SIGNING_KEY_FILE"
TRUSTED_KEYS_ENV = "WARMSTART_TRUSTED_KEYS"

_SUPPORTED_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})
_MAX_SIGNATURE_BYTES = 64 * 1024


class SignatureCheck(StrEnum):
    """The check a version failed; also the reason the operator writes into conditions."""

    UNSIGNED = "Unsigned"
    MALFORMED = "MalformedSignature"
    UNTRUSTED_KEY = "UntrustedKey"
    OTHER_VERSION = "SignatureOfAnotherVersion"
    MANIFEST_EDITED = "ManifestEditedAfterSigning"
    INVALID = "InvalidSignature"


class SigningConfigError(ValueError):
    """A key given to sign or verify with is unusable; the message names it (never its bytes)."""


class SignatureError(record.RecordError):
    """A version's signature does not hold; names the version and the failed check."""

    def __init__(self, version: str, check: SignatureCheck, detail: str) -> None:
        super().__init__(f"version {version}: {check.value}: {detail}")
        self.version = version
        self.check = check
        self.detail = detail


# --- keys ----------------------------------------------------------------------------------


def key_id(public_pem: bytes) -> str:
    """The key's id: sha256 (hex) of its SubjectPublicKeyInfo PEM, as model-signing's hint."""
    return hashlib.sha256(public_pem).hexdigest()


@dataclass(frozen=True)
class TrustedKey:
    """A public key a lineage trusts; ``pem`` is normalised SubjectPublicKeyInfo PEM."""

    name: str
    pem: bytes

    @property
    def key_id(self) -> str:
        return key_id(self.pem)

    def describe(self) -> str:
        return f"{self.name} ({self.key_id[:16]})"


def _check_curve(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey, what: str) -> None:
    if key.curve.name not in _SUPPORTED_CURVES:
        raise SigningConfigError(
            f"{what}: curve {key.curve.name} is not supported; use P-256, P-384 or P-521"
        )


def trusted_key(name: str, public_pem: str | bytes) -> TrustedKey:
    """Parse one trusted public key; ``SigningConfigError`` names the key when it is bad."""
    data = public_pem.encode("ascii", "replace") if isinstance(public_pem, str) else public_pem
    what = f"trusted key {name!r}"
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningConfigError(f"{what}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SigningConfigError(f"{what}: not an elliptic-curve key (model-signing needs one)")
    _check_curve(key, what)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return TrustedKey(name=name, pem=pem)


def trusted_keys(pairs: Iterable[tuple[str, str | bytes]]) -> tuple[TrustedKey, ...]:
    return tuple(trusted_key(name, pem) for name, pem in pairs)


def trusted_keys_json(keys: Sequence[TrustedKey]) -> str:
    """The value of ``WARMSTART_TRUSTED_KEYS`` for these keys."""
    return json.dumps([{"name": k.name, "publicKey": k.pem.decode("ascii")} for k in keys])


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
        if not isinstance(item, dict) or not isinstance(item.get("publicKey"), str):
            raise SigningConfigError(f"{source}[{index}]: expected {{name, publicKey}}")
        keys.append(trusted_key(str(item.get("name") or f"key-{index}"), item["publicKey"]))
    return tuple(keys)


def generate_private_key_pem() -> bytes:
    """A new P-256 private key (PKCS#8 PEM, unencrypted: it lives in a Secret)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(private_pem: bytes, *, what: str = "signing key") -> bytes:
    """The SubjectPublicKeyInfo PEM of a private key (what goes into spec.signing)."""
    key = _load_private_key(private_pem, what)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _load_private_key(private_pem: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Never echo the key material: the message names only where it came from.
        raise SigningConfigError(f"{what}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SigningConfigError(f"{what}: not an elliptic-curve key (model-signing needs one)")
    _check_curve(key, what)
    return key


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


def sign_manifest(manifest_bytes: bytes, version: str, private_key_file: Path) -> bytes:
    """The model-signing bundle (bytes to store as ``manifest.sig``) for this manifest."""
    from model_signing import signing as ms_signing  # noqa: PLC0415

    what = f"signing key {private_key_file}"
    try:
        _load_private_key(private_key_file.read_bytes(), what)
    except OSError as exc:
        raise SigningConfigError(f"{what}: cannot read: {exc.strerror}") from None
    with tempfile.TemporaryDirectory(prefix="warmstart-sign-") as tmp:
        root = Path(tmp)
        folder = _stage_manifest(root, version, manifest_bytes)
        signature = root / SIGNATURE_NAME
        (
            ms_signing.Config()  # type: ignore[no-untyped-call]
            .use_elliptic_key_signer(private_key=private_key_file)
            .set_hashing_config(_hashing_config())
            .sign(folder, signature)
        )
        return signature.read_bytes()


def signing_key_file_from_env(env: Mapping[str, str] | None = None) -> Path | None:
    """The private key file the operator mounted for the trainer, if signing is configured."""
    value = (os.environ if env is None else env).get(SIGNING_KEY_FILE_ENV)
    return Path(value) if value else None


# --- verification --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claims:
    """What a bundle says, read WITHOUT trusting it: used to explain a failure."""

    key_hint: str
    subject: str
    manifest_sha256: str | None


def _read_claims(version: str, signature: bytes) -> _Claims:
    def bad(why: str) -> SignatureError:
        return SignatureError(version, SignatureCheck.MALFORMED, f"{SIGNATURE_NAME}: {why}")

    if len(signature) > _MAX_SIGNATURE_BYTES:
        raise bad(f"larger than {_MAX_SIGNATURE_BYTES} bytes")
    try:
        bundle = json.loads(signature.decode("utf-8"))
        hint = bundle["verificationMaterial"]["publicKey"].get("hint", "")
        payload = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"], validate=True))
        subjects = payload["subject"]
        resources = payload["predicate"]["resources"]
    except (UnicodeDecodeError, json.JSONDecodeError, binascii.Error):
        raise bad("not a model-signing bundle (JSON with a DSSE envelope)") from None
    except (KeyError, TypeError, AttributeError):
        raise bad("not a key-signed model-signing bundle") from None
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
    return _Claims(key_hint=str(hint), subject=str(subjects[0].get("name")), manifest_sha256=digest)


def _model_signing_verify(folder: Path, signature: bytes, key: TrustedKey, tmp: Path) -> None:
    """The model-signing library's own verification (signature, then every signed hash)."""
    from model_signing import verifying  # noqa: PLC0415

    key_file = tmp / f"{key.key_id}.pem"
    key_file.write_bytes(key.pem)
    signature_file = tmp / SIGNATURE_NAME
    signature_file.write_bytes(signature)
    (
        verifying.Config()  # type: ignore[no-untyped-call]
        .use_elliptic_key_verifier(public_key=key_file)
        .set_hashing_config(_hashing_config())
        .verify(folder, signature_file)
    )


def verify_manifest_signature(
    version: str, manifest_bytes: bytes, signature: bytes | None, trusted: Sequence[TrustedKey]
) -> TrustedKey:
    """Check that ``signature`` signs exactly these manifest bytes as ``version`` with a
    trusted key; returns that key, else raises ``SignatureError`` naming the failed check."""
    if signature is None:
        raise SignatureError(version, SignatureCheck.UNSIGNED, f"no {SIGNATURE_NAME} beside it")
    if not trusted:
        raise SignatureError(version, SignatureCheck.UNTRUSTED_KEY, "no key is trusted")
    claims = _read_claims(version, signature)
    candidates = [k for k in trusted if k.key_id == claims.key_hint] if claims.key_hint else []
    if claims.key_hint and not candidates:
        raise SignatureError(
            version,
            SignatureCheck.UNTRUSTED_KEY,
            f"signed by key {claims.key_hint[:16]}, which is not among the trusted keys "
            f"({', '.join(k.describe() for k in trusted)})",
        )
    stored = hashlib.sha256(manifest_bytes).hexdigest()
    with tempfile.TemporaryDirectory(prefix="warmstart-verify-") as tmp:
        root = Path(tmp)
        folder = _stage_manifest(root, version, manifest_bytes)
        for key in candidates or list(trusted):
            try:
                _model_signing_verify(folder, signature, key, root)
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
            return key
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
    tried = ", ".join(k.describe() for k in candidates or trusted)
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
