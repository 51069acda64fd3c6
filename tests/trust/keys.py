"""Keys and signed manifests for the trust tests (made fresh, never checked in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from warmstart import record, signing


@dataclass(frozen=True)
class KeyPair:
    name: str
    private_file: Path
    trusted: signing.TrustedKey


def make_key(directory: Path, name: str) -> KeyPair:
    private = signing.generate_private_key_pem()
    path = directory / f"{name}.key"
    path.write_bytes(private)
    path.chmod(0o600)
    return KeyPair(name, path, signing.trusted_key(name, signing.public_key_pem(private)))


def manifest_bytes(
    version: str, *, parent: record.ParentRef | None = None, metric: float = 0.5
) -> bytes:
    entry = record.FileEntry("model.safetensors", record.sha256_bytes(version.encode()), 7)
    return record.Manifest(
        version=version,
        lineage="reviews",
        task=record.TASK_SEQUENCE_CLASSIFICATION,
        labels=("neg", "pos"),
        parent=parent,
        files=(entry,),
        metrics={"holdout": {"candidate": {"accuracy": metric}}},
        created_at="2026-12-02T17:00:00Z",
    ).to_bytes()
