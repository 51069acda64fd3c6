"""The audit CLI's rendering and checks on a real file:// record (no cluster)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.trust.keys import make_key, manifest_bytes
from warmstart import history, record, signing, storage
from warmstart.cli import audit

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def test_signature_table_lists_every_version_and_the_verdict(tmp_path: Path) -> None:
    store, uri = storage.Storage(), (tmp_path / "b").as_uri() + "/"
    old, new = make_key(tmp_path, "ci-2025"), make_key(tmp_path, "ci-2026")
    for version, key in (("v1", old), ("v2", new), ("v3", None)):
        prefix = record.version_uri(uri, version)
        data = manifest_bytes(version)
        store.put_bytes(record.manifest_uri(prefix), data)
        if key:
            store.put_bytes(
                signing.signature_uri(prefix),
                signing.sign_manifest(data, version, key.private_file),
            )
    versions = [(v, record.version_uri(uri, v)) for v in ("v3", "v2", "v1")]
    rows = audit.check_signatures(store, versions, [new.trusted])
    text, ok = audit.render_signatures(rows)
    assert not ok
    assert text.splitlines() == [
        "v3  REFUSED  Unsigned: no manifest.sig beside it",
        f"v2  signed   by ci-2026 ({new.trusted.key_id[:16]})",
        f"v1  REFUSED  UntrustedKey: signed by key {old.trusted.key_id[:16]}, which is not "
        f"among the trusted keys (ci-2026 ({new.trusted.key_id[:16]}))",
        "signatures refused: v3, v1 (2 of 3)",
    ]
    text, ok = audit.render_signatures(audit.check_signatures(store, versions[1:2], [new.trusted]))
    assert ok and text.endswith("signatures verified: 1 versions signed by trusted keys\n")


def test_history_table_and_at() -> None:
    entries = []
    previous = None
    for seq, version in enumerate(("v1", "v2"), start=1):
        entry = history.Entry(
            seq,
            T0 + dt.timedelta(hours=seq),
            "reviews",
            version,
            f"s3://b/{version}/",
            record.sha256_bytes(version.encode()),
            history.Cause(
                "Pinned", "ModelLineage", "reviews", "spec.pinnedVersion=v2 (generation 4)"
            ),
            previous,
        )
        previous = record.sha256_bytes(entry.to_bytes())
        entries.append((entry, previous))
    table = audit.render_history(entries, None).splitlines()
    assert table[0].startswith("   1  2026-12-01T10:00:00Z  v1  sha256:")
    assert table[1].endswith("Pinned     ModelLineage/reviews")
    assert table[-1] == "history intact: 2 entries"
    assert audit.render_history(entries, T0) == (
        "at 2026-12-01T09:00:00Z nothing served (the history starts later or is empty)\n"
    )
    at = audit.render_history(entries, T0 + dt.timedelta(hours=3))
    assert at.startswith("at 2026-12-01T12:00:00Z version v2 served (sha256:")
    assert at.endswith(
        "since 2026-12-01T11:00:00Z: Pinned by ModelLineage reviews "
        "(spec.pinnedVersion=v2 (generation 4))\n"
    )
    assert audit.render_history([], None) == "no serving history recorded yet\n"
