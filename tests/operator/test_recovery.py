"""Re-indexing a lineage from storage (pure parts): which folders count as versions, and
what the recovered index entries say."""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from tests.conftest import wait_for
from tests.operator import kit
from warmstart import record
from warmstart.api.constants import VersionPhase
from warmstart_operator.objectstore import ReadManifest
from warmstart_operator.recovery import recovered_entries, version_names

STORAGE = "s3://bucket/reviews/"


def test_only_folders_with_a_manifest_directly_under_storage_are_versions() -> None:
    uris = [
        STORAGE + "v1/manifest.json", STORAGE + "v1/model.safetensors",
        STORAGE + "v2/model.safetensors",  # no manifest: an interrupted write, not a version
        STORAGE + "v3/manifest.json",
        STORAGE + "v3/checkpoints/step-10/manifest.json",  # deeper: not a version
        STORAGE + "manifest.json",  # at the top: not a version folder
        "s3://bucket/other/v9/manifest.json",
    ]
    assert version_names(uris, "s3://bucket/reviews") == ["v1", "v3"]


def read(version: str, created: str, lineage: str = "reviews",
         parent: str | None = "base") -> ReadManifest:
    manifest = record.Manifest(
        version=version, lineage=lineage, task="text-classification",
        labels=("negative", "positive"),
        parent=record.ParentRef(parent, STORAGE + f"{parent}/", "sha256:" + "a" * 64)
        if parent else None,
        files=(record.FileEntry("model.safetensors", "sha256:" + "b" * 64, 10),),
        created_at=created)
    raw = manifest.to_bytes()
    return ReadManifest(manifest, record.manifest_digest(raw), raw)


def test_recovered_entries_are_candidates_except_what_serves_and_sorted_by_age() -> None:
    found = [
        ("v2", STORAGE + "v2/", read("v2", "2026-11-20T10:00:00Z", parent="v1")),
        ("v1", STORAGE + "v1/", read("v1", "2026-11-13T10:00:00Z")),
        ("alien", STORAGE + "alien/", read("alien", "2026-11-14T10:00:00Z", lineage="spam")),
        ("renamed", STORAGE + "renamed/", read("v7", "2026-11-15T10:00:00Z")),
    ]
    entries = recovered_entries(found, "reviews", serving="v1")
    assert [e.name for e in entries] == ["v1", "v2"]
    v1, v2 = entries
    assert v1.phase == VersionPhase.PROMOTED and v1.parent == "base"
    assert v2.phase == VersionPhase.CANDIDATE and v2.parent == "v1"
    assert v2.reason is not None and v2.reason.startswith("RecoveredFromStorage")
    assert v2.manifest_digest == found[0][2].digest
    assert [e.phase for e in recovered_entries(found, "reviews", serving=None)] == [
        VersionPhase.CANDIDATE, VersionPhase.CANDIDATE]


def test_a_recreated_lineage_gets_its_versions_back(
    namespace: str, api: kit.Api, operator: kit.OperatorProcess, tiny_lineage: kit.TinyLineage,
) -> None:
    kit.serve_reviews(api, tiny_lineage)
    api.create("warmstartjobs", kit.wsj_manifest("reviews-week1", tiny_lineage, "week1"))
    assert api.finished("reviews-week1") == "Succeeded", operator.log()
    api.serving("reviews-week1")
    before = api.version("reviews-week1")

    # Deleted by mistake and applied again (status starts empty).
    api.custom.delete_namespaced_custom_object(kit.GROUP, kit.VERSION, namespace, "modellineages",
                                               "reviews")
    wait_for("the lineage to be gone", lambda: not _exists(api), timeout=60)
    api.create("modellineages", kit.lineage_manifest("reviews", tiny_lineage,
                                                     serving="reviews-server"))
    wait_for("week 1 to be re-indexed", lambda: any(
        v["name"] == "reviews-week1" for v in api.lineage_status().get("versions") or []),
        timeout=60)
    again = api.version("reviews-week1")
    assert again["manifestDigest"] == before["manifestDigest"]
    assert again["phase"] == "Promoted" and again["parent"] == "base"
    assert again["reason"].startswith("RecoveredFromStorage")
    api.serving("reviews-week1")
    assert api.deployment_version() == "reviews-week1"  # nothing was rolled out
    events = api.core.list_namespaced_event(
        namespace, field_selector="involvedObject.kind=ModelLineage").items
    assert any(e.reason == "RecoveredFromStorage" for e in events), [e.reason for e in events]

    # The recovered index is a working one: the next job warm-starts from what serves.
    api.create("warmstartjobs", kit.wsj_manifest("reviews-week2", tiny_lineage, "week2"))
    assert api.finished("reviews-week2") in ("Succeeded", "Rejected"), operator.log()
    week2 = api.get("warmstartjobs", "reviews-week2")["status"]
    assert week2["parent"]["version"] == "reviews-week1"
    assert week2["parent"]["manifestDigest"] == before["manifestDigest"]


def _exists(api: kit.Api) -> bool:
    try:
        api.get("modellineages", "reviews")
        return True
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
