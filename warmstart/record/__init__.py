"""The lineage record: the manifest that commits a model version, its digests, the hash chain.

Object storage is the durable record of a model family (DESIGN.md, "Object storage layout"):

    <storage.uri>/<version>/model.safetensors, config.json, tokenizer files, ...
    <storage.uri>/<version>/manifest.json      written LAST: its presence commits the version

Every manifest lists the sha256 of every file of its version and carries its parent's
``manifestDigest`` (the sha256 of the parent's manifest bytes), so the versions form a hash
chain: altering any byte of an ancestor's files or manifest is detected by walking it.

The trainer writes this format and the operator and CLI read it, so it lives in one package with
no dependency beyond the standard library and pydantic (no torch, no boto3): reading from
object storage is the caller's job, behind the small ``RecordReader`` protocol. Its metrics,
training and hyperparameters sections are typed by ``warmstart.manifestschema``.

The package: ``files`` (digests, names, layout), ``manifest`` (the manifest and its
parsing), ``chain`` (verification). Import everything from ``warmstart.record``.
"""

from __future__ import annotations

from warmstart.record.chain import (
    ChainLink,
    RecordReader,
    verify_chain,
    verify_local_files,
)
from warmstart.record.files import (
    DATASET_ROLES,
    DIGEST_PREFIX,
    KNOWN_TASKS,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    PICKLE_SUFFIXES,
    TASK_SEQUENCE_CLASSIFICATION,
    ChainError,
    DigestMismatchError,
    ManifestFormatError,
    PickleFileError,
    RecordError,
    UnsafeFileNameError,
    check_file_name,
    ensure_prefix,
    file_sha256,
    file_uri,
    is_digest,
    is_pickle_name,
    manifest_digest,
    manifest_uri,
    refuse_pickle,
    sha256_bytes,
    sha256_chunks,
    verify_manifest_digest,
    version_uri,
)
from warmstart.record.manifest import (
    DatasetRef,
    FileEntry,
    Manifest,
    ParentRef,
    build_file_entries,
    parse_manifest,
)

__all__ = [
    "DATASET_ROLES",
    "DIGEST_PREFIX",
    "KNOWN_TASKS",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "PICKLE_SUFFIXES",
    "TASK_SEQUENCE_CLASSIFICATION",
    "ChainError",
    "ChainLink",
    "DatasetRef",
    "DigestMismatchError",
    "FileEntry",
    "Manifest",
    "ManifestFormatError",
    "ParentRef",
    "PickleFileError",
    "RecordError",
    "RecordReader",
    "UnsafeFileNameError",
    "build_file_entries",
    "check_file_name",
    "ensure_prefix",
    "file_sha256",
    "file_uri",
    "is_digest",
    "is_pickle_name",
    "manifest_digest",
    "manifest_uri",
    "parse_manifest",
    "refuse_pickle",
    "sha256_bytes",
    "sha256_chunks",
    "verify_chain",
    "verify_local_files",
    "verify_manifest_digest",
    "version_uri",
]
