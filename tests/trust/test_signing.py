"""Signing and verifying manifests: the round trip, every refusal, key rotation."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.trust.keys import KeyPair, make_key, manifest_bytes
from warmstart import record, signing
from warmstart.signing import SignatureCheck, SignatureError


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    directory = tmp_path_factory.mktemp("keys")
    return {name: make_key(directory, name) for name in ("old", "new", "stranger")}


def refusal(
    version: str, data: bytes, sig: bytes | None, trusted: list[signing.TrustedKey]
) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        signing.verify_manifest_signature(version, data, sig, trusted)
    assert caught.value.version == version
    assert version in str(caught.value)
    return caught.value


def test_round_trip_returns_the_signing_key(keys: dict[str, KeyPair]) -> None:
    data = manifest_bytes("v1")
    sig = signing.sign_manifest(data, "v1", keys["old"].private_file)
    used = signing.verify_manifest_signature(
        "v1", data, sig, [keys["new"].trusted, keys["old"].trusted]
    )
    assert used == keys["old"].trusted


def test_signature_is_a_model_signing_bundle_the_library_verifies(
    keys: dict[str, KeyPair], tmp_path: Path
) -> None:
    from model_signing import verifying

    data = manifest_bytes("v1")
    sig = signing.sign_manifest(data, "v1", keys["old"].private_file)
    bundle = json.loads(sig)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    assert statement["subject"][0]["name"] == "v1"
    assert statement["predicate"]["resources"][0]["name"] == record.MANIFEST_NAME
    # What an auditor does with the model-signing CLI: a downloaded folder with other files.
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / record.MANIFEST_NAME).write_bytes(data)
    (folder / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "manifest.sig").write_bytes(sig)
    (tmp_path / "pub.pem").write_bytes(keys["old"].trusted.pem)
    verifier = (
        verifying.Config()  # type: ignore[no-untyped-call]
        .use_elliptic_key_verifier(public_key=tmp_path / "pub.pem")
        .set_ignore_unsigned_files(True)
    )
    verifier.verify(folder, tmp_path / "manifest.sig")
    (folder / record.MANIFEST_NAME).write_bytes(data + b" ")
    with pytest.raises(ValueError, match="Hash mismatch"):
        verifier.verify(folder, tmp_path / "manifest.sig")


def test_unsigned(keys: dict[str, KeyPair]) -> None:
    error = refusal("v1", manifest_bytes("v1"), None, [keys["old"].trusted])
    assert error.check == SignatureCheck.UNSIGNED


def test_untrusted_key_names_the_signer_and_the_trusted_keys(keys: dict[str, KeyPair]) -> None:
    data = manifest_bytes("v1")
    sig = signing.sign_manifest(data, "v1", keys["stranger"].private_file)
    error = refusal("v1", data, sig, [keys["old"].trusted])
    assert error.check == SignatureCheck.UNTRUSTED_KEY
    assert keys["stranger"].trusted.key_id[:16] in str(error)
    assert "old" in str(error)


def test_signature_of_another_version_copied_beside_a_manifest(keys: dict[str, KeyPair]) -> None:
    sig_v1 = signing.sign_manifest(manifest_bytes("v1"), "v1", keys["old"].private_file)
    error = refusal("v2", manifest_bytes("v2"), sig_v1, [keys["old"].trusted])
    assert error.check == SignatureCheck.OTHER_VERSION
    assert "'v1'" in str(error)


def test_whole_version_copied_under_another_name(keys: dict[str, KeyPair]) -> None:
    data = manifest_bytes("v1")
    sig = signing.sign_manifest(data, "v1", keys["old"].private_file)
    error = refusal("v9", data, sig, [keys["old"].trusted])
    assert error.check == SignatureCheck.OTHER_VERSION


def test_manifest_edited_after_signing(keys: dict[str, KeyPair]) -> None:
    data = manifest_bytes("v1", metric=0.5)
    sig = signing.sign_manifest(data, "v1", keys["old"].private_file)
    edited = manifest_bytes("v1", metric=0.99)
    error = refusal("v1", edited, sig, [keys["old"].trusted])
    assert error.check == SignatureCheck.MANIFEST_EDITED
    assert record.sha256_bytes(edited) in str(error)


def test_forged_signature_bytes(keys: dict[str, KeyPair]) -> None:
    data = manifest_bytes("v1")
    bundle = json.loads(signing.sign_manifest(data, "v1", keys["old"].private_file))
    other = json.loads(
        signing.sign_manifest(manifest_bytes("v1", metric=0.7), "v1", keys["old"].private_file)
    )
    bundle["dsseEnvelope"]["signatures"] = other["dsseEnvelope"]["signatures"]
    error = refusal("v1", data, json.dumps(bundle).encode(), [keys["old"].trusted])
    assert error.check == SignatureCheck.INVALID


def test_rotation_keeps_old_versions_until_their_key_is_removed(keys: dict[str, KeyPair]) -> None:
    v1, v2 = manifest_bytes("v1"), manifest_bytes("v2")
    sig1 = signing.sign_manifest(v1, "v1", keys["old"].private_file)
    sig2 = signing.sign_manifest(v2, "v2", keys["new"].private_file)
    both = [keys["old"].trusted, keys["new"].trusted]
    assert signing.verify_manifest_signature("v1", v1, sig1, both) == keys["old"].trusted
    assert signing.verify_manifest_signature("v2", v2, sig2, both) == keys["new"].trusted
    only_new = [keys["new"].trusted]
    assert signing.verify_manifest_signature("v2", v2, sig2, only_new) == keys["new"].trusted
    assert refusal("v1", v1, sig1, only_new).check == SignatureCheck.UNTRUSTED_KEY


def test_no_trusted_key_refuses() -> None:
    assert refusal("v1", b"{}", b"{}", []).check == SignatureCheck.UNTRUSTED_KEY


def test_bad_keys_are_named_without_their_bytes(tmp_path: Path) -> None:
    with pytest.raises(signing.SigningConfigError, match="trusted key 'ops'"):
        signing.trusted_key("ops", "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----")
    secret = tmp_path / "k"
    secret.write_bytes(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    with pytest.raises(signing.SigningConfigError) as caught:
        signing.sign_manifest(b"{}", "v1", secret)
    assert "c2VjcmV0" not in str(caught.value)
    assert str(secret) in str(caught.value)


def test_trusted_keys_json_round_trip(keys: dict[str, KeyPair]) -> None:
    pair = (keys["old"].trusted, keys["new"].trusted)
    assert signing.trusted_keys_from_json(signing.trusted_keys_json(pair)) == pair


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
            max_leaves=10,
        ).map(json.dumps),
    )
)
def test_trusted_keys_parser_only_raises_config_errors(text: str) -> None:
    with contextlib.suppress(signing.SigningConfigError):
        signing.trusted_keys_from_json(text)


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: (
            st.lists(inner)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "verificationMaterial",
                        "publicKey",
                        "hint",
                        "dsseEnvelope",
                        "payload",
                        "subject",
                        "predicate",
                        "resources",
                        "name",
                        "digest",
                    ]
                ),
                inner,
            )
        ),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode())
)
def test_signature_parser_refuses_garbage_with_a_named_check(data: bytes) -> None:
    trusted = [signing.trusted_key("k", signing.public_key_pem(signing.generate_private_key_pem()))]
    with pytest.raises(SignatureError) as caught:
        signing.verify_manifest_signature("v1", b"{}", data, trusted)
    assert caught.value.check in set(SignatureCheck)


class _Stored:
    """A version as object storage holds it (what the server reads)."""

    def __init__(self, manifest: bytes, signature: bytes | None) -> None:
        self.objects = {"s3://b/l/v1/manifest.json": manifest}
        if signature is not None:
            self.objects["s3://b/l/v1/manifest.sig"] = signature

    def read_manifest(self, version_prefix: str) -> bytes:
        return self.objects[version_prefix + record.MANIFEST_NAME]

    def get_bytes(self, uri: str) -> bytes:
        from warmstart.storage import ObjectNotFoundError

        if uri not in self.objects:
            raise ObjectNotFoundError(uri)
        return self.objects[uri]


def test_server_check_reads_trusted_keys_from_its_environment(keys: dict[str, KeyPair]) -> None:
    data = manifest_bytes("v1")
    signed = _Stored(data, signing.sign_manifest(data, "v1", keys["old"].private_file))
    env = {signing.TRUSTED_KEYS_ENV: signing.trusted_keys_json([keys["old"].trusted])}
    digest = record.manifest_digest(data)
    # Without the variable the lineage does not sign: nothing to check.
    assert signing.verify_version_signature(signed, "s3://b/l/v1/", env={}) is None
    got = signing.verify_version_signature(signed, "s3://b/l/v1/", env=env, expected_digest=digest)
    assert got == keys["old"].trusted
    with pytest.raises(record.DigestMismatchError):  # swapped between file check and this
        signing.verify_version_signature(
            signed, "s3://b/l/v1/", env=env, expected_digest=record.sha256_bytes(b"other")
        )
    with pytest.raises(SignatureError, match="Unsigned"):
        signing.verify_version_signature(_Stored(data, None), "s3://b/l/v1/", env=env)
    with pytest.raises(signing.SigningConfigError, match=signing.TRUSTED_KEYS_ENV):
        signing.verify_version_signature(
            signed, "s3://b/l/v1/", env={signing.TRUSTED_KEYS_ENV: "[]"}
        )
