"""Provenance: an in-toto SLSA v1 statement per version, signed like the manifest."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.trust.keys import make_key
from tests.trust.versions import commit
from warmstart import provenance, record, signing, storage


def test_committed_version_carries_a_signed_slsa_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.protobuf import json_format  # type: ignore[import-untyped]
    from in_toto_attestation.predicates.provenance.v1 import (  # type: ignore[import-untyped]
        provenance_pb2,
    )
    from in_toto_attestation.v1 import statement_pb2  # type: ignore[import-untyped]
    from in_toto_attestation.v1.statement import Statement  # type: ignore[import-untyped]

    key = make_key(tmp_path, "ci")
    monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(key.private_file))
    monkeypatch.setenv(provenance.TRAINER_IMAGE_ENV, "reg.example/t@sha256:" + "cd" * 32)
    monkeypatch.setenv(provenance.OPERATOR_VERSION_ENV, "0.1.0")
    store, uri = storage.Storage(), (tmp_path / "bucket").as_uri() + "/"
    d1 = commit(store, uri, tmp_path / "w", "v1", None, None)
    d2 = commit(store, uri, tmp_path / "w", "v2", ("v1", d1), None)
    prefix = record.version_uri(uri, "v2")
    data = store.get_bytes(provenance.provenance_uri(prefix))
    opened = provenance.open_envelope(data, where="v2", trusted=[key.trusted], manifest_digest=d2)
    assert opened.signed_by == key.trusted
    statement = opened.statement
    # The reference protos accept it (unknown fields would raise): an in-toto v1 Statement
    # whose predicate is SLSA provenance v1.
    parsed = json_format.ParseDict(statement, statement_pb2.Statement())
    Statement.copy_from_pb(parsed).validate()
    json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    manifest = record.parse_manifest(store.read_manifest(prefix))
    subjects = {s["name"]: "sha256:" + s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects == {**{e.name: e.sha256 for e in manifest.files}, "manifest.json": d2}
    build = statement["predicate"]["buildDefinition"]
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    assert deps["parent:v1"]["digest"]["sha256"] == d1.removeprefix("sha256:")
    assert deps["dataset:train"]["digest"]["sha256"] == record.sha256_bytes(b"rows")[7:]
    assert build["externalParameters"] == {"version": "v2", "learningRate": 5e-5}
    builder = statement["predicate"]["runDetails"]["builder"]
    assert builder["version"] == {"warmstart-operator": "0.1.0"}
    assert builder["builderDependencies"][0]["digest"] == {"sha256": "cd" * 32}


def test_provenance_refusals(tmp_path: Path) -> None:
    key, other = make_key(tmp_path, "ci"), make_key(tmp_path, "other")
    statement = {
        "_type": provenance.STATEMENT_TYPE,
        "subject": [{"name": "manifest.json", "digest": {"sha256": "ab" * 32}}],
    }
    signed = provenance.envelope(statement, key.private_file)
    assert (
        provenance.open_envelope(
            signed, where="v1", trusted=[key.trusted], manifest_digest="sha256:" + "ab" * 32
        ).signed_by
        == key.trusted
    )
    with pytest.raises(provenance.ProvenanceError, match="none of them trusted"):
        provenance.open_envelope(signed, where="v1", trusted=[other.trusted])
    with pytest.raises(provenance.ProvenanceError, match="another version"):
        provenance.open_envelope(
            signed, where="v1", trusted=None, manifest_digest="sha256:" + "cd" * 32
        )
    with pytest.raises(provenance.ProvenanceError, match="unsigned"):
        provenance.open_envelope(
            provenance.envelope(statement, None), where="v1", trusted=[key.trusted]
        )
    doc = json.loads(signed)
    doc["payload"] = base64.b64encode(b'{"edited": true}').decode()
    with pytest.raises(provenance.ProvenanceError, match="does not verify"):
        provenance.open_envelope(json.dumps(doc).encode(), where="v1", trusted=[key.trusted])
    with pytest.raises(provenance.ProvenanceError, match="not a DSSE"):
        provenance.open_envelope(b"[1]", where="v1", trusted=None)


def test_builder_digest_only_from_a_pinned_image() -> None:
    assert provenance.Builder("r/t:0.1", None).image_digest is None
    assert provenance.Builder("r/t@sha256:" + "a" * 64, None).image_digest == "sha256:" + "a" * 64
    assert provenance.Builder("r/t@sha256:short", None).image_digest is None
