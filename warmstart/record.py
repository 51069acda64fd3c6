"""The lineage record: the manifest that commits a model version, its digests, the hash chain.

Object storage is the durable record of a model family (DESIGN.md, "Object storage layout"):

    <storage.uri>/<version>/model.safetensors, config.json, tokenizer files, ...
    <storage.uri>/<version>/manifest.json      written LAST: its presence commits the version

Every manifest lists the sha256 of every file of its version and carries its parent's
``manifestDigest`` (the sha256 of the parent's manifest bytes), so the versions form a hash
chain: altering any byte of an ancestor's files or manifest is detected by walking it.

The trainer writes this format and the operator and CLI read it, so it lives in one module with
no dependency beyond the standard library and pydantic (no torch, no boto3): reading from
object storage is the caller's job, behind the small ``RecordReader`` protocol. Its metrics,
training and hyperparameters sections are typed by ``warmstart.manifestschema``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from warmstart.manifestschema import Evaluation, Hyperparameters, TrainingReport

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "warmstart.dev/manifest/v1"
DIGEST_PREFIX = "sha256:"
TASK_SEQUENCE_CLASSIFICATION = "sequence-classification"
KNOWN_TASKS = frozenset({TASK_SEQUENCE_CLASSIFICATION})

# Formats that torch/pickle deserialise by executing code: a checkpoint holding any of them is
# refused outright, whatever else it holds (DESIGN.md: no pickle is ever loaded).
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"})

DATASET_ROLES = ("train", "validation", "holdout", "replay")

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_READ_CHUNK = 1 << 20


class RecordError(Exception):
    """Base class: something about a lineage record is wrong or cannot be trusted."""


class ManifestFormatError(RecordError):
    """The manifest bytes are not a valid manifest; the message names the field."""


class DigestMismatchError(RecordError):
    """A file or manifest does not hash to the digest the record says it must."""

    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"{what}: digest mismatch: expected {expected}, got {actual}")
        self.what = what
        self.expected = expected
        self.actual = actual


class PickleFileError(RecordError):
    """A checkpoint holds a pickle-format file; loading it would execute code."""


class UnsafeFileNameError(RecordError):
    """A file name would escape the version's directory or is otherwise unusable."""


class ChainError(RecordError):
    """The lineage hash chain is broken (a cycle, or deeper than any real lineage)."""


# --- digests -------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return DIGEST_PREFIX + hashlib.sha256(data).hexdigest()


def sha256_chunks(chunks: Iterable[bytes]) -> str:
    """``sha256:<hex>`` of the concatenated chunks (for streamed object bodies)."""
    hasher = hashlib.sha256()
    for chunk in chunks:
        hasher.update(chunk)
    return DIGEST_PREFIX + hasher.hexdigest()


def file_sha256(path: Path) -> str:
    """``sha256:<hex>`` of a local file, read in chunks so large weights do not fill memory."""
    with path.open("rb") as handle:
        return sha256_chunks(iter(lambda: handle.read(_READ_CHUNK), b""))


def manifest_digest(manifest_bytes: bytes) -> str:
    """The ``manifestDigest`` of a version: sha256 of the manifest bytes exactly as stored."""
    return sha256_bytes(manifest_bytes)


def is_digest(value: str) -> bool:
    return bool(_DIGEST_RE.match(value))


def verify_manifest_digest(manifest_bytes: bytes, expected: str, *, what: str) -> None:
    """Raise ``DigestMismatchError`` unless the manifest bytes hash to ``expected``."""
    actual = manifest_digest(manifest_bytes)
    if actual != expected:
        raise DigestMismatchError(what, expected, actual)


# --- file names ----------------------------------------------------------------------------


def is_pickle_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in PICKLE_SUFFIXES


def refuse_pickle(names: Iterable[str], *, where: str) -> None:
    """Raise ``PickleFileError`` naming every pickle-format file among ``names``."""
    found = sorted(name for name in names if is_pickle_name(name))
    if found:
        raise PickleFileError(
            f"{where}: refusing pickle-format file(s) {', '.join(found)}: loading them would "
            "execute code; publish weights as safetensors only"
        )


def check_file_name(name: str) -> str:
    """Return ``name`` if it is a safe relative POSIX path inside a version, else raise.

    Names come from a manifest that may have been written by someone else: one holding
    ``../`` or an absolute path must never make a reader write outside its directory.
    """
    path = PurePosixPath(name)
    if (
        not name
        or "\\" in name
        or path.is_absolute()
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise UnsafeFileNameError(f"unsafe file name {name!r} in manifest")
    if name == MANIFEST_NAME:
        raise UnsafeFileNameError(f"{MANIFEST_NAME} cannot list itself")
    return name


# --- layout --------------------------------------------------------------------------------


def ensure_prefix(uri: str) -> str:
    """``uri`` with exactly one trailing slash: the form every version/storage URI is kept in."""
    return uri.rstrip("/") + "/"


def version_uri(storage_uri: str, version: str) -> str:
    """``<storage.uri>/<version>/``."""
    return ensure_prefix(storage_uri) + version + "/"


def file_uri(version_prefix: str, name: str) -> str:
    """The URI of file ``name`` inside the version at ``version_prefix``."""
    return ensure_prefix(version_prefix) + check_file_name(name)


def manifest_uri(version_prefix: str) -> str:
    return ensure_prefix(version_prefix) + MANIFEST_NAME


# --- the manifest --------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


@dataclass(frozen=True)
class ParentRef:
    """Where the parent version lives and the digest its manifest must hash to."""

    version: str
    uri: str
    manifest_digest: str

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "uri": self.uri, "manifestDigest": self.manifest_digest}


@dataclass(frozen=True)
class DatasetRef:
    role: str
    uri: str
    sha256: str
    examples: int

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "uri": self.uri,
            "sha256": self.sha256,
            "examples": self.examples,
        }


@dataclass(frozen=True)
class Manifest:
    """One committed model version. ``labels`` is empty for a base without a trained head."""

    version: str
    lineage: str
    task: str
    labels: tuple[str, ...]
    parent: ParentRef | None
    files: tuple[FileEntry, ...]
    datasets: tuple[DatasetRef, ...] = ()
    metrics: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    software: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    format: str = MANIFEST_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "lineage": self.lineage,
            "task": self.task,
            "labels": list(self.labels),
            "parent": self.parent.to_json() if self.parent else None,
            "files": [entry.to_json() for entry in sorted(self.files, key=lambda e: e.name)],
            "datasets": [ref.to_json() for ref in self.datasets],
            "metrics": dict(self.metrics),
            "training": dict(self.training),
            "hyperparameters": dict(self.hyperparameters),
            "software": dict(self.software),
            "createdAt": self.created_at,
        }

    def __post_init__(self) -> None:
        # The typed sections are checked when a manifest is built (the trainer) and when one
        # is parsed (everyone else): both sides hold to the same models.
        for name, model in _SECTIONS.items():
            _section(model, getattr(self, name), name, "manifest")

    @cached_property
    def evaluation(self) -> Evaluation:
        """`metrics`, typed."""
        return Evaluation.model_validate(dict(self.metrics))

    @cached_property
    def training_report(self) -> TrainingReport:
        """`training`, typed."""
        return TrainingReport.model_validate(dict(self.training))

    @cached_property
    def hyperparameter_set(self) -> Hyperparameters:
        """`hyperparameters`, typed."""
        return Hyperparameters.model_validate(dict(self.hyperparameters))

    def to_bytes(self) -> bytes:
        """The bytes to store; ``manifest_digest`` of exactly these is the version's digest.

        Sorted keys and a fixed layout make the same manifest always serialise to the same
        bytes, so a writer that retries after a crash produces the same digest.
        """
        text = json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False)
        return (text + "\n").encode("utf-8")

    def file(self, name: str) -> FileEntry:
        for entry in self.files:
            if entry.name == name:
                return entry
        raise KeyError(name)

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(entry.name for entry in self.files)

    @property
    def has_trained_head(self) -> bool:
        """True when the version was trained for ``labels`` (a base checkpoint has none)."""
        return bool(self.labels)

    @property
    def dataset_digest(self) -> str | None:
        """One digest naming the data the version was trained on (train and validation)."""
        lines = sorted(
            f"{ref.role} {ref.sha256}"
            for ref in self.datasets
            if ref.role in ("train", "validation")
        )
        if not lines:
            return None
        return sha256_bytes("\n".join(lines).encode("utf-8"))


_SECTIONS: dict[str, type[BaseModel]] = {
    "metrics": Evaluation, "training": TrainingReport, "hyperparameters": Hyperparameters}


def _section(model: type[BaseModel], raw: Mapping[str, Any], name: str, source: str) -> None:
    try:
        model.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in (name, *first["loc"]))
        raise ManifestFormatError(f"{source}: {where}: {first['msg']}") from None


def build_file_entries(directory: Path, names: Iterable[str]) -> tuple[FileEntry, ...]:
    """Hash the named files of a local version directory into manifest entries."""
    entries = []
    for name in sorted(set(names)):
        path = directory / check_file_name(name)
        entries.append(FileEntry(name=name, sha256=file_sha256(path), size=path.stat().st_size))
    return tuple(entries)


def parse_manifest(data: bytes, *, source: str = MANIFEST_NAME) -> Manifest:
    """Parse and validate manifest bytes; ``ManifestFormatError`` names the bad field."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestFormatError(f"{source}: not valid UTF-8 JSON: {exc}") from exc
    reader = _Reader(raw, source)
    fmt = reader.string("format")
    if fmt != MANIFEST_FORMAT:
        raise ManifestFormatError(
            f"{source}: format: unsupported {fmt!r}, want {MANIFEST_FORMAT!r}"
        )
    task = reader.string("task")
    if task not in KNOWN_TASKS:
        raise ManifestFormatError(f"{source}: task: unsupported {task!r}")
    labels = tuple(reader.string_list("labels"))
    if len(set(labels)) != len(labels):
        raise ManifestFormatError(f"{source}: labels: duplicate class names")
    parent_raw = reader.optional_object("parent")
    parent = None
    if parent_raw is not None:
        parent_reader = _Reader(parent_raw, f"{source}: parent")
        parent = ParentRef(
            version=parent_reader.string("version"),
            uri=parent_reader.string("uri"),
            manifest_digest=parent_reader.digest("manifestDigest"),
        )
    files = []
    seen: set[str] = set()
    for index, item in enumerate(reader.object_list("files")):
        item_reader = _Reader(item, f"{source}: files[{index}]")
        name = item_reader.string("name")
        try:
            check_file_name(name)
        except UnsafeFileNameError as exc:
            raise ManifestFormatError(f"{source}: files[{index}].name: {exc}") from exc
        if name in seen:
            raise ManifestFormatError(f"{source}: files[{index}].name: duplicate {name!r}")
        seen.add(name)
        files.append(
            FileEntry(
                name=name, sha256=item_reader.digest("sha256"), size=item_reader.count("size")
            )
        )
    datasets = []
    for index, item in enumerate(reader.object_list("datasets")):
        item_reader = _Reader(item, f"{source}: datasets[{index}]")
        role = item_reader.string("role")
        if role not in DATASET_ROLES:
            raise ManifestFormatError(f"{source}: datasets[{index}].role: unknown {role!r}")
        datasets.append(
            DatasetRef(
                role=role,
                uri=item_reader.string("uri"),
                sha256=item_reader.digest("sha256"),
                examples=item_reader.count("examples"),
            )
        )
    software = reader.object("software")
    for name, model in _SECTIONS.items():
        _section(model, reader.object(name), name, source)
    return Manifest(
        version=reader.string("version"),
        lineage=reader.string("lineage"),
        task=task,
        labels=labels,
        parent=parent,
        files=tuple(files),
        datasets=tuple(datasets),
        metrics=reader.object("metrics"),
        training=reader.object("training"),
        hyperparameters=reader.object("hyperparameters"),
        software={str(key): str(value) for key, value in software.items()},
        created_at=reader.string("createdAt"),
        format=fmt,
    )


class _Reader:
    """Typed access to one JSON object, with errors that name the source and field."""

    def __init__(self, raw: object, where: str) -> None:
        if not isinstance(raw, dict):
            raise ManifestFormatError(f"{where}: expected a JSON object")
        self._raw: dict[str, Any] = raw
        self._where = where

    def _get(self, key: str) -> Any:
        if key not in self._raw:
            raise ManifestFormatError(f"{self._where}: {key}: missing")
        return self._raw[key]

    def _fail(self, key: str, want: str) -> ManifestFormatError:
        return ManifestFormatError(f"{self._where}: {key}: expected {want}")

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string")
        return value

    def digest(self, key: str) -> str:
        value = self.string(key)
        if not is_digest(value):
            raise self._fail(key, "'sha256:' followed by 64 lowercase hex digits")
        return value

    def count(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._fail(key, "a non-negative integer")
        return value

    def string_list(self, key: str) -> list[str]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of non-empty strings")
        return value

    def object(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self._fail(key, "a JSON object")
        return value

    def optional_object(self, key: str) -> dict[str, Any] | None:
        value = self._get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._fail(key, "a JSON object or null")
        return value

    def object_list(self, key: str) -> list[dict[str, Any]]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "a list of JSON objects")
        return value


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
            return links
        uri = ensure_prefix(manifest.parent.uri)
        digest = manifest.parent.manifest_digest
        name = f"ancestor {manifest.parent.version}"
