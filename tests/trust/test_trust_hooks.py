"""The trainer signs on commit; the operator's hooks refuse what does not verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api.builders import make_lineage
from tests.trust.keys import KeyPair, make_key
from tests.trust.versions import commit
from warmstart import provenance, record, signing, storage
from warmstart.api.modellineage import ModelLineageSpec
from warmstart_operator import builders, signatures


class RecordingStorage(storage.Storage):
    """Real file:// storage that remembers the order objects were written in."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[str] = []

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None:
        self.written.append(uri.rsplit("/", 1)[1])
        super().put_bytes(uri, data, content_type=content_type)


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, KeyPair]:
    return {name: make_key(tmp_path, name) for name in ("ci-2025", "ci-2026", "laptop")}


def lineage_spec(storage_uri: str, *trusted: KeyPair) -> ModelLineageSpec:
    obj = make_lineage("reviews").storage_uri(storage_uri).obj()
    if trusted:
        obj["spec"]["signing"] = {
            "secretRef": {"name": "reviews-signing"},
            "trustedKeys": [{"name": k.name, "publicKey": k.trusted.pem.decode()} for k in trusted],
        }
    return ModelLineageSpec.model_validate(obj["spec"])


@pytest.fixture
def store_uri(tmp_path: Path) -> tuple[storage.Storage, str]:
    return storage.Storage(), (tmp_path / "bucket").as_uri() + "/"


def test_trainer_signs_before_the_manifest_and_operator_accepts(
    store_uri: tuple[storage.Storage, str],
    tmp_path: Path,
    keys: dict[str, KeyPair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, uri = store_uri
    monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(keys["ci-2026"].private_file))
    store = RecordingStorage()
    commit(store, uri, tmp_path / "work", "v1", None, None)
    assert store.written == [
        provenance.PROVENANCE_NAME,
        signing.SIGNATURE_NAME,
        record.MANIFEST_NAME,
    ]
    spec = lineage_spec(uri, keys["ci-2025"], keys["ci-2026"])
    signer = signatures.verify_version(store, spec, "v1", record.version_uri(uri, "v1"))
    assert signer is not None and signer.name == "ci-2026"


def test_unsigned_version_refused_only_when_the_lineage_signs(
    store_uri: tuple[storage.Storage, str], tmp_path: Path, keys: dict[str, KeyPair]
) -> None:
    store, uri = store_uri
    commit(store, uri, tmp_path / "work", "v1", None, None)
    assert (
        signatures.verify_version(store, lineage_spec(uri), "v1",
                                  record.version_uri(uri, "v1")) is None
    )
    with pytest.raises(signatures.SignatureRefused) as caught:
        signatures.verify_version(
            store, lineage_spec(uri, keys["ci-2026"]), "v1", record.version_uri(uri, "v1")
        )
    assert caught.value.reason == "Unsigned" and "version v1" in str(caught.value)


def test_rollout_check_reads_storage_now_and_catches_a_swapped_manifest(
    store_uri: tuple[storage.Storage, str],
    tmp_path: Path,
    keys: dict[str, KeyPair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, uri = store_uri
    monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(keys["ci-2026"].private_file))
    commit(store, uri, tmp_path / "work", "v1", None, None)
    prefix = record.version_uri(uri, "v1")
    edited = store.read_manifest(prefix).replace(b'"neg"', b'"NEG"')
    store.put_bytes(record.manifest_uri(prefix), edited)
    spec = lineage_spec(uri, keys["ci-2026"])
    with pytest.raises(signatures.SignatureRefused) as caught:
        signatures.verify_version(store, spec, "v1", prefix)
    assert caught.value.reason == signing.SignatureCheck.MANIFEST_EDITED
    assert signatures.refuse_unsigned_recovery(store, spec, "v1", edited) is not None


def test_removed_key_makes_its_versions_unverifiable(
    store_uri: tuple[storage.Storage, str],
    tmp_path: Path,
    keys: dict[str, KeyPair],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, uri = store_uri
    monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(keys["ci-2025"].private_file))
    d1 = commit(store, uri, tmp_path / "work", "v1", None, None)
    monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(keys["ci-2026"].private_file))
    commit(store, uri, tmp_path / "work", "v2", ("v1", d1), None)
    rotated = lineage_spec(uri, keys["ci-2025"], keys["ci-2026"])
    for version in ("v1", "v2"):
        assert signatures.verify_version(store, rotated, version, record.version_uri(uri, version))
    after = lineage_spec(uri, keys["ci-2026"])
    assert signatures.verify_version(store, after, "v2", record.version_uri(uri, "v2"))
    with pytest.raises(signatures.SignatureRefused) as caught:
        signatures.verify_version(store, after, "v1", record.version_uri(uri, "v1"))
    assert caught.value.reason == "UntrustedKey"


def test_bad_signing_key_fails_the_trainer_with_invalid_input(
    store_uri: tuple[storage.Storage, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warmstart_trainer.errors import InvalidInputError

    store, uri = store_uri
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(bad))
    with pytest.raises(InvalidInputError, match=signing.SIGNING_KEY_FILE_ENV):
        commit(store, uri, tmp_path / "work", "v1", None, None)
    assert not store.exists(record.manifest_uri(record.version_uri(uri, "v1")))


def _job(spec: ModelLineageSpec) -> dict[str, Any]:
    from tests.operator.test_pure import WSJ
    from warmstart.api.warmstartjob import WarmStartJobSpec
    from warmstart_operator.config import OperatorConfig

    job = builders.training_job(
        WSJ, WarmStartJobSpec.model_validate(WSJ["spec"]), "reviews", "reviews-s3", OperatorConfig()
    )
    return signatures.add_signing(job, spec, "registry.example/trainer@sha256:" + "ab" * 32)


def test_trainer_job_mounts_only_the_signing_key_and_names_its_builder(
    keys: dict[str, KeyPair],
) -> None:
    pod = _job(lineage_spec("s3://b/l/", keys["ci-2026"]))["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env[signing.SIGNING_KEY_FILE_ENV] == f"{signatures.SIGNING_MOUNT}/signing.key"
    assert env[provenance.TRAINER_IMAGE_ENV].endswith("ab" * 32)
    assert env[provenance.OPERATOR_VERSION_ENV]
    volume = next(v for v in pod["volumes"] if v["name"] == signatures.SIGNING_VOLUME)
    assert volume["secret"] == {
        "secretName": "reviews-signing",
        # Readable by the image's non-root user: the kubelet writes it owned by root
        # (tests/localcluster/test_node_story.py reads it on a real node).
        "defaultMode": 0o444,
        "items": [{"key": "signing.key", "path": "signing.key"}],
    }
    mount = next(
        m for m in pod["containers"][0]["volumeMounts"] if m["name"] == signatures.SIGNING_VOLUME
    )
    assert mount["readOnly"] is True
    unsigned = _job(lineage_spec("s3://b/l/"))["spec"]["template"]["spec"]
    assert all(v["name"] != signatures.SIGNING_VOLUME for v in unsigned["volumes"])
    assert signing.SIGNING_KEY_FILE_ENV not in {e["name"] for e in unsigned["containers"][0]["env"]}


def test_serving_patch_carries_the_trusted_keys(keys: dict[str, KeyPair]) -> None:
    spec = lineage_spec("s3://b/l/", keys["ci-2025"], keys["ci-2026"])
    patch = builders.serving_patch(
        "srv",
        "server",
        "U",
        "D",
        "v1",
        "s3://b/l/v1/",
        "sha256:" + "0" * 64,
        extra_env=signatures.serving_env(spec),
    )
    env = {e["name"]: e["value"] for e in patch["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert [k.name for k in signing.trusted_keys_from_json(env[signing.TRUSTED_KEYS_ENV])] == [
        "ci-2025",
        "ci-2026",
    ]
    assert signatures.serving_env(lineage_spec("s3://b/l/")) == []
