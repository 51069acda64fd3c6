"""Serving history: an append-only, hash-chained log of what a lineage served, and when.

Every change of the version a lineage's Deployment serves (a promotion's rollout completing,
a rollback, a pin, an unpin) appends one entry, as its own object beside the versions::

    <storage.uri>/_history/00000001.json, 00000002.json, ...

(``_history`` cannot be a version: version names are DNS labels.) Each entry holds the time,
the version and its manifest digest, the cause (the WarmStartJob whose version was promoted,
or the ModelLineage spec change) and the sha256 of the previous entry's bytes, so removing
or editing any entry but the newest breaks the chain, and a sequence gap shows a removed
one. The newest entry is anchored outside the bucket: the operator keeps its sequence number
and digest in the lineage's ``status.historyHead``, which ``verify_history`` checks.

"What served at time T" is the newest entry at or before T. The log lives in storage, so it
survives deleting and re-applying the ModelLineage; recovery reads it back.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from warmstart import record

HISTORY_DIR = "_history/"
HISTORY_FORMAT = "warmstart.dev/serving-history/v1"
_ENTRY_NAME = re.compile(r"^(\d{8})\.json$")

# Why what serves changed.
PROMOTED = "Promoted"
PINNED = "Pinned"
UNPINNED = "Unpinned"
ROLLED_BACK = "RolledBack"
BASE = "Base"
RECOVERED = "Recovered"


class HistoryError(record.RecordError):
    """The serving history is malformed or was tampered with; names the entry."""


class HistoryStore(Protocol):
    """What the history needs from object storage; ``warmstart.storage.Storage`` has it."""

    def get_bytes(self, uri: str) -> bytes: ...

    def put_bytes(self, uri: str, data: bytes, *, content_type: str | None = None) -> None: ...

    def exists(self, uri: str) -> bool: ...

    def list(self, prefix_uri: str) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Cause:
    """What made the change: ``kind`` is WarmStartJob or ModelLineage, ``name`` the object."""

    event: str
    kind: str
    name: str
    detail: str = ""


@dataclass(frozen=True)
class Entry:
    seq: int
    time: dt.datetime
    lineage: str
    version: str
    uri: str
    manifest_digest: str
    cause: Cause
    previous: str | None

    def to_bytes(self) -> bytes:
        doc = {
            "format": HISTORY_FORMAT,
            "seq": self.seq,
            "time": format_time(self.time),
            "lineage": self.lineage,
            "version": self.version,
            "uri": self.uri,
            "manifestDigest": self.manifest_digest,
            "cause": {
                "event": self.cause.event,
                "kind": self.cause.kind,
                "name": self.cause.name,
                "detail": self.cause.detail,
            },
            "previous": self.previous,
        }
        return (json.dumps(doc, sort_keys=True, indent=2) + "\n").encode("utf-8")


def entry_uri(storage_uri: str, seq: int) -> str:
    return f"{record.ensure_prefix(storage_uri)}{HISTORY_DIR}{seq:08d}.json"


def format_time(when: dt.datetime) -> str:
    """UTC, whole seconds, ``Z``: the one form entries store."""
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str, *, what: str = "time") -> dt.datetime:
    """An ISO 8601 time; without a zone it is UTC. ``ValueError`` names ``what``."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{what}: {text!r} is not an ISO 8601 time such as 2026-12-02T17:00:00Z"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_entry(data: bytes, *, source: str) -> Entry:
    """Parse one entry; ``HistoryError`` names the source and the bad field."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise HistoryError(f"{source}: not valid UTF-8 JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != HISTORY_FORMAT:
        raise HistoryError(f"{source}: format: not a {HISTORY_FORMAT} entry")

    def text(key: str, node: dict[str, Any] = raw, *, empty: bool = False) -> str:
        value = node.get(key)
        if not isinstance(value, str) or (not value and not empty):
            raise HistoryError(f"{source}: {key}: expected a non-empty string")
        return value

    seq, cause, previous = raw.get("seq"), raw.get("cause"), raw.get("previous")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise HistoryError(f"{source}: seq: expected a positive integer")
    if not isinstance(cause, dict):
        raise HistoryError(f"{source}: cause: expected a JSON object")
    if previous is not None and (not isinstance(previous, str) or not record.is_digest(previous)):
        raise HistoryError(f"{source}: previous: expected a sha256 digest or null")
    try:
        when = parse_time(text("time"), what=f"{source}: time")
    except ValueError as exc:
        raise HistoryError(str(exc)) from None
    digest = text("manifestDigest")
    if not record.is_digest(digest):
        raise HistoryError(f"{source}: manifestDigest: expected a sha256 digest")
    return Entry(
        seq=seq,
        time=when,
        lineage=text("lineage"),
        version=text("version"),
        uri=text("uri"),
        manifest_digest=digest,
        cause=Cause(
            text("event", cause),
            text("kind", cause),
            text("name", cause),
            text("detail", cause, empty=True),
        ),
        previous=previous,
    )


@dataclass(frozen=True)
class Head:
    """The newest entry's sequence number and digest: the anchor kept outside the bucket."""

    seq: int
    digest: str


def read_history(store: HistoryStore, storage_uri: str) -> list[tuple[Entry, str]]:
    """Every entry with the digest of its bytes, oldest first, checking the chain.

    Raises ``HistoryError`` naming the first entry that is missing, edited or out of place.
    """
    prefix = record.ensure_prefix(storage_uri) + HISTORY_DIR
    seqs = []
    for info in store.list(prefix):
        found = _ENTRY_NAME.match(str(info.uri)[len(prefix) :])
        if found:
            seqs.append(int(found.group(1)))
    entries: list[tuple[Entry, str]] = []
    previous: str | None = None
    for expected, seq in enumerate(sorted(seqs), start=1):
        uri = entry_uri(storage_uri, seq)
        if seq != expected:
            raise HistoryError(f"entry {expected} is missing (the log jumps to {uri})")
        data = store.get_bytes(uri)
        entry = parse_entry(data, source=uri)
        if entry.seq != seq:
            raise HistoryError(f"{uri}: seq {entry.seq} stored under entry {seq}")
        if entry.previous != previous:
            raise HistoryError(
                f"{uri}: previous is {entry.previous}, but entry {seq - 1} hashes to "
                f"{previous}: entry {seq - 1} was edited or replaced"
            )
        if entries and entry.time < entries[-1][0].time:
            raise HistoryError(f"{uri}: time goes backwards from entry {seq - 1}")
        previous = record.sha256_bytes(data)
        entries.append((entry, previous))
    return entries


def verify_history(
    store: HistoryStore, storage_uri: str, head: Head | None
) -> list[tuple[Entry, str]]:
    """``read_history`` plus the anchor: the newest entry must be the one ``head`` names
    (catches removing or editing the newest entry, which the chain alone cannot)."""
    entries = read_history(store, storage_uri)
    if head is None:
        return entries
    if not entries or entries[-1][0].seq < head.seq:
        have = entries[-1][0].seq if entries else 0
        raise HistoryError(
            f"the log ends at entry {have}, but status.historyHead records entry {head.seq}: "
            "newer entries were removed"
        )
    anchored = entries[head.seq - 1]
    if anchored[1] != head.digest:
        raise HistoryError(
            f"entry {head.seq} hashes to {anchored[1]}, status.historyHead records "
            f"{head.digest}: it was edited"
        )
    return entries


def served_at(entries: Sequence[tuple[Entry, str]], when: dt.datetime) -> Entry | None:
    """The entry in force at ``when``: the newest at or before it (None: nothing served)."""
    current = None
    for entry, _ in entries:
        if entry.time > when:
            break
        current = entry
    return current


def append(
    store: HistoryStore,
    storage_uri: str,
    *,
    lineage: str,
    version: str,
    uri: str,
    manifest_digest: str,
    cause: Cause,
    now: dt.datetime,
) -> Head:
    """Append an entry unless the newest already records this version and cause (a retry
    after a crash between appending and writing the status); returns the new head."""
    entries = read_history(store, storage_uri)
    if entries:
        last, digest = entries[-1]
        if (last.version, last.manifest_digest, last.cause) == (version, manifest_digest, cause):
            return Head(last.seq, digest)
    seq = len(entries) + 1
    entry = Entry(
        seq=seq,
        time=max(now, entries[-1][0].time).replace(microsecond=0)
        if entries
        else now.replace(microsecond=0),
        lineage=lineage,
        version=version,
        uri=uri,
        manifest_digest=manifest_digest,
        cause=cause,
        previous=entries[-1][1] if entries else None,
    )
    target = entry_uri(storage_uri, seq)
    if store.exists(target):  # append-only: never overwrite an entry
        raise HistoryError(f"{target} already exists; refusing to overwrite history")
    data = entry.to_bytes()
    store.put_bytes(target, data, content_type="application/json")
    return Head(seq, record.sha256_bytes(data))
