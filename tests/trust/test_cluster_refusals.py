"""Each refusal on the local control plane with real S3 (SeaweedFS): the CLI an auditor
runs, the operator's hook and the model server's check all read the same objects.

One namespace, bucket and Secret for the module; each test records its own signed lineage
base -> v1 -> v2 (base and v1 signed with ci-2025, v2 after rotation with ci-2026).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cli.builders import SECRET, make_lineage
from tests.cli.records import RecordedVersion, index, write_chain
from tests.conftest import LocalCluster
from tests.trust.certs import make_authority, make_signer
from tests.trust.keys import KeyPair, make_key
from tests.trust.versions import commit
from warmstart import history, provenance, record, signing, storage
from warmstart.api import crdgen
from warmstart.api.constants import GROUP, MODELLINEAGE_PLURAL, VERSION
from warmstart.api.modellineage import ModelLineageSpec
from warmstart.cli.main import main
from warmstart_operator import signatures

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Place:
    cluster: LocalCluster
    namespace: str
    bucket: str
    api: client.ApiClient
    storage: storage.Storage
    keys: dict[str, KeyPair]

    def cli(self, *args: str) -> list[str]:
        return [*args, "-n", self.namespace, "--kubeconfig", str(self.cluster.kubeconfig), "-q"]


@pytest.fixture(scope="module")
def place(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=warmstart-trust-tests",
        "-f",
        str(CRD_DIR),
    )
    cluster.wait_established(*(f"crd/{d.crd_name}" for d in crdgen.KINDS))
    suffix = uuid.uuid4().hex[:6]
    namespace = bucket = f"trust-{suffix}"
    cluster.kubectl("create", "namespace", namespace)
    s3 = cluster.s3_client()
    s3.create_bucket(Bucket=bucket)
    api = cluster.api_client()
    client.CoreV1Api(api).create_namespaced_secret(
        namespace, {"metadata": {"name": SECRET}, "stringData": cluster.s3_env()}
    )
    keys_dir = tmp_path_factory.mktemp("keys")
    here = Place(
        cluster,
        namespace,
        bucket,
        api,
        storage.Storage.from_env(cluster.s3_env()),
        {n: make_key(keys_dir, n) for n in ("ci-2025", "ci-2026", "stranger")},
    )
    try:
        yield here
    finally:
        api.close()
        here.storage.delete_prefix(f"s3://{bucket}/")
        s3.delete_bucket(Bucket=bucket)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@dataclass
class Signed:
    name: str
    storage_uri: str
    versions: dict[str, RecordedVersion]
    spec: ModelLineageSpec


def _signing(place: Place, *trusted: str) -> dict[str, Any]:
    return {
        "secretRef": {"name": "reviews-signing"},
        "trustedKeys": [
            {"name": n, "publicKey": place.keys[n].trusted.pem.decode()} for n in trusted
        ],
    }


def _put_status(place: Place, name: str, status: dict[str, Any]) -> None:
    client.CustomObjectsApi(place.api).patch_namespaced_custom_object_status(
        GROUP, VERSION, place.namespace, MODELLINEAGE_PLURAL, name, {"status": status}
    )


@pytest.fixture
def signed(place: Place) -> Callable[..., Signed]:
    def make(trusted: tuple[str, ...] = ("ci-2025", "ci-2026")) -> Signed:
        name = f"reviews-{uuid.uuid4().hex[:6]}"
        builder = make_lineage(name, f"s3://{place.bucket}/lineages/{name}/")
        versions = write_chain(place.storage.put_bytes, builder.storage_uri, name)
        for version in versions:
            key = place.keys["ci-2026" if version.name == "v2" else "ci-2025"]
            place.storage.put_bytes(
                signing.signature_uri(version.uri),
                signing.sign_manifest(version.manifest_bytes, version.name, key.private_file),
            )
        index(builder, versions).serving("v2", previous="v1")
        heads = [
            history.append(
                place.storage,
                builder.storage_uri,
                lineage=name,
                version=v.name,
                uri=v.uri,
                manifest_digest=v.manifest_digest,
                now=T0 + dt.timedelta(hours=i),
                cause=history.Cause(history.PROMOTED, "WarmStartJob", f"{name}-{v.name}"),
            )
            for i, v in enumerate(versions)
        ]
        obj = builder.spec_object()
        obj["spec"]["signing"] = _signing(place, *trusted)
        client.CustomObjectsApi(place.api).create_namespaced_custom_object(
            GROUP, VERSION, place.namespace, MODELLINEAGE_PLURAL, obj
        )
        status = builder.status()
        status["historyHead"] = {"seq": heads[-1].seq, "digest": heads[-1].digest}
        _put_status(place, name, status)
        return Signed(
            name,
            builder.storage_uri,
            {v.name: v for v in versions},
            ModelLineageSpec.model_validate(obj["spec"]),
        )

    return make


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def _operator_refusal(place: Place, lineage: Signed, version: str) -> str:
    with pytest.raises(signatures.SignatureRefused) as caught:
        signatures.verify_version(place.storage, lineage.spec, None, lineage.versions[version].uri)
    assert f"version {version}" in str(caught.value)
    return caught.value.reason


def test_signed_rotated_lineage_verifies_with_history_and_provenance(
    place: Place, signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = signed()
    code, out, err = _run(capsys, place.cli("lineage", "verify", lineage.name))
    assert code == 0, err
    assert "base  signed   by ci-2025" in out and "v2    signed   by ci-2026" in out
    assert "signatures verified: 3 versions signed by trusted keys" in out
    assert out.splitlines()[-1] == "history intact: 3 entries"

    code, out, _ = _run(
        capsys, place.cli("lineage", "history", lineage.name, "--at", "2026-12-01T10:30:00Z")
    )
    assert code == 0
    assert out.startswith(
        "at 2026-12-01T10:30:00Z version v1 served (" + lineage.versions["v1"].manifest_digest
    )

    v2 = lineage.versions["v2"]
    statement = provenance.build_statement(
        record.parse_manifest(v2.manifest_bytes),
        v2.manifest_bytes,
        parameters={"learningRate": 5e-5},
        builder=provenance.Builder("t@sha256:" + "a" * 64, "0.1.0"),
    )
    place.storage.put_bytes(
        provenance.provenance_uri(v2.uri),
        provenance.envelope(statement, place.keys["ci-2026"].private_file),
    )
    code, out, err = _run(capsys, place.cli("lineage", "provenance", lineage.name, "v2"))
    assert code == 0, err
    assert json.loads(out)["predicate"]["buildDefinition"]["externalParameters"] == {
        "learningRate": 5e-5
    }


def test_unsigned_version_is_refused(
    place: Place, signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = signed()
    place.storage.delete(signing.signature_uri(lineage.versions["v1"].uri))
    assert _operator_refusal(place, lineage, "v1") == "Unsigned"
    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name))
    assert code == 1
    assert "v1    REFUSED  Unsigned: no manifest.sig beside it" in err


def test_version_signed_by_an_untrusted_key_is_refused(
    place: Place, signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = signed()
    v1 = lineage.versions["v1"]
    place.storage.put_bytes(
        signing.signature_uri(v1.uri),
        signing.sign_manifest(v1.manifest_bytes, "v1", place.keys["stranger"].private_file),
    )
    assert _operator_refusal(place, lineage, "v1") == "UntrustedKey"
    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name))
    assert code == 1
    assert (
        f"v1    REFUSED  UntrustedKey: signed by key {place.keys['stranger'].trusted.key_id[:16]}"
        in err
    )


def test_signature_of_another_version_is_refused(
    place: Place, signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = signed()
    v1, v2 = lineage.versions["v1"], lineage.versions["v2"]
    place.storage.put_bytes(
        signing.signature_uri(v1.uri), place.storage.get_bytes(signing.signature_uri(v2.uri))
    )
    assert _operator_refusal(place, lineage, "v1") == "SignatureOfAnotherVersion"
    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name))
    assert code == 1
    assert "v1    REFUSED  SignatureOfAnotherVersion: the signature names version 'v2'" in err


def test_manifest_edited_after_signing_is_refused(
    place: Place, signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = signed()
    v2 = lineage.versions["v2"]
    edited = v2.manifest_bytes.replace(b'"accuracy": 0.8', b'"accuracy": 0.99')
    assert edited != v2.manifest_bytes
    place.storage.put_bytes(record.manifest_uri(v2.uri), edited)
    # The operator checks before every rollout, on the bytes in storage now.
    assert _operator_refusal(place, lineage, "v2") == "ManifestEditedAfterSigning"
    # The model server, told the digest of the edited manifest, still refuses to be ready.
    env = {
        signing.TRUSTED_KEYS_ENV: signing.trusted_keys_json(
            [place.keys["ci-2025"].trusted, place.keys["ci-2026"].trusted]
        )
    }
    with pytest.raises(signing.SignatureError, match="ManifestEditedAfterSigning"):
        signing.verify_version_signature(
            place.storage, v2.uri, env=env, expected_digest=record.manifest_digest(edited)
        )
    # An index rebuilt from the edited record: the chain holds, the signature does not.
    obj = client.CustomObjectsApi(place.api).get_namespaced_custom_object(
        GROUP, VERSION, place.namespace, MODELLINEAGE_PLURAL, lineage.name
    )
    status = obj["status"]
    next(v for v in status["versions"] if v["name"] == "v2")["manifestDigest"] = (
        record.manifest_digest(edited)
    )
    _put_status(place, lineage.name, status)
    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name))
    assert code == 1
    assert "v2    REFUSED  ManifestEditedAfterSigning" in err


def test_removing_a_key_makes_its_versions_unverifiable(
    place: Place, signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = signed(trusted=("ci-2026",))
    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name))
    assert code == 1
    assert "v2    signed   by ci-2026" in err
    assert "signatures refused: v1, base (2 of 3)" in err


def test_removed_history_entry_is_detected(
    place: Place, signed: Callable[..., Signed], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = signed()
    place.storage.delete(history.entry_uri(lineage.storage_uri, 2))
    code, out, err = _run(capsys, place.cli("lineage", "history", lineage.name))
    assert (code, out) == (1, "")
    assert "serving history tampered with: entry 2 is missing" in err
    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name))
    assert code == 1 and "entry 2 is missing" in err
    # Removing the newest entry leaves a valid chain; the anchor in the status catches it.
    lineage = signed()
    place.storage.delete(history.entry_uri(lineage.storage_uri, 3))
    code, _, err = _run(capsys, place.cli("lineage", "history", lineage.name))
    assert code == 1 and "newer entries were removed" in err


# --- certificate-based signing ---------------------------------------------------------------


def _create(place: Place, name: str, signing_spec: dict[str, Any]) -> dict[str, Any]:
    obj = make_lineage(name, f"s3://{place.bucket}/lineages/{name}/").spec_object()
    obj["spec"]["signing"] = signing_spec
    result: dict[str, Any] = client.CustomObjectsApi(place.api).create_namespaced_custom_object(
        GROUP, VERSION, place.namespace, MODELLINEAGE_PLURAL, obj
    )
    return result


def test_api_server_checks_what_a_lineage_trusts(place: Place) -> None:
    with pytest.raises(client.ApiException) as caught:
        _create(place, "trusts-nothing", {"secretRef": {"name": "s"}})
    assert "list at least one trusted key or certificate authority" in str(caught.value.body)
    with pytest.raises(client.ApiException) as caught:
        _create(
            place,
            "bad-chain",
            {
                "secretRef": {"name": "s"},
                "trustedCertificates": [{"name": "ca", "certificateChain": "not a pem"}],
            },
        )
    assert "must be PEM certificates" in str(caught.value.body)


def test_certificate_signed_versions_in_storage(
    place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, stranger = make_authority("platform-root"), make_authority("someone-else")
    obj = _create(
        place,
        f"certs-{uuid.uuid4().hex[:6]}",
        {
            "secretRef": {"name": "reviews-signing"},
            "trustedCertificates": [
                {"name": "platform", "certificateChain": root.chain_pem().decode()}
            ],
        },
    )
    spec = ModelLineageSpec.model_validate(obj["spec"])
    assert spec.signing is not None
    trust = signing.trust_of(spec.signing)
    base = f"s3://{place.bucket}/lineages/{obj['metadata']['name']}/"
    digests = {}
    for version, authority in (("v1", root), ("v2", stranger)):
        # The trainer's own commit step signs with the key file the Secret would mount.
        key_file = make_signer(tmp_path, authority, f"trainer-{version}")
        monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(key_file))
        digests[version] = commit(place.storage, base, tmp_path, version, None, key_file)
    v1, v2 = record.version_uri(base, "v1"), record.version_uri(base, "v2")
    # What the operator and `lineage verify` check, and the model server through its env.
    signer = signing.verify_version_signature(place.storage, v1, trust)
    assert signer is not None and signer.describe().startswith("trainer-v1 (issued by platform")
    env = {signing.TRUSTED_KEYS_ENV: signing.trusted_keys_json(trust)}
    assert signing.verify_version_signature(
        place.storage, v1, env=env, expected_digest=digests["v1"]
    )
    # The provenance is signed by the certificate's key: the signer found above verifies it.
    opened = provenance.open_envelope(
        place.storage.get_bytes(provenance.provenance_uri(v1)), where="v1", trusted=[signer]
    )
    assert opened.signed_by == signer
    with pytest.raises(signing.SignatureError) as caught:
        signing.verify_version_signature(place.storage, v2, env=env)
    assert caught.value.check == signing.SignatureCheck.UNTRUSTED_CERTIFICATE
    assert str(caught.value).startswith(
        "version v2: UntrustedCertificate: certificate 'trainer-v2'"
    )
