"""A small real lineage record written with warmstart.record: base -> v1 -> v2.

Tiny stand-in files (no torch): the hash chain does not care what the bytes mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.cli.builders import LineageBuilder
from warmstart import record

CHAIN = ("base", "v1", "v2")
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class RecordedVersion:
    name: str
    parent: str | None
    uri: str
    manifest_digest: str
    manifest_bytes: bytes
    files: dict[str, bytes]
    accuracy: float


def write_chain(
    put: Callable[[str, bytes], None],
    storage_uri: str,
    lineage: str,
    names: Sequence[str] = CHAIN,
) -> list[RecordedVersion]:
    """Write each version's files, then its manifest (last, as the trainer does)."""
    written: list[RecordedVersion] = []
    for index, name in enumerate(names):
        parent = written[-1] if written else None
        prefix = record.version_uri(storage_uri, name)
        files = {
            WEIGHTS: f"weights of {name} ".encode() * 8,
            "config.json": f'{{"hidden_size": 8, "version": "{name}"}}\n'.encode(),
        }
        for file_name, data in files.items():
            put(record.file_uri(prefix, file_name), data)
        accuracy = round(0.70 + 0.05 * index, 3)
        manifest = record.Manifest(
            version=name,
            lineage=lineage,
            task=record.TASK_SEQUENCE_CLASSIFICATION,
            labels=("negative", "positive") if parent else (),
            parent=(
                record.ParentRef(parent.name, parent.uri, parent.manifest_digest)
                if parent
                else None
            ),
            files=tuple(
                record.FileEntry(file_name, record.sha256_bytes(data), len(data))
                for file_name, data in sorted(files.items())
            ),
            metrics={"accuracy": accuracy},
            created_at=f"2025-01-0{index + 1}T00:00:00Z",
        )
        data = manifest.to_bytes()
        put(record.manifest_uri(prefix), data)
        written.append(
            RecordedVersion(
                name=name,
                parent=parent.name if parent else None,
                uri=prefix,
                manifest_digest=record.manifest_digest(data),
                manifest_bytes=data,
                files=files,
                accuracy=accuracy,
            )
        )
    return written


def index(builder: LineageBuilder, versions: Sequence[RecordedVersion]) -> LineageBuilder:
    """Index the recorded versions in the lineage status, as the operator would."""
    for version in versions:
        builder.version(
            version.name,
            version.parent,
            digest=version.manifest_digest,
            accuracy=version.accuracy,
        )
    return builder


def flip_byte(data: bytes, position: int) -> bytes:
    """``data`` with one byte changed: the smallest possible tampering."""
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]
