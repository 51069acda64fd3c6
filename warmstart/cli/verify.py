"""`lineage verify`: walk the hash chain from a version to the base and report the first
broken link.

The walk itself is ``warmstart.record.verify_chain``. What this module adds is what a person
needs to read its outcome: which version and which object failed, what digest was expected
and where that expectation came from, and progress while large weights are hashed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from warmstart import record, storage
from warmstart.api.constants import VersionPhase
from warmstart.cli.errors import CliError, NotFoundError, StorageAccessError
from warmstart.cli.progress import Progress, human_bytes
from warmstart.cli.view import LineageView, VersionView

STATUS_SOURCE = "the lineage status"


class ObjectSource(Protocol):
    """What verification reads from object storage; ``warmstart.storage.Storage`` is one."""

    def read_manifest(self, version_prefix: str) -> bytes: ...

    def iter_chunks(self, uri: str) -> Iterator[bytes]: ...


@dataclass(frozen=True)
class BrokenLink:
    """The first link of the chain that does not hold."""

    version: str
    start: str
    uri: str
    object_name: str
    problem: str
    expected: str | None = None
    actual: str | None = None
    recorded_by: str | None = None

    def describe(self) -> str:
        where = (
            self.version
            if self.version == self.start
            else f"{self.version} (ancestor of {self.start})"
        )
        what = "manifest" if self.object_name == record.MANIFEST_NAME else "file"
        line = f"chain broken at version {where}: {what} {self.uri}: {self.problem}"
        if self.expected is not None and self.actual is not None:
            source = f" (recorded in {self.recorded_by})" if self.recorded_by else ""
            line += f": expected {self.expected}{source}, actual {self.actual}"
        return line


@dataclass(frozen=True)
class VerifiedLink:
    version: str
    uri: str
    manifest_digest: str
    files: int
    size: int
    cold_start: bool = False  # trained from random weights; the next link is what it was
    # compared with, not its parent


@dataclass(frozen=True)
class VerifyReport:
    start: str
    links: tuple[VerifiedLink, ...] = ()
    broken: BrokenLink | None = None
    warnings: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        return self.broken is None

    def summary(self, *, files_checked: bool) -> str:
        """The report printed on success: one row per version, then the verdict."""
        width = max(len(link.version) for link in self.links)
        rows = []
        for link in self.links:
            files = (
                f"{link.files} files, {human_bytes(link.size)}"
                if files_checked
                else "files skipped"
            )
            cold = "  cold start: compared with the next, not trained from it" \
                if link.cold_start else ""
            rows.append(
                f"{link.version:<{width}}  {link.manifest_digest}  ok  ({files}){cold}"
            )
        path = "".join(
            link.version + (" ~> " if link.cold_start else " -> ") for link in self.links
        ).removesuffix(" -> ").removesuffix(" ~> ")
        what = "manifests and files" if files_checked else "manifests only"
        rows.append(f"chain intact: {path} ({len(self.links)} versions, {what})")
        return "\n".join(rows) + "\n"


def choose_start(view: LineageView, requested: str | None) -> VersionView:
    """The version to verify from: the one asked for, else serving, else latest."""
    name = requested or view.serving or view.latest
    if name is None:
        raise NotFoundError(
            f"ModelLineage {view.namespace}/{view.name} has no serving or latest version: "
            "nothing to verify yet"
        )
    version = view.version(name)
    if not version.manifest_digest:
        raise CliError(
            f"ModelLineage {view.namespace}/{view.name}: status records no manifestDigest "
            f"for {name}, so there is no trusted digest to start the chain from"
        )
    return version


class _TrackingReader:
    """A ``record.RecordReader`` that remembers the last object read, so a failure raised by
    ``verify_chain`` can be pinned to a version and object, and reports progress."""

    def __init__(self, source: ObjectSource, start: VersionView, progress: Progress) -> None:
        self._source = source
        self._progress = progress
        prefix = record.ensure_prefix(start.uri)
        # version prefix -> (version name, who recorded the digest its manifest must have)
        self.known: dict[str, tuple[str, str]] = {prefix: (start.name, STATUS_SOURCE)}
        self.sizes: dict[tuple[str, str], int] = {}
        self.last_prefix = prefix
        self.last_object = record.MANIFEST_NAME

    def name_of(self, prefix: str) -> str:
        found = self.known.get(prefix)
        return found[0] if found else prefix.rstrip("/").rsplit("/", 1)[-1]

    def read_manifest(self, version_prefix: str) -> bytes:
        prefix = record.ensure_prefix(version_prefix)
        self.last_prefix, self.last_object = prefix, record.MANIFEST_NAME
        self._progress.step(f"{self.name_of(prefix)}: reading {record.manifest_uri(prefix)}")
        data = self._source.read_manifest(prefix)
        self._learn(prefix, data)
        return data

    def _learn(self, prefix: str, data: bytes) -> None:
        # Only to name the parent and show sizes; verify_chain does the real parsing and
        # reports a malformed manifest itself.
        try:
            manifest = record.parse_manifest(data)
        except record.RecordError:
            return
        for entry in manifest.files:
            self.sizes[(prefix, entry.name)] = entry.size
        if manifest.parent is not None:
            parent_prefix = record.ensure_prefix(manifest.parent.uri)
            recorded_by = f"{manifest.version}'s manifest"
            self.known.setdefault(parent_prefix, (manifest.parent.version, recorded_by))
        if manifest.compared_with is not None:
            compared_prefix = record.ensure_prefix(manifest.compared_with.uri)
            recorded_by = f"{manifest.version}'s manifest (comparedWith)"
            self.known.setdefault(compared_prefix, (manifest.compared_with.version, recorded_by))

    def file_digest(self, version_prefix: str, name: str) -> str:
        prefix = record.ensure_prefix(version_prefix)
        self.last_prefix, self.last_object = prefix, name
        chunks = self._source.iter_chunks(record.file_uri(prefix, name))
        label = f"{self.name_of(prefix)}: hashing {name}"
        return record.sha256_chunks(
            self._progress.transfer(label, chunks, self.sizes.get((prefix, name)))
        )


def verify_lineage(
    view: LineageView,
    start: VersionView,
    source: ObjectSource,
    progress: Progress,
    *,
    check_files: bool = True,
) -> VerifyReport:
    """Verify the chain from ``start`` to the base. A broken chain is a report, not an
    exception; storage that cannot be reached raises ``StorageAccessError``."""
    reader = _TrackingReader(source, start, progress)
    walked = _walk(view, start, reader, start.uri, start.manifest_digest or "", check_files)
    if isinstance(walked, BrokenLink):
        return VerifyReport(start.name, broken=walked)
    links = walked
    cold_starts = []
    compared = links[-1].manifest.compared_with
    if links[-1].manifest.parent is None and compared is not None:
        # A cold start is a root of its own: it started from random weights. The version it
        # was compared with (its manifest's digest already checked by the walk) must itself
        # chain to the base, so the walk goes on from there.
        cold_starts.append(links[-1].version)
        walked = _walk(view, start, reader, compared.uri, compared.manifest_digest, check_files)
        if isinstance(walked, BrokenLink):
            return VerifyReport(start.name, broken=walked)
        links = links + walked
    verified = tuple(
        VerifiedLink(
            version=link.version,
            uri=link.uri,
            manifest_digest=link.manifest_digest,
            files=len(link.manifest.files),
            size=sum(entry.size for entry in link.manifest.files),
            cold_start=link.version in cold_starts,
        )
        for link in links
    )
    warnings = index_disagreements(view, start, links)
    root = links[-1]
    if view.base_digest and root.manifest_digest != view.base_digest:
        # Every link held, but the chain ends somewhere other than the base the lineage
        # pins: a substituted history, or a status pointing into another lineage.
        unpinned = BrokenLink(
            version=root.version,
            start=start.name,
            uri=record.manifest_uri(root.uri),
            object_name=record.MANIFEST_NAME,
            problem="the chain does not end at the pinned base",
            expected=view.base_digest,
            actual=root.manifest_digest,
            recorded_by="spec.base.digest",
        )
        return VerifyReport(start.name, broken=unpinned, warnings=warnings)
    return VerifyReport(start.name, links=verified, warnings=warnings)


def _walk(
    view: LineageView,
    start: VersionView,
    reader: _TrackingReader,
    uri: str,
    digest: str,
    check_files: bool,
) -> list[record.ChainLink] | BrokenLink:
    try:
        return record.verify_chain(reader, uri, digest, check_files=check_files)
    except record.RecordError as exc:
        return _broken(start, reader, exc)
    except storage.ObjectNotFoundError as exc:
        return _missing(view, start, reader, exc)
    except storage.StorageError as exc:
        raise StorageAccessError(f"cannot read the lineage record: {exc}") from None


def _object_uri(reader: _TrackingReader) -> str:
    return reader.last_prefix + reader.last_object


def _broken(start: VersionView, reader: _TrackingReader, exc: record.RecordError) -> BrokenLink:
    version, recorded_by = reader.known.get(
        reader.last_prefix, (reader.name_of(reader.last_prefix), None)
    )
    if isinstance(exc, record.DigestMismatchError):
        is_manifest = reader.last_object == record.MANIFEST_NAME
        return BrokenLink(
            version=version,
            start=start.name,
            uri=_object_uri(reader),
            object_name=reader.last_object,
            problem="altered (sha256 differs)",
            expected=exc.expected,
            actual=exc.actual,
            recorded_by=recorded_by if is_manifest else f"{version}'s manifest",
        )
    return BrokenLink(
        version=version,
        start=start.name,
        uri=_object_uri(reader),
        object_name=reader.last_object,
        problem=str(exc),
    )


def _missing(
    view: LineageView, start: VersionView, reader: _TrackingReader, exc: storage.StorageError
) -> BrokenLink:
    version = reader.name_of(reader.last_prefix)
    problem = f"missing from storage ({exc})"
    retired = version in view.names and view.version(version).phase == VersionPhase.RETIRED
    if retired and reader.last_object != record.MANIFEST_NAME:
        problem = (
            "missing: the version is Retired and retention deleted its files; "
            "use --manifests-only to verify the manifest chain alone"
        )
    return BrokenLink(
        version=version,
        start=start.name,
        uri=_object_uri(reader),
        object_name=reader.last_object,
        problem=problem,
    )


def index_disagreements(
    view: LineageView, start: VersionView, links: list[record.ChainLink]
) -> tuple[str, ...]:
    """Where the status index says something else than the verified record.

    The record in storage is the truth (the status is rebuilt from it), so these are
    warnings about the index, not breaks in the chain.
    """
    found = []
    if links and links[0].version != start.name:
        found.append(
            f"status.versions[{start.name}] points at {start.uri}, whose manifest is "
            f"version {links[0].version}"
        )
    indexed = {version.name: version for version in view.versions}
    for link in links:
        entry = indexed.get(link.version)
        if entry is None:
            continue  # older than the bounded status index: nothing to compare
        if entry.manifest_digest and entry.manifest_digest != link.manifest_digest:
            found.append(
                f"status.versions[{link.version}].manifestDigest is {entry.manifest_digest}, "
                f"but the chain records {link.manifest_digest}"
            )
        parent = link.manifest.parent.version if link.manifest.parent else None
        if entry.parent != parent:
            found.append(
                f"status.versions[{link.version}].parent is {entry.parent or 'unset'}, "
                f"but its manifest names {parent or 'no parent'}"
            )
    return tuple(found)
