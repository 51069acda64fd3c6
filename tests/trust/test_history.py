"""Serving history: the chain, tamper detection, "what served at T", the operator's causes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.api.builders import make_lineage
from warmstart import history, record, storage
from warmstart.api.modellineage import ModelLineage, ModelLineageStatus
from warmstart_operator import servinghistory

T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
DIGEST = {v: record.sha256_bytes(v.encode()) for v in ("base", "v1", "v2", "v3")}


def cause(name: str) -> history.Cause:
    return history.Cause(history.PROMOTED, "WarmStartJob", name, "")


@pytest.fixture
def log(tmp_path: Path) -> tuple[storage.Storage, str, list[history.Head]]:
    """A log of three changes an hour apart: v1, v2, then back to v1."""
    store, uri = storage.Storage(), (tmp_path / "bucket").as_uri() + "/"
    heads = [
        history.append(
            store,
            uri,
            lineage="reviews",
            version=v,
            uri=f"{uri}{v}/",
            manifest_digest=DIGEST[v],
            cause=cause(f"job-{i}"),
            now=T0 + dt.timedelta(hours=i),
        )
        for i, v in enumerate(("v1", "v2", "v1"))
    ]
    return store, uri, heads


def test_served_at_answers_from_the_log(log: tuple[storage.Storage, str, Any]) -> None:
    store, uri, heads = log
    entries = history.verify_history(store, uri, heads[-1])
    assert [e.seq for e, _ in entries] == [1, 2, 3]
    assert history.served_at(entries, T0 - dt.timedelta(seconds=1)) is None
    at = {m: history.served_at(entries, T0 + dt.timedelta(minutes=m)) for m in (0, 59, 60, 150)}
    assert {m: e.version if e else None for m, e in at.items()} == {
        0: "v1",
        59: "v1",
        60: "v2",
        150: "v1",
    }
    assert at[60] is not None and at[60].cause.name == "job-1"
    assert at[60].manifest_digest == DIGEST["v2"]


def test_retry_after_a_crash_does_not_append_twice(log: tuple[storage.Storage, str, Any]) -> None:
    store, uri, heads = log
    again = history.append(
        store,
        uri,
        lineage="reviews",
        version="v1",
        uri=f"{uri}v1/",
        manifest_digest=DIGEST["v1"],
        cause=cause("job-2"),
        now=T0 + dt.timedelta(hours=5),
    )
    assert again == heads[-1]


def test_removed_entry_is_detected(log: tuple[storage.Storage, str, Any]) -> None:
    store, uri, _ = log
    store.delete(history.entry_uri(uri, 2))
    with pytest.raises(history.HistoryError, match="entry 2 is missing"):
        history.read_history(store, uri)


def test_removed_newest_entry_is_caught_by_the_anchor(
    log: tuple[storage.Storage, str, Any],
) -> None:
    store, uri, heads = log
    store.delete(history.entry_uri(uri, 3))
    assert len(history.read_history(store, uri)) == 2  # the chain alone cannot tell
    with pytest.raises(history.HistoryError, match="newer entries were removed"):
        history.verify_history(store, uri, heads[-1])


def test_edited_entry_is_detected(log: tuple[storage.Storage, str, Any]) -> None:
    store, uri, heads = log
    target = history.entry_uri(uri, 1)
    store.put_bytes(target, store.get_bytes(target).replace(b'"v1"', b'"v3"'))
    with pytest.raises(history.HistoryError, match="entry 1 was edited"):
        history.read_history(store, uri)
    newest = history.entry_uri(uri, 3)
    store.put_bytes(target, store.get_bytes(target).replace(b'"v3"', b'"v1"'))
    store.put_bytes(newest, store.get_bytes(newest).replace(b"job-2", b"job-9"))
    with pytest.raises(history.HistoryError, match=r"entry 3 hashes to .* it was edited"):
        history.verify_history(store, uri, heads[-1])


def test_append_refuses_to_overwrite(log: tuple[storage.Storage, str, Any]) -> None:
    store, uri, _ = log
    store.delete(history.entry_uri(uri, 3))
    store.put_bytes(history.entry_uri(uri, 4), b"{}")
    with pytest.raises(history.HistoryError):
        history.append(
            store,
            uri,
            lineage="reviews",
            version="v3",
            uri=f"{uri}v3/",
            manifest_digest=DIGEST["v3"],
            cause=cause("x"),
            now=T0,
        )


@settings(max_examples=300, deadline=None)
@given(
    st.binary(max_size=200)
    | st.dictionaries(
        st.sampled_from(
            [
                "format",
                "seq",
                "time",
                "lineage",
                "version",
                "uri",
                "manifestDigest",
                "cause",
                "previous",
                "event",
                "kind",
                "name",
                "detail",
            ]
        ),
        st.none()
        | st.integers()
        | st.text(max_size=20)
        | st.just(history.HISTORY_FORMAT)
        | st.just(DIGEST["v1"])
        | st.dictionaries(st.sampled_from(["event", "kind", "name", "detail"]), st.text()),
    ).map(lambda d: __import__("json").dumps(d).encode())
)
def test_entry_parser_only_raises_history_errors(data: bytes) -> None:
    try:
        entry = history.parse_entry(data, source="e")
    except history.HistoryError as exc:
        assert str(exc).startswith("e: ")
    else:
        assert history.parse_entry(entry.to_bytes(), source="e") == entry


@settings(max_examples=200, deadline=None)
@given(st.datetimes(timezones=st.just(dt.UTC)))
def test_times_round_trip_and_naive_means_utc(when: dt.datetime) -> None:
    when = when.replace(microsecond=0)
    assert history.parse_time(history.format_time(when)) == when
    assert history.parse_time(when.replace(tzinfo=None).isoformat()) == when


def test_bad_time_names_the_option() -> None:
    with pytest.raises(ValueError, match="--at: 'yesterday'"):
        history.parse_time("yesterday", what="--at")


# -- the operator's side -----------------------------------------------------------------


def lineage(pinned: str | None = None, generation: int = 3) -> ModelLineage:
    obj = make_lineage("reviews").obj()
    obj["metadata"]["generation"] = generation
    if pinned:
        obj["spec"]["pinnedVersion"] = pinned
    return ModelLineage.model_validate(obj)


def status(degraded: str | None = None) -> ModelLineageStatus:
    raw: dict[str, Any] = {
        "versions": [
            {
                "name": "base",
                "uri": "s3://b/base/",
                "manifestDigest": DIGEST["base"],
                "phase": "Promoted",
            },
            {
                "name": "v1",
                "parent": "base",
                "uri": "s3://b/v1/",
                "manifestDigest": DIGEST["v1"],
                "phase": "Promoted",
                "jobName": "week1",
                "reason": "GatePassed",
            },
            {
                "name": "v2",
                "parent": "v1",
                "uri": "s3://b/v2/",
                "manifestDigest": DIGEST["v2"],
                "phase": "Promoted",
                "jobName": "week2",
            },
        ]
    }
    if degraded:
        raw["conditions"] = [
            {
                "type": "Degraded",
                "status": "True",
                "reason": "RolledBack",
                "message": degraded,
                "lastTransitionTime": T0.isoformat(),
            }
        ]
    return ModelLineageStatus.model_validate(raw)


@pytest.mark.parametrize(
    ("pinned", "degraded", "last", "desired", "want"),
    [
        (None, None, None, "v2", ("Promoted", "WarmStartJob", "week2")),
        ("v1", None, None, "v1", ("Pinned", "ModelLineage", "reviews")),
        (
            None,
            "v2 was not available after 601s; rolled back to v1",
            None,
            "v1",
            ("RolledBack", "ModelLineage", "reviews"),
        ),
        (
            None,
            "v2 was not available; rolled back to v1",
            None,
            "v2",
            ("Promoted", "WarmStartJob", "week2"),
        ),
        (None, None, "Pinned", "v2", ("Unpinned", "ModelLineage", "reviews")),
        (None, None, None, "base", ("Base", "ModelLineage", "reviews")),
    ],
)
def test_cause_of_each_change(
    pinned: str | None,
    degraded: str | None,
    last: str | None,
    desired: str,
    want: tuple[str, str, str],
) -> None:
    got = servinghistory.cause_of(lineage(pinned), status(degraded), desired, last)
    assert (got.event, got.kind, got.name) == want
    if want[0] == "Pinned":
        assert got.detail == "spec.pinnedVersion=v1 (generation 3)"


def test_operator_records_then_recovery_reads_it_back(tmp_path: Path) -> None:
    store = storage.Storage()
    obj = make_lineage("reviews").storage_uri((tmp_path / "b").as_uri() + "/").obj()
    obj["metadata"]["generation"] = 1
    lin = ModelLineage.model_validate(obj)
    st_ = status()
    head1 = servinghistory.record_serving(store, lin, st_, "v1", T0)
    st_.history_head = head1
    head2 = servinghistory.record_serving(store, lin, st_, "v2", T0 + dt.timedelta(hours=1))
    assert (head1.seq, head2.seq) == (1, 2)
    previous, head = servinghistory.recovered_previous(store, lin.spec.storage.uri, "v2")
    assert previous == "v1" and head == head2
    # A stale anchor (entry 2 removed behind the operator's back) refuses the next append.
    store.delete(history.entry_uri(lin.spec.storage.uri, 2))
    st_.history_head = head2
    with pytest.raises(history.HistoryError):
        servinghistory.record_serving(store, lin, st_, "v1", T0 + dt.timedelta(hours=2))
