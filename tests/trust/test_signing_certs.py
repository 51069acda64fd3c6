"""Certificate-based signing: a version signed with a certificate from a trusted authority
verifies; every other certificate is refused with the version and the check named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.trust.certs import NOW, Authority, make_authority, make_signer
from tests.trust.keys import make_key, manifest_bytes
from tests.trust.test_signing import _Stored, refusal
from warmstart import record, signing
from warmstart.api.signing import Signing
from warmstart.signing import SignatureCheck


@pytest.fixture(scope="module")
def cas() -> dict[str, Authority]:
    root = make_authority("platform-root")
    return {
        "root": root,
        "issuing": make_authority("platform-issuing", root),
        "other": make_authority("someone-else"),
        "next": make_authority("platform-root-2027"),
    }


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("certs")


def test_certificate_signed_version_verifies_and_names_the_certificate(
    cas: dict[str, Authority], keydir: Path
) -> None:
    data = manifest_bytes("v1")
    # Issued by an intermediate: the key file carries it, the lineage trusts only the root.
    key_file = make_signer(keydir, cas["issuing"], "trainer-ci")
    sig = signing.sign_manifest(data, "v1", key_file)
    signer = signing.verify_manifest_signature("v1", data, sig, [cas["root"].trusted()])
    assert signer.name == "trainer-ci"
    assert "issued by platform-root" in signer.describe()
    # Its key_id is the signing key's, the id provenance.json records for this signer.
    assert signer.key_id == signing.key_id(signing.public_key_pem(key_file.read_bytes()))


def test_model_signing_verifies_it_with_the_authority_alone(
    cas: dict[str, Authority], keydir: Path, tmp_path: Path
) -> None:
    from model_signing import verifying

    data = manifest_bytes("v1")
    sig = signing.sign_manifest(data, "v1", make_signer(keydir, cas["root"], "auditor-check"))
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / record.MANIFEST_NAME).write_bytes(data)
    (folder / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "manifest.sig").write_bytes(sig)
    (tmp_path / "ca.pem").write_bytes(cas["root"].chain_pem())
    verifier = (
        verifying.Config()  # type: ignore[no-untyped-call]
        .use_certificate_verifier(certificate_chain=[tmp_path / "ca.pem"])
        .set_ignore_unsigned_files(True)
    )
    verifier.verify(folder, tmp_path / "manifest.sig")


def test_certificate_from_an_untrusted_authority_is_refused(
    cas: dict[str, Authority], keydir: Path
) -> None:
    data = manifest_bytes("v2")
    sig = signing.sign_manifest(data, "v2", make_signer(keydir, cas["other"], "intruder"))
    error = refusal("v2", data, sig, [cas["root"].trusted()])
    assert error.check == SignatureCheck.UNTRUSTED_CERTIFICATE
    assert "'intruder'" in error.detail
    assert "platform-root" in error.detail


def test_a_lineage_trusting_only_keys_refuses_a_certificate_and_vice_versa(
    cas: dict[str, Authority], keydir: Path
) -> None:
    key = make_key(keydir, "ci-key")
    data = manifest_bytes("v3")
    by_certificate = signing.sign_manifest(data, "v3", make_signer(keydir, cas["root"], "ci"))
    error = refusal("v3", data, by_certificate, [key.trusted])
    assert error.check == SignatureCheck.UNTRUSTED_CERTIFICATE
    assert "trusts no certificate authority" in error.detail
    by_key = signing.sign_manifest(data, "v3", key.private_file)
    assert refusal("v3", data, by_key, [cas["root"].trusted()]).check == (
        SignatureCheck.UNTRUSTED_KEY
    )
    # Both kinds trusted at once: each verifies with its own.
    both = [key.trusted, cas["root"].trusted()]
    assert signing.verify_manifest_signature("v3", data, by_key, both) == key.trusted
    assert signing.verify_manifest_signature("v3", data, by_certificate, both).name == "ci"


def test_edited_manifest_and_another_versions_signature(
    cas: dict[str, Authority], keydir: Path
) -> None:
    key_file = make_signer(keydir, cas["root"], "ci-edit")
    data = manifest_bytes("v4")
    sig = signing.sign_manifest(data, "v4", key_file)
    trusted = [cas["root"].trusted()]
    assert refusal("v4", manifest_bytes("v4", metric=0.9), sig, trusted).check == (
        SignatureCheck.MANIFEST_EDITED
    )
    assert refusal("v5", manifest_bytes("v5"), sig, trusted).check == (SignatureCheck.OTHER_VERSION)


def test_rotating_authorities_keeps_older_versions_until_removed(
    cas: dict[str, Authority], keydir: Path
) -> None:
    old = manifest_bytes("v1")
    old_sig = signing.sign_manifest(old, "v1", make_signer(keydir, cas["root"], "ci-2026"))
    new = manifest_bytes("v2")
    new_sig = signing.sign_manifest(new, "v2", make_signer(keydir, cas["next"], "ci-2027"))
    rotating = [cas["next"].trusted(), cas["root"].trusted()]
    assert signing.verify_manifest_signature("v1", old, old_sig, rotating).name == "ci-2026"
    assert signing.verify_manifest_signature("v2", new, new_sig, rotating).name == "ci-2027"
    error = refusal("v1", old, old_sig, [cas["next"].trusted()])
    assert error.check == SignatureCheck.UNTRUSTED_CERTIFICATE


def test_unusable_signing_certificates_are_refused_when_signing(
    cas: dict[str, Authority], keydir: Path
) -> None:
    data = manifest_bytes("v1")
    expired = make_signer(keydir, cas["root"], "expired", not_after=NOW - dt.timedelta(days=1))
    with pytest.raises(signing.SigningConfigError, match="'expired' expired at"):
        signing.sign_manifest(data, "v1", expired)
    no_usage = make_signer(keydir, cas["root"], "tls-only", signing_usage=False)
    with pytest.raises(signing.SigningConfigError, match="'tls-only' may not sign"):
        signing.sign_manifest(data, "v1", no_usage)
    # A certificate that is not the key's: the key of one file, the certificate of another.
    mine, theirs = make_signer(keydir, cas["root"], "mine"), make_signer(keydir, cas["root"], "x")
    swapped = keydir / "swapped.key"
    key_part = mine.read_bytes().split(b"-----BEGIN CERTIFICATE-----")[0]
    cert_part = theirs.read_bytes()[theirs.read_bytes().index(b"-----BEGIN CERTIFICATE-----") :]
    swapped.write_bytes(key_part + cert_part)
    with pytest.raises(signing.SigningConfigError, match="not the certificate of the private"):
        signing.sign_manifest(data, "v1", swapped)


def test_bad_authorities_are_named(cas: dict[str, Authority]) -> None:
    with pytest.raises(signing.SigningConfigError, match="'ca': not a PEM certificate chain"):
        signing.trusted_certificates(
            "ca", "-----BEGIN PUBLIC KEY-----\nAA\n-----END PUBLIC KEY-----"
        )
    intermediate_only = cas["issuing"].certificate
    from cryptography.hazmat.primitives import serialization

    pem = intermediate_only.public_bytes(serialization.Encoding.PEM)
    with pytest.raises(signing.SigningConfigError, match="no self-signed root"):
        signing.trusted_certificates("ca", pem)


def test_server_reads_trusted_authorities_from_its_environment(
    cas: dict[str, Authority], keydir: Path
) -> None:
    key = make_key(keydir, "env-key")
    data = manifest_bytes("v1")
    stored = _Stored(data, signing.sign_manifest(data, "v1", make_signer(keydir, cas["root"], "s")))
    text = signing.trusted_keys_json([key.trusted, cas["root"].trusted()])
    assert signing.trusted_keys_from_json(text) == (key.trusted, cas["root"].trusted())
    got = signing.verify_version_signature(
        stored, "s3://b/l/v1/", env={signing.TRUSTED_KEYS_ENV: text}
    )
    assert got is not None and got.name == "s"
    only_key = signing.trusted_keys_json([key.trusted])
    with pytest.raises(signing.SignatureError, match="v1: UntrustedCertificate"):
        signing.verify_version_signature(
            stored, "s3://b/l/v1/", env={signing.TRUSTED_KEYS_ENV: only_key}
        )


def test_spec_signing_trusts_keys_and_authorities(cas: dict[str, Authority]) -> None:
    key_pem = signing.public_key_pem(signing.generate_private_key_pem()).decode()
    spec = Signing.model_validate(
        {
            "secretRef": {"name": "signer"},
            "trustedKeys": [{"name": "ci", "publicKey": key_pem}],
            "trustedCertificates": [
                {"name": "platform", "certificateChain": cas["root"].chain_pem().decode()}
            ],
        }
    )
    trust = signing.trust_of(spec)
    assert [(t.name, t.kind) for t in trust] == [
        ("ci", signing.TrustKind.KEY),
        ("platform", signing.TrustKind.CERTIFICATES),
    ]
    only_ca = Signing.model_validate(
        {
            "secretRef": {"name": "signer"},
            "trustedCertificates": [
                {"name": "platform", "certificateChain": cas["root"].chain_pem().decode()}
            ],
        }
    )
    assert only_ca.trusted_keys == []
    # Written back as it was read: no empty list appears for the absent field.
    assert "trustedKeys" not in only_ca.to_api()
    assert Signing.model_validate(only_ca.to_api()) == only_ca
    with pytest.raises(ValueError, match="at least one trusted key or certificate authority"):
        Signing.model_validate({"secretRef": {"name": "signer"}})
