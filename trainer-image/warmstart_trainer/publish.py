"""Committing a version: upload every file, confirm it landed, then write the manifest.

The manifest is the commit record (DESIGN.md): it goes last, so a crash anywhere before it
leaves stray files but no version, and a reader that finds a manifest finds every file it
lists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warmstart import record, storage
from warmstart_trainer.attest import write_attestations
from warmstart_trainer.errors import InvalidInputError, RefusedError, TrainerError

log = logging.getLogger(__name__)

ManifestFactory = Callable[[tuple[record.FileEntry, ...]], record.Manifest]


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_files(directory: Path) -> list[str]:
    """Relative names of the regular, non-hidden files under ``directory`` (manifest excluded)."""
    names = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in relative.split("/")):
            continue
        if relative != record.MANIFEST_NAME:
            names.append(relative)
    return names


def commit_version(
    store: storage.Storage,
    directory: Path,
    version_prefix: str,
    make_manifest: ManifestFactory,
    names: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> tuple[record.Manifest, str]:
    """Upload ``names`` (default: every file) from ``directory``, then the manifest.

    Returns the manifest and its digest. Raises before writing the manifest if any upload
    failed or any object is missing or has the wrong size afterwards.
    """
    prefix = record.ensure_prefix(version_prefix)
    chosen = list(names) if names is not None else local_files(directory)
    try:
        record.refuse_pickle(chosen, where=str(directory))
    except record.PickleFileError as exc:
        raise RefusedError(str(exc)) from None
    entries = record.build_file_entries(directory, chosen)
    manifest = make_manifest(entries)
    store.upload_files([(directory / e.name, record.file_uri(prefix, e.name)) for e in entries])
    stored = {info.uri: info.size for info in store.list(prefix)}
    for entry in entries:
        uri = record.file_uri(prefix, entry.name)
        if stored.get(uri) != entry.size:
            raise TrainerError(
                f"{uri}: expected {entry.size} bytes in storage after upload, found "
                f"{stored.get(uri)}; not committing the version"
            )
    data = manifest.to_bytes()
    # Provenance and signature go before the manifest: a committed version is signed.
    write_attestations(store, prefix, manifest, data, parameters=parameters or {})
    store.put_bytes(record.manifest_uri(prefix), data, content_type="application/json")
    digest = record.manifest_digest(data)
    log.info("committed version %s at %s (manifest %s)", manifest.version, prefix, digest)
    return manifest, digest


def version_name_from_uri(uri: str) -> str:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise InvalidInputError(f"--uri {uri!r}: want <storage.uri>/<version>/")
    return name


def publish_base(
    store: storage.Storage,
    directory: Path,
    uri: str,
    *,
    lineage: str,
    task: str = record.TASK_SEQUENCE_CLASSIFICATION,
    labels: Sequence[str] = (),
    software: dict[str, str] | None = None,
) -> tuple[record.Manifest, str]:
    """Publish a local Hugging Face checkpoint directory as a lineage's root version.

    Idempotent: if the same files are already committed there, the existing manifest and its
    digest are returned rather than a second manifest with a new timestamp.
    """
    if not directory.is_dir():
        raise InvalidInputError(f"--dir {directory}: not a directory")
    names = local_files(directory)
    try:
        record.refuse_pickle(names, where=str(directory))
    except record.PickleFileError as exc:
        raise RefusedError(str(exc)) from None
    if "config.json" not in names:
        raise InvalidInputError(f"--dir {directory}: no config.json: not a Hugging Face checkpoint")
    if not any(name.endswith(".safetensors") for name in names):
        raise InvalidInputError(f"--dir {directory}: no .safetensors weights")
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{directory / 'config.json'}: not valid JSON: {exc}") from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise InvalidInputError(f"{directory / 'config.json'}: has no model_type")
    prefix = record.ensure_prefix(uri)
    version = version_name_from_uri(prefix)

    entries = record.build_file_entries(directory, names)
    existing = read_committed(store, prefix)
    if existing is not None:
        manifest, digest = existing
        if {(e.name, e.sha256) for e in manifest.files} == {(e.name, e.sha256) for e in entries}:
            log.info(
                "version %s at %s already holds these files (manifest %s)", version, prefix, digest
            )
            return manifest, digest
        raise RefusedError(f"{prefix} already holds a different committed version; not overwriting")

    def make(files: tuple[record.FileEntry, ...]) -> record.Manifest:
        return record.Manifest(
            version=version,
            lineage=lineage,
            task=task,
            labels=tuple(labels),
            parent=None,
            files=files,
            training={
                "kind": "imported",
                "source": directory.name,
                "modelType": config["model_type"],
            },
            software=software or {},
            created_at=utc_now(),
        )

    return commit_version(
        store, directory, prefix, make, names,
        parameters={"kind": "imported", "source": directory.name},
    )


def read_committed(store: storage.Storage, prefix: str) -> tuple[record.Manifest, str] | None:
    try:
        data = store.read_manifest(prefix)
    except storage.ObjectNotFoundError:
        return None
    try:
        manifest = record.parse_manifest(data, source=record.manifest_uri(prefix))
    except record.RecordError as exc:
        raise RefusedError(f"{prefix} holds an unreadable manifest: {exc}") from None
    return manifest, record.manifest_digest(data)
