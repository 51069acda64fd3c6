"""The lineage record: manifest bytes, parsing errors, the hash chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warmstart import record
from warmstart.storage import Storage


def _write_version(
    store: Storage,
    root: Path,
    version: str,
    parent: record.ParentRef | None,
    content: bytes,
    *,
    compared_with: record.ParentRef | None = None,
) -> tuple[str, str]:
    """A version with two files under ``root``; returns (uri, manifestDigest)."""
    local = root / "staging" / version
    local.mkdir(parents=True)
    (local / "model.safetensors").write_bytes(content)
    (local / "config.json").write_text(json.dumps({"model_type": "bert", "v": version}))
    uri = record.version_uri((root / "bucket").as_uri(), version)
    files = record.build_file_entries(local, ["model.safetensors", "config.json"])
    for entry in files:
        store.upload_file(local / entry.name, record.file_uri(uri, entry.name))
    manifest = record.Manifest(
        version=version,
        lineage="reviews",
        task=record.TASK_SEQUENCE_CLASSIFICATION,
        labels=("negative", "positive") if parent or compared_with else (),
        parent=parent,
        compared_with=compared_with,
        files=files,
        datasets=(record.DatasetRef("train", "s3://b/train.jsonl", "sha256:" + "a" * 64, 10),),
        created_at="2024-05-01T00:00:00Z",
    )
    data = manifest.to_bytes()
    store.put_bytes(record.manifest_uri(uri), data)
    return uri, record.manifest_digest(data)


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Storage, list[tuple[str, str]]]:
    store = Storage()
    v0 = _write_version(store, tmp_path, "v0", None, b"weights-0" * 100)
    v1 = _write_version(
        store, tmp_path, "v1", record.ParentRef("v0", v0[0], v0[1]), b"weights-1" * 100
    )
    v2 = _write_version(
        store, tmp_path, "v2", record.ParentRef("v1", v1[0], v1[1]), b"weights-2" * 100
    )
    return store, [v0, v1, v2]


def test_intact_chain_verifies_back_to_the_root(
    chain: tuple[Storage, list[tuple[str, str]]],
) -> None:
    store, versions = chain
    uri, digest = versions[2]
    links = record.verify_chain(store, uri, digest)
    assert [link.version for link in links] == ["v2", "v1", "v0"]
    assert [link.manifest_digest for link in links] == [d for _, d in reversed(versions)]


def test_altered_ancestor_byte_is_detected(chain: tuple[Storage, list[tuple[str, str]]]) -> None:
    store, versions = chain
    weights = record.file_uri(versions[0][0], "model.safetensors")
    data = bytearray(store.get_bytes(weights))
    data[10] ^= 0x20
    store.put_bytes(weights, bytes(data))
    uri, digest = versions[2]
    with pytest.raises(record.DigestMismatchError, match=r"ancestor v0 .*model\.safetensors"):
        record.verify_chain(store, uri, digest)
    # Walking manifests only cannot see file bytes; that is what check_files is for.
    assert len(record.verify_chain(store, uri, digest, check_files=False)) == 3


def test_altered_ancestor_manifest_is_detected(
    chain: tuple[Storage, list[tuple[str, str]]],
) -> None:
    store, versions = chain
    manifest_uri = record.manifest_uri(versions[1][0])
    doc = json.loads(store.get_bytes(manifest_uri))
    doc["labels"] = ["positive", "negative"]  # a quiet, plausible edit
    store.put_bytes(manifest_uri, json.dumps(doc).encode())
    uri, digest = versions[2]
    with pytest.raises(record.DigestMismatchError, match=r"ancestor v1 .*manifest\.json"):
        record.verify_chain(store, uri, digest, check_files=False)


def test_wrong_expected_digest_is_detected(chain: tuple[Storage, list[tuple[str, str]]]) -> None:
    store, versions = chain
    with pytest.raises(record.DigestMismatchError, match="version at"):
        record.verify_chain(store, versions[2][0], "sha256:" + "1" * 64)


def test_cold_start_is_a_root_whose_compared_version_is_checked(
    chain: tuple[Storage, list[tuple[str, str]]], tmp_path: Path
) -> None:
    store, versions = chain
    compared = record.ParentRef("v1", *versions[1])
    uri, digest = _write_version(
        store, tmp_path, "cold", None, b"random-weights" * 100, compared_with=compared
    )
    (link,) = record.verify_chain(store, uri, digest)
    assert link.manifest.parent is None
    assert link.manifest.compared_with == compared
    assert b'"comparedWith"' in store.get_bytes(record.manifest_uri(uri))
    # A warm version's bytes carry no comparedWith key: older manifests keep their digests.
    assert b"comparedWith" not in store.get_bytes(record.manifest_uri(versions[2][0]))

    compared_manifest = record.manifest_uri(versions[1][0])
    doc = json.loads(store.get_bytes(compared_manifest))
    doc["createdAt"] = "2020-01-01T00:00:00Z"
    store.put_bytes(compared_manifest, json.dumps(doc).encode())
    with pytest.raises(record.DigestMismatchError, match=r"comparedWith v1 .*manifest\.json"):
        record.verify_chain(store, uri, digest)


def test_manifest_bytes_round_trip_and_are_stable() -> None:
    manifest = record.Manifest(
        version="v3",
        lineage="reviews",
        task=record.TASK_SEQUENCE_CLASSIFICATION,
        labels=("neg", "pos"),
        parent=record.ParentRef("v2", "s3://b/r/v2/", "sha256:" + "b" * 64),
        files=(
            record.FileEntry("model.safetensors", "sha256:" + "c" * 64, 10),
            record.FileEntry("config.json", "sha256:" + "d" * 64, 2),
        ),
        metrics={"holdout": {"candidate": {"accuracy": 0.9}}},
        created_at="2024-05-01T00:00:00Z",
    )
    data = manifest.to_bytes()
    assert manifest.to_bytes() == data
    parsed = record.parse_manifest(data)
    assert parsed.to_bytes() == data
    assert parsed.file_names == ("config.json", "model.safetensors")  # sorted on write
    assert parsed.parent == manifest.parent


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("version"), "version: missing"),
        (lambda d: d.update(format="other/v9"), "format"),
        (lambda d: d["parent"].update(manifestDigest="sha256:XYZ"), "parent: manifestDigest"),
        (lambda d: d["files"][0].update(name="../../etc/passwd"), "files[0].name"),
        (lambda d: d["files"][0].update(size=-1), "files[0]: size"),
        (lambda d: d.update(labels=["a", "a"]), "labels: duplicate"),
        (lambda d: d.update(task="translation"), "task"),
    ],
)
def test_invalid_manifest_names_the_field(mutate: object, field: str) -> None:
    manifest = record.Manifest(
        version="v1",
        lineage="l",
        task=record.TASK_SEQUENCE_CLASSIFICATION,
        labels=("a", "b"),
        parent=record.ParentRef("v0", "s3://b/l/v0/", "sha256:" + "e" * 64),
        files=(record.FileEntry("model.safetensors", "sha256:" + "f" * 64, 1),),
        created_at="2024-05-01T00:00:00Z",
    )
    doc = manifest.to_json()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(
        record.ManifestFormatError, match=field.replace("[", r"\[").replace("]", r"\]")
    ):
        record.parse_manifest(json.dumps(doc).encode())


@pytest.mark.parametrize("name", ["pytorch_model.bin", "x.pt", "a/b.PTH", "opt.pkl", "last.ckpt"])
def test_pickle_names_are_refused(name: str) -> None:
    with pytest.raises(record.PickleFileError, match="pickle"):
        record.refuse_pickle(["config.json", name], where="here")
    record.refuse_pickle(["config.json", "model.safetensors", "vocab.txt"], where="here")


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../b", "a//b", "a\\b", "", "manifest.json"])
def test_unsafe_file_names_are_refused(name: str) -> None:
    with pytest.raises(record.UnsafeFileNameError):
        record.check_file_name(name)


def test_local_files_are_checked_against_the_manifest(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"12345")
    manifest = record.Manifest(
        version="v1",
        lineage="l",
        task=record.TASK_SEQUENCE_CLASSIFICATION,
        labels=(),
        parent=None,
        files=record.build_file_entries(tmp_path, ["model.safetensors"]),
    )
    record.verify_local_files(manifest, tmp_path, where="v1")
    (tmp_path / "model.safetensors").write_bytes(b"12346")
    with pytest.raises(record.DigestMismatchError, match=r"model\.safetensors"):
        record.verify_local_files(manifest, tmp_path, where="v1")
    (tmp_path / "model.safetensors").write_bytes(b"12345")
    (tmp_path / "stray.pt").write_bytes(b"x")
    with pytest.raises(record.PickleFileError, match=r"stray\.pt"):
        record.verify_local_files(manifest, tmp_path, where="v1")


def test_dataset_digest_names_training_data_only() -> None:
    def manifest(*refs: record.DatasetRef) -> record.Manifest:
        return record.Manifest(
            version="v1",
            lineage="l",
            task=record.TASK_SEQUENCE_CLASSIFICATION,
            labels=(),
            parent=None,
            files=(),
            datasets=refs,
        )

    train = record.DatasetRef("train", "s3://b/t", "sha256:" + "1" * 64, 5)
    holdout = record.DatasetRef("holdout", "s3://b/h", "sha256:" + "2" * 64, 5)
    other = record.DatasetRef("train", "s3://b/t", "sha256:" + "3" * 64, 5)
    assert manifest(train).dataset_digest == manifest(train, holdout).dataset_digest
    assert manifest(train).dataset_digest != manifest(other).dataset_digest
    assert manifest().dataset_digest is None
