"""Hash-chain verification on a real record in a local directory (Storage's file:// backend)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.cli.builders import make_lineage
from tests.cli.records import WEIGHTS, RecordedVersion, flip_byte, index, write_chain
from warmstart import record, storage
from warmstart.cli.errors import CliError, NotFoundError, StorageAccessError
from warmstart.cli.progress import Progress
from warmstart.cli.verify import VerifyReport, choose_start, verify_lineage
from warmstart.cli.view import LineageView
from warmstart.storage import S3Settings, Storage


class Record:
    """A base -> v1 -> v2 record on disk and the lineage view indexing it."""

    def __init__(self, root: Path) -> None:
        self.storage = Storage()
        self.storage_uri = root.as_uri() + "/lineage/"
        self.versions = write_chain(self.storage.put_bytes, self.storage_uri, "reviews")
        self.builder = index(make_lineage(storage_uri=self.storage_uri), self.versions)
        self.builder.serving("v2", previous="v1")

    def view(self) -> LineageView:
        return self.builder.view()

    def version(self, name: str) -> RecordedVersion:
        return next(v for v in self.versions if v.name == name)

    def replace(self, name: str, object_name: str, data: bytes) -> None:
        """Overwrite one stored object of a version: the tampering under test."""
        self.storage.put_bytes(storage.join(self.version(name).uri, object_name), data)

    def verify(self, start: str | None = None, *, check_files: bool = True) -> VerifyReport:
        view = self.view()
        return verify_lineage(
            view, choose_start(view, start), self.storage, Progress(None), check_files=check_files
        )


@pytest.fixture
def chain(tmp_path: Path) -> Record:
    return Record(tmp_path)


def test_intact_chain_verifies_from_serving_to_base(chain: Record) -> None:
    report = chain.verify()

    assert report.intact
    assert [link.version for link in report.links] == ["v2", "v1", "base"]
    assert [link.manifest_digest for link in report.links] == [
        chain.version(name).manifest_digest for name in ("v2", "v1", "base")
    ]
    assert report.warnings == ()
    summary = report.summary(files_checked=True)
    assert (
        summary.splitlines()[-1]
        == "chain intact: v2 -> v1 -> base (3 versions, manifests and files)"
    )


def test_a_byte_changed_in_an_ancestors_weights_names_that_file(chain: Record) -> None:
    original = chain.version("v1").files[WEIGHTS]
    altered = flip_byte(original, 5)
    chain.replace("v1", WEIGHTS, altered)

    report = chain.verify()

    broken = report.broken
    assert broken is not None
    assert (broken.version, broken.object_name) == ("v1", WEIGHTS)
    assert broken.expected == record.sha256_bytes(original)
    assert broken.actual == record.sha256_bytes(altered)
    message = broken.describe()
    assert "chain broken at version v1 (ancestor of v2)" in message
    assert f"file {chain.version('v1').uri}{WEIGHTS}" in message
    assert f"expected {broken.expected} (recorded in v1's manifest), actual {broken.actual}" in (
        message
    )


def test_a_byte_changed_in_an_ancestors_manifest_names_the_childs_record(chain: Record) -> None:
    v1 = chain.version("v1")
    altered = flip_byte(v1.manifest_bytes, v1.manifest_bytes.index(b"0.75") + 3)
    assert b"0.74" in altered  # still valid JSON: only the digest can tell
    chain.replace("v1", record.MANIFEST_NAME, altered)

    broken = chain.verify().broken

    assert broken is not None
    assert (broken.version, broken.object_name) == ("v1", record.MANIFEST_NAME)
    assert broken.expected == v1.manifest_digest
    assert broken.actual == record.manifest_digest(altered)
    assert broken.recorded_by == "v2's manifest"
    assert broken.describe().startswith(
        f"chain broken at version v1 (ancestor of v2): manifest {v1.uri}manifest.json"
    )


def test_the_start_manifest_is_checked_against_the_lineage_status(chain: Record) -> None:
    v2 = chain.version("v2")
    chain.replace("v2", record.MANIFEST_NAME, v2.manifest_bytes + b" ")

    broken = chain.verify().broken

    assert broken is not None
    assert (broken.version, broken.recorded_by) == ("v2", "the lineage status")
    assert "chain broken at version v2: manifest" in broken.describe()


def test_the_base_is_checked_too(chain: Record) -> None:
    chain.replace("base", "config.json", b"{}")

    broken = chain.verify().broken

    assert broken is not None
    assert (broken.version, broken.object_name) == ("base", "config.json")


def test_the_chain_must_end_at_the_base_the_spec_pins(chain: Record) -> None:
    chain.builder.base_digest(chain.version("base").manifest_digest)
    assert chain.verify().intact

    chain.builder.base_digest("sha256:" + "a" * 64)
    broken = chain.verify().broken

    assert broken is not None
    assert broken.describe() == (
        f"chain broken at version base (ancestor of v2): manifest "
        f"{chain.version('base').uri}manifest.json: the chain does not end at the pinned base: "
        f"expected sha256:{'a' * 64} (recorded in spec.base.digest), "
        f"actual {chain.version('base').manifest_digest}"
    )


def test_verifying_from_an_ancestor_ignores_its_descendants(chain: Record) -> None:
    chain.replace("v2", WEIGHTS, b"tampered")

    report = chain.verify("v1")

    assert report.intact
    assert [link.version for link in report.links] == ["v1", "base"]


def test_a_deleted_file_is_a_broken_link(chain: Record) -> None:
    chain.storage.delete(record.file_uri(chain.version("v1").uri, WEIGHTS))

    broken = chain.verify().broken

    assert broken is not None
    assert (broken.version, broken.object_name) == ("v1", WEIGHTS)
    assert broken.problem.startswith("missing from storage")


def test_a_retired_ancestor_without_files_points_to_manifests_only(tmp_path: Path) -> None:
    chain = Record(tmp_path)
    chain.builder = index(make_lineage(storage_uri=chain.storage_uri), chain.versions[:1]).serving(
        "v2"
    )
    chain.builder.version(
        "v1", "base", phase="Retired", digest=chain.version("v1").manifest_digest
    ).version("v2", "v1", digest=chain.version("v2").manifest_digest)
    chain.storage.delete(record.file_uri(chain.version("v1").uri, WEIGHTS))

    broken = chain.verify().broken
    assert broken is not None
    assert "Retired" in broken.problem and "--manifests-only" in broken.problem

    report = chain.verify(check_files=False)
    assert report.intact
    assert report.summary(files_checked=False).endswith("(3 versions, manifests only)\n")


def test_status_that_disagrees_with_the_record_is_warned_about(chain: Record) -> None:
    view = chain.builder.view()
    wrong = make_lineage(storage_uri=chain.storage_uri)
    for version in chain.versions:
        digest = "sha256:" + "f" * 64 if version.name == "v1" else version.manifest_digest
        parent = None if version.name == "v2" else version.parent
        wrong.version(version.name, parent, digest=digest)
    wrong.serving("v2")
    view = wrong.view()

    report = verify_lineage(view, choose_start(view, None), chain.storage, Progress(None))

    assert report.intact  # the record is fine; only the index is off
    assert report.warnings == (
        "status.versions[v2].parent is unset, but its manifest names v1",
        f"status.versions[v1].manifestDigest is sha256:{'f' * 64}, but the chain records "
        f"{chain.version('v1').manifest_digest}",
    )


def test_progress_names_every_object_read(chain: Record) -> None:
    stream = io.StringIO()
    view = chain.view()

    verify_lineage(view, choose_start(view, None), chain.storage, Progress(stream, prefix="ws"))

    lines = stream.getvalue().splitlines()
    assert lines[0] == f"ws: v2: reading {chain.version('v2').uri}manifest.json"
    size = len(chain.version("v2").files[WEIGHTS])
    assert f"ws: v2: hashing {WEIGHTS} ({size} B)" in lines
    assert lines[-1] == "ws: base: hashing model.safetensors (" + (
        f"{len(chain.version('base').files[WEIGHTS])} B)"
    )
    assert len(lines) == 9  # 3 versions x (1 manifest + 2 files)


def test_unreachable_storage_is_an_error_not_a_broken_chain() -> None:
    view = make_lineage().version("base").serving("base").view()
    dead = Storage(S3Settings("id", "secret", endpoint_url="http://127.0.0.1:9", max_attempts=1))

    with pytest.raises(StorageAccessError, match="unreachable"):
        verify_lineage(view, choose_start(view, None), dead, Progress(None))


def test_start_defaults_to_serving_then_latest() -> None:
    builder = make_lineage().version("base").version("v1", "base")
    assert choose_start(builder.view(), None).name == "v1"  # latest
    assert choose_start(builder.serving("base").view(), None).name == "base"
    assert choose_start(builder.view(), "v1").name == "v1"


def test_start_must_be_a_recorded_version_with_a_digest() -> None:
    with pytest.raises(NotFoundError, match="nothing to verify"):
        choose_start(make_lineage().view(), None)
    with pytest.raises(NotFoundError, match=r"no version 'v9' \(recorded: base\)"):
        choose_start(make_lineage().version("base").view(), "v9")
    obj = make_lineage().version("base").obj()
    del obj["status"]["versions"][0]["manifestDigest"]
    from warmstart.cli.view import from_object

    with pytest.raises(CliError, match="no manifestDigest for base"):
        choose_start(from_object(obj, "ns"), None)
