"""The CLI against the real local control plane and S3 server.

One namespace, bucket and credentials Secret per module (namespaces are slow to create on
two cores); each test records its own lineage base -> v1 -> v2 under its own prefix, so the
tests that tamper with storage cannot disturb the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cli.builders import SECRET, LineageBuilder, make_lineage
from tests.cli.records import WEIGHTS, RecordedVersion, flip_byte, index, write_chain
from tests.conftest import LocalCluster
from warmstart import record, storage
from warmstart.api import crdgen
from warmstart.api.constants import GROUP, MODELLINEAGE_PLURAL, VERSION
from warmstart.cli.kube import ConflictError, Kube, KubeOptions
from warmstart.cli.main import main
from warmstart.cli.pinning import pin_patch

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


@dataclass
class Place:
    """Where this module's lineages live."""

    cluster: LocalCluster
    namespace: str
    bucket: str
    api: client.ApiClient
    storage: storage.Storage

    def cli(self, *args: str) -> list[str]:
        return [*args, "-n", self.namespace, "--kubeconfig", str(self.cluster.kubeconfig)]

    def create_secret(self, name: str, data: dict[str, str]) -> None:
        client.CoreV1Api(self.api).create_namespaced_secret(
            self.namespace, {"metadata": {"name": name}, "stringData": data}
        )

    def lineage(self, name: str) -> dict[str, Any]:
        custom = client.CustomObjectsApi(self.api)
        found: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, MODELLINEAGE_PLURAL, name
        )
        return found


@dataclass
class Recorded:
    name: str
    versions: dict[str, RecordedVersion]


@pytest.fixture(scope="module")
def place(cluster: LocalCluster) -> Iterator[Place]:
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=warmstart-cli-tests",
        "-f",
        str(CRD_DIR),
    )
    cluster.wait_established(*(f"crd/{definition.crd_name}" for definition in crdgen.KINDS))
    suffix = uuid.uuid4().hex[:6]
    namespace, bucket = f"cli-{suffix}", f"cli-{suffix}"
    cluster.kubectl("create", "namespace", namespace)
    s3 = cluster.s3_client()
    s3.create_bucket(Bucket=bucket)
    api = cluster.api_client()
    here = Place(cluster, namespace, bucket, api, storage.Storage.from_env(cluster.s3_env()))
    here.create_secret(SECRET, cluster.s3_env())
    try:
        yield here
    finally:
        api.close()
        here.storage.delete_prefix(f"s3://{bucket}/")
        s3.delete_bucket(Bucket=bucket)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture
def recorded(place: Place) -> Callable[..., Recorded]:
    """Record base -> v1 -> v2 in S3 and index it (plus a rejected v3) in a new lineage."""

    def make(secret: str = SECRET) -> Recorded:
        name = f"reviews-{uuid.uuid4().hex[:6]}"
        builder: LineageBuilder = make_lineage(name, f"s3://{place.bucket}/lineages/{name}/")
        versions = write_chain(place.storage.put_bytes, builder.storage_uri, name)
        index(builder.secret(secret), versions)
        builder.version(
            "v3", "v2", phase="Rejected", reason="InsufficientImprovement", accuracy=0.79
        )
        builder.serving("v2", previous="v1")
        custom = client.CustomObjectsApi(place.api)
        custom.create_namespaced_custom_object(
            GROUP, VERSION, place.namespace, MODELLINEAGE_PLURAL, builder.spec_object()
        )
        custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            place.namespace,
            MODELLINEAGE_PLURAL,
            name,
            {"status": builder.status()},
        )
        return Recorded(name, {v.name: v for v in versions})

    return make


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error(err: str) -> str:
    """The one error line; progress lines before it are fine, a traceback is not."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


def test_tree_shows_the_recorded_lineage(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()

    code, out, _ = _run(capsys, place.cli("lineage", "tree", lineage.name))

    assert code == 0
    assert out.splitlines() == [
        f"ModelLineage {place.namespace}/{lineage.name}  metric: accuracy (higher is better)"
        "  pinned: -",
        "base            Promoted  accuracy 0.700",
        "└── v1          Promoted  accuracy 0.750  [previous]",
        "    └── v2      Promoted  accuracy 0.800  [serving]",
        "        └── v3  Rejected  accuracy 0.790  [latest]  InsufficientImprovement",
    ]


def test_verify_passes_from_serving_and_from_a_named_version(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()

    code, out, err = _run(capsys, place.cli("lineage", "verify", lineage.name))

    assert code == 0, err
    rows = out.splitlines()
    assert [row.split()[0] for row in rows[:3]] == ["v2", "v1", "base"]
    assert lineage.versions["v1"].manifest_digest in rows[1]
    assert rows[3] == "chain intact: v2 -> v1 -> base (3 versions, manifests and files)"
    assert f"v1: hashing {WEIGHTS}" in err  # progress went to stderr

    code, out, _ = _run(capsys, place.cli("lineage", "verify", lineage.name, "v1", "-q"))
    assert code == 0
    assert out.splitlines()[-1] == "chain intact: v1 -> base (2 versions, manifests and files)"


def test_verify_names_the_ancestor_whose_weights_changed(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()
    v1 = lineage.versions["v1"]
    altered = flip_byte(v1.files[WEIGHTS], 0)
    place.storage.put_bytes(record.file_uri(v1.uri, WEIGHTS), altered)

    code, out, err = _run(capsys, place.cli("lineage", "verify", lineage.name, "-q"))

    assert code == 1
    assert out == ""
    assert err == (
        f"warmstart: chain broken at version v1 (ancestor of v2): file {v1.uri}{WEIGHTS}: "
        f"altered (sha256 differs): expected {record.sha256_bytes(v1.files[WEIGHTS])} "
        f"(recorded in v1's manifest), actual {record.sha256_bytes(altered)}\n"
    )


def test_verify_names_the_ancestor_whose_manifest_changed(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()
    v1 = lineage.versions["v1"]
    altered = flip_byte(v1.manifest_bytes, v1.manifest_bytes.index(b'"accuracy": 0.75') + 14)
    place.storage.put_bytes(record.manifest_uri(v1.uri), altered)

    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name, "-q"))

    assert code == 1
    assert err == (
        f"warmstart: chain broken at version v1 (ancestor of v2): manifest "
        f"{v1.uri}manifest.json: altered (sha256 differs): expected {v1.manifest_digest} "
        f"(recorded in v2's manifest), actual {record.manifest_digest(altered)}\n"
    )


def test_graph_in_every_format(
    place: Place,
    recorded: Callable[..., Recorded],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    lineage = recorded()

    code, mermaid, _ = _run(
        capsys, place.cli("lineage", "graph", lineage.name, "--format", "mermaid")
    )
    assert code == 0
    assert '["v2<br/>accuracy 0.800<br/>Promoted · serving"]' in mermaid
    assert "    v2 -.-> v3" in mermaid  # the rejected candidate's edge is dashed

    code, dot, _ = _run(capsys, place.cli("lineage", "graph", lineage.name, "--format", "dot"))
    assert code == 0
    assert "    v0 -> v1;" in dot and 'label="v2\\naccuracy 0.800\\nPromoted · serving"' in dot

    svg = tmp_path / "lineage.svg"
    code, out, err = _run(
        capsys, place.cli("lineage", "graph", lineage.name, "--format", "svg", "-o", str(svg))
    )
    assert (code, out) == (0, "")
    assert f"wrote svg graph of 4 versions to {svg} and {svg.with_suffix('.png')}" in err
    text = svg.read_text()
    assert text.count('<g class="node') == 4 and 'class="node serving" data-version="v2"' in text
    assert svg.with_suffix(".png").read_bytes().startswith(b"\x89PNG")


def _managers(obj: dict[str, Any]) -> set[str]:
    return {entry["manager"] for entry in obj["metadata"].get("managedFields", [])}


def test_promote_and_rollback_change_only_the_pinned_version(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()
    before = place.lineage(lineage.name)

    code, out, _ = _run(capsys, place.cli("promote", lineage.name, "v1"))

    assert code == 0
    assert out == (
        f"ModelLineage {place.namespace}/{lineage.name}: spec.pinnedVersion unset -> v1; "
        "the operator rolls the serving Deployment to it\n"
    )
    after = place.lineage(lineage.name)
    assert after["spec"] == {**before["spec"], "pinnedVersion": "v1"}
    assert after["status"] == before["status"]
    assert "warmstart-cli" in _managers(after) - _managers(before)

    code, out, _ = _run(capsys, place.cli("promote", lineage.name, "v1"))
    assert (code, out.endswith("already pinned to v1; nothing changed\n")) == (0, True)

    code, out, _ = _run(capsys, place.cli("promote", lineage.name, "v2"))
    code, out, _ = _run(capsys, place.cli("rollback", lineage.name))
    assert code == 0
    assert "spec.pinnedVersion v2 -> v1;" in out  # status.previousVersion
    final = place.lineage(lineage.name)
    assert final["spec"] == {**before["spec"], "pinnedVersion": "v1"}
    assert final["status"] == before["status"]


def test_a_patch_from_a_stale_read_is_refused_as_a_conflict(
    place: Place, recorded: Callable[..., Recorded]
) -> None:
    lineage = recorded()
    stale = place.lineage(lineage.name)["metadata"]["resourceVersion"]
    client.CustomObjectsApi(place.api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        place.namespace,
        MODELLINEAGE_PLURAL,
        lineage.name,
        {"status": {"latestVersion": "v2"}},
    )  # what the operator does between the CLI's read and its write
    kube = Kube.connect(KubeOptions(str(place.cluster.kubeconfig), None, place.namespace))
    try:
        with pytest.raises(ConflictError, match="changed while it was being updated"):
            kube.merge_patch_lineage(lineage.name, pin_patch("v1", stale))
    finally:
        kube.close()
    assert "pinnedVersion" not in place.lineage(lineage.name)["spec"]


def test_promote_refuses_rejected_and_unknown_versions(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()

    code, _, err = _run(capsys, place.cli("promote", lineage.name, "v3"))
    assert code == 2
    assert _error(err) == (
        "warmstart: error: refusing to promote v3: the promotion gate rejected it "
        "(InsufficientImprovement)"
    )

    code, _, err = _run(capsys, place.cli("promote", lineage.name, "v9"))
    assert code == 2
    assert _error(err) == (
        f"warmstart: error: ModelLineage {place.namespace}/{lineage.name} has no version 'v9' "
        "(recorded: base, v1, v2, v3)"
    )
    assert "pinnedVersion" not in place.lineage(lineage.name)["spec"]


def test_unknown_lineage_and_version(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()

    code, _, err = _run(capsys, place.cli("lineage", "tree", "no-such-lineage"))
    assert code == 2
    line = _error(err)
    assert line.startswith(
        f"warmstart: error: ModelLineage {place.namespace}/no-such-lineage not found"
    )
    assert lineage.name in line  # the hint lists what does exist

    code, _, err = _run(capsys, place.cli("lineage", "verify", lineage.name, "v9"))
    assert code == 2
    assert "has no version 'v9'" in _error(err)


def test_missing_secret_or_key(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    no_secret = recorded(secret="absent-s3")
    code, _, err = _run(capsys, place.cli("lineage", "verify", no_secret.name))
    assert code == 2
    assert _error(err) == (
        f"warmstart: error: Secret {place.namespace}/absent-s3 not found (spec.storage.secretRef "
        f"of ModelLineage {place.namespace}/{no_secret.name})"
    )

    env = place.cluster.s3_env()
    place.create_secret("keyless-s3", {"AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"]})
    keyless = recorded(secret="keyless-s3")
    code, _, err = _run(capsys, place.cli("lineage", "verify", keyless.name))
    assert code == 2
    line = _error(err)
    assert f"Secret {place.namespace}/keyless-s3 has no AWS_SECRET_ACCESS_KEY" in line
    assert env["AWS_ACCESS_KEY_ID"] not in err


def test_storage_unreachable_or_refusing(
    place: Place, recorded: Callable[..., Recorded], capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = recorded()
    code, _, err = _run(
        capsys,
        place.cli("lineage", "verify", lineage.name, "--s3-endpoint", "http://127.0.0.1:9"),
    )
    assert code == 2
    assert "storage unreachable" in _error(err)

    env = place.cluster.s3_env()
    place.create_secret("wrong-s3", {**env, "AWS_SECRET_ACCESS_KEY": "not-the-key"})
    denied = recorded(secret="wrong-s3")
    code, _, err = _run(capsys, place.cli("lineage", "verify", denied.name))
    assert code == 2
    line = _error(err)
    assert "credentials rejected" in line or "access denied" in line
    assert "not-the-key" not in err


def test_kubectl_runs_it_as_a_plugin(place: Place, recorded: Callable[..., Recorded]) -> None:
    lineage = recorded()
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kubectl-warmstart").exists()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "KUBECONFIG": str(place.cluster.kubeconfig)}
    kubectl = place.cluster.info.kubectl

    def plugin(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl, "warmstart", *args, "-n", place.namespace], env=env,
                              capture_output=True, text=True, timeout=60, check=False)

    shown = plugin("lineage", "tree", lineage.name)
    assert shown.returncode == 0, shown.stderr
    assert "[serving]" in shown.stdout

    refused = plugin("promote", lineage.name, "v3")
    assert refused.returncode == 2
    assert refused.stderr.startswith("kubectl warmstart: error: refusing to promote v3")
