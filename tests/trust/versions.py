"""Signed versions committed to a real storage backend by the trainer's own commit step."""

from __future__ import annotations

from pathlib import Path

from warmstart import record, storage
from warmstart_trainer.publish import commit_version

LINEAGE = "reviews"


def commit(
    store: storage.Storage,
    storage_uri: str,
    workdir: Path,
    version: str,
    parent: tuple[str, str] | None,
    key_file: Path | None,
    monkeypatch_env: dict[str, str] | None = None,
) -> str:
    """Commit a tiny version (one weights file) under storage_uri; returns its digest.
    ``parent`` is (version, manifest digest)."""
    folder = workdir / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(f"weights of {version}".encode())
    (folder / "config.json").write_text('{"model_type": "bert"}')
    prefix = record.version_uri(storage_uri, version)
    dataset = record.DatasetRef(
        "train", f"{storage_uri}data/train.jsonl", record.sha256_bytes(b"rows"), 2
    )

    def make(files: tuple[record.FileEntry, ...]) -> record.Manifest:
        return record.Manifest(
            version=version,
            lineage=LINEAGE,
            task=record.TASK_SEQUENCE_CLASSIFICATION,
            labels=("neg", "pos"),
            parent=record.ParentRef(
                parent[0], record.version_uri(storage_uri, parent[0]), parent[1]
            )
            if parent
            else None,
            files=files,
            datasets=(dataset,),
            created_at="2026-12-02T17:00:00Z",
        )

    _, digest = commit_version(
        store, folder, prefix, make, parameters={"version": version, "learningRate": 5e-5}
    )
    return digest
