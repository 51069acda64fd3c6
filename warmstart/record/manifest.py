"""The manifest that commits a model version: its dataclasses, serialisation and parsing.

Its metrics, training and hyperparameters sections are typed by ``warmstart.manifestschema``:
they are validated against those models when a manifest is built (the trainer) and when one
is parsed (the operator and the CLI).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from warmstart.manifestschema import Evaluation, Hyperparameters, TrainingReport
from warmstart.record.files import (
    DATASET_ROLES,
    KNOWN_TASKS,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    ManifestFormatError,
    UnsafeFileNameError,
    check_file_name,
    file_sha256,
    is_digest,
    sha256_bytes,
)

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
    # A cold start is compared with the version it was evaluated against but did not start
    # from: it has no parent link in the hash chain, and this names (and pins) that version.
    compared_with: ParentRef | None = None

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
            # Written only when set, so every manifest without it keeps its bytes (and digest).
            **({"comparedWith": self.compared_with.to_json()} if self.compared_with else {}),
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
    parent = _version_ref(reader.optional_object("parent"), f"{source}: parent")
    compared_with = None
    if "comparedWith" in raw:
        compared_with = _version_ref(
            reader.optional_object("comparedWith"), f"{source}: comparedWith"
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
        compared_with=compared_with,
    )


def _version_ref(raw: dict[str, Any] | None, where: str) -> ParentRef | None:
    if raw is None:
        return None
    reader = _Reader(raw, where)
    return ParentRef(
        version=reader.string("version"),
        uri=reader.string("uri"),
        manifest_digest=reader.digest("manifestDigest"),
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
