"""Verification of a lineage record: a version's local files, and the hash chain to its root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from warmstart.record.files import (
    MANIFEST_NAME,
    ChainError,
    DigestMismatchError,
    RecordError,
    check_file_name,
    ensure_prefix,
    file_sha256,
    refuse_pickle,
    verify_manifest_digest,
)
from warmstart.record.manifest import Manifest, parse_manifest

# --- verification --------------------------------------------------------------------------


def verify_local_files(manifest: Manifest, directory: Path, *, where: str) -> None:
    """Check every file the manifest lists against its size and sha256 in ``directory``.

    Also refuses a pickle-format file lying in the directory even if the manifest does not
    list it: a loader that scans the directory (transformers does) could still pick it up.
    """
    refuse_pickle(manifest.file_names, where=where)
    present = [p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()]
    refuse_pickle(present, where=where)
    for entry in manifest.files:
        path = directory / check_file_name(entry.name)
        if not path.is_file():
            raise RecordError(f"{where}: {entry.name}: listed in the manifest but missing")
        size = path.stat().st_size
        if size != entry.size:
            raise DigestMismatchError(
                f"{where}: {entry.name}", f"{entry.size} bytes", f"{size} bytes"
            )
        actual = file_sha256(path)
        if actual != entry.sha256:
            raise DigestMismatchError(f"{where}: {entry.name}", entry.sha256, actual)


class RecordReader(Protocol):
    """What chain verification needs from object storage; ``warmstart.storage`` provides it."""

    def read_manifest(self, version_prefix: str) -> bytes:
        """The stored bytes of ``<version_prefix>manifest.json``."""
        ...

    def file_digest(self, version_prefix: str, name: str) -> str:
        """``sha256:<hex>`` of the stored content of file ``name`` of that version."""
        ...


@dataclass(frozen=True)
class ChainLink:
    version: str
    uri: str
    manifest_digest: str
    manifest: Manifest


def verify_chain(
    reader: RecordReader,
    version_prefix: str,
    expected_digest: str,
    *,
    check_files: bool = True,
    max_depth: int = 10_000,
) -> list[ChainLink]:
    """Walk the lineage from a version to its root, verifying every link.

    Each manifest must hash to the digest its child recorded (the first to
    ``expected_digest``), and with ``check_files`` every listed file must hash to its entry.
    A cold start is a root: it has no parent link; the version it was compared with is
    checked to hash to the digest it recorded, but its chain is not walked from there.
    Returns the links from the given version back to the root. Raises ``RecordError``
    subclasses naming the version and what failed.
    """
    links: list[ChainLink] = []
    seen: set[str] = set()
    uri, digest, name = ensure_prefix(version_prefix), expected_digest, "version"
    while True:
        if digest in seen:
            raise ChainError(f"{uri}: lineage cycles back to manifest {digest}")
        if len(links) >= max_depth:
            raise ChainError(f"{version_prefix}: lineage deeper than {max_depth} versions")
        seen.add(digest)
        data = reader.read_manifest(uri)
        verify_manifest_digest(data, digest, what=f"{name} at {uri}: {MANIFEST_NAME}")
        manifest = parse_manifest(data, source=f"{uri}{MANIFEST_NAME}")
        refuse_pickle(manifest.file_names, where=f"{name} {manifest.version} at {uri}")
        if check_files:
            for entry in manifest.files:
                actual = reader.file_digest(uri, entry.name)
                if actual != entry.sha256:
                    raise DigestMismatchError(
                        f"{name} {manifest.version} at {uri}: {entry.name}", entry.sha256, actual
                    )
        links.append(ChainLink(manifest.version, uri, digest, manifest))
        if manifest.parent is None:
            if manifest.compared_with is not None:
                _check_compared_with(reader, manifest, name)
            return links
        uri = ensure_prefix(manifest.parent.uri)
        digest = manifest.parent.manifest_digest
        name = f"ancestor {manifest.parent.version}"


def _check_compared_with(reader: RecordReader, manifest: Manifest, name: str) -> None:
    compared = manifest.compared_with
    assert compared is not None
    uri = ensure_prefix(compared.uri)
    verify_manifest_digest(
        reader.read_manifest(uri),
        compared.manifest_digest,
        what=f"{name} {manifest.version}: comparedWith {compared.version} at {uri}: "
        f"{MANIFEST_NAME}",
    )
