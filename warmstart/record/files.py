"""Digests, safe file names and the object-storage layout of a lineage record.

The lowest layer of the record: no manifest, no parsing, only the rules every reader and
writer of versions shares (what a digest looks like, which names are refused, where a version's
files live).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

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
