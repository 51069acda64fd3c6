"""`warmstart lineage verify` and `lineage provenance` on a lineage that trusts a
certificate authority, on the local control plane with real S3: versions the trainer
signed with a certificate from that authority verify, one from another authority is
refused with the version and the check named."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from tests.cli.builders import make_lineage
from tests.trust.certs import make_authority, make_signer
from tests.trust.test_cluster_refusals import Place, _put_status, _run, place  # noqa: F401
from tests.trust.versions import commit
from warmstart import signing
from warmstart.api.constants import GROUP, MODELLINEAGE_PLURAL, VERSION


def test_cli_verifies_certificate_signed_versions_and_their_provenance(
    place: Place,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, stranger = make_authority("platform-root"), make_authority("someone-else")
    name = f"certs-cli-{uuid.uuid4().hex[:6]}"
    builder = make_lineage(name, f"s3://{place.bucket}/lineages/{name}/")
    parent: tuple[str, str] | None = None
    for version, authority in (("base", root), ("v1", root), ("v2", stranger)):
        # The trainer's own commit step signs with the key file the Secret would mount.
        key_file = make_signer(tmp_path, authority, f"trainer-{version}")
        monkeypatch.setenv(signing.SIGNING_KEY_FILE_ENV, str(key_file))
        digest = commit(place.storage, builder.storage_uri, tmp_path, version, parent, key_file)
        builder.version(version, parent[0] if parent else None, digest=digest)
        parent = (version, digest)
    obj = builder.spec_object()
    obj["spec"]["signing"] = {
        "secretRef": {"name": "reviews-signing"},
        "trustedCertificates": [
            {"name": "platform", "certificateChain": root.chain_pem().decode()}
        ],
    }
    client.CustomObjectsApi(place.api).create_namespaced_custom_object(
        GROUP, VERSION, place.namespace, MODELLINEAGE_PLURAL, obj
    )
    _put_status(place, name, builder.status())

    code, out, err = _run(capsys, place.cli("lineage", "verify", name, "v1"))
    assert code == 0, err
    assert "v1    signed   by trainer-v1 (issued by platform" in out, out
    code, out, err = _run(capsys, place.cli("lineage", "verify", name, "v2"))
    assert code == 1
    assert "v2    REFUSED  UntrustedCertificate: certificate 'trainer-v2' is not trusted" in err
    code, out, err = _run(capsys, place.cli("lineage", "provenance", name, "v1"))
    assert code == 0, err
    assert json.loads(out)["subject"]
