"""Signed versions and the serving history as the reconcilers decide them, against the
in-memory cluster and store: a version whose signature does not hold is never recorded and
the Deployment is never pointed at one (the check is made on the bytes in storage before
every rollout), and every change of what serves is appended to the serving history before
the status shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.operator.harness import BASE_URI, NS, STORAGE, Harness, make_lineage, make_wsj
from tests.trust.keys import KeyPair, make_key
from warmstart import history, record, signing
from warmstart.storage import StorageError


@pytest.fixture
def key(tmp_path: Path) -> KeyPair:
    return make_key(tmp_path, "release")


def signer(h: Harness, key: KeyPair) -> Callable[[str, str, bytes], None]:
    def sign(version: str, prefix: str, manifest: bytes) -> None:
        h.store.put(signing.signature_uri(prefix),
                    signing.sign_manifest(manifest, version, key.private_file))

    return sign


def signed_lineage(h: Harness, key: KeyPair, policy: str = "Auto") -> None:
    """A serving lineage that signs, over a signed base, serving it."""
    base = h.store.read_manifest(BASE_URI)
    h.store.put(signing.signature_uri(BASE_URI),
                signing.sign_manifest(base, "base", key.private_file))
    body = make_lineage().serving().policy(policy).obj()
    body["spec"]["signing"] = {"secretRef": {"name": "signing-key"}, "trustedKeys": [
        {"name": key.name, "publicKey": key.trusted.pem.decode()}]}
    h.add_deployment()
    h.create(body)
    assert h.deployed() == "base", h.status()
    h.make_available()
    assert h.status()["servingVersion"] == "base"


def served(h: Harness) -> list[str]:
    return [entry.version for entry, _ in history.read_history(h.store, STORAGE)]


def test_an_unsigned_version_fails_its_job_and_is_never_recorded(key: KeyPair) -> None:
    h = Harness()
    signed_lineage(h, key)
    h.create(make_wsj("week1").obj())
    h.finish_training("week1")  # a trainer that did not sign
    assert h.phase("week1") == "Failed"
    assert h.condition("Failed", h.wsj("week1"))["reason"] == signing.SignatureCheck.UNSIGNED
    assert all(v["name"] != "week1" for v in h.status()["versions"])
    assert h.deployed() == "base"


def test_a_signed_version_rolls_out_and_each_change_enters_the_history(key: KeyPair) -> None:
    h = Harness()
    signed_lineage(h, key)
    assert served(h) == ["base"]
    assert h.status()["historyHead"]["seq"] == 1
    h.create(make_wsj("week1").obj())
    h.finish_training("week1", sign=signer(h, key))
    assert h.phase("week1") == "Succeeded"
    assert h.deployed() == "week1"
    # The Deployment runs it, but it does not serve until available: no history entry yet.
    assert served(h) == ["base"]
    h.make_available()
    assert h.status()["servingVersion"] == "week1"
    assert served(h) == ["base", "week1"]
    assert h.status()["historyHead"]["seq"] == 2
    deployment = h.kube.get_deployment(NS, "srv")
    assert deployment is not None
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert signing.TRUSTED_KEYS_ENV in {e["name"] for e in env}


def test_a_signature_removed_after_recording_stops_the_rollout_until_restored(
        key: KeyPair) -> None:
    h = Harness()
    signed_lineage(h, key, policy="Manual")
    h.create(make_wsj("week1").obj())
    h.finish_training("week1", sign=signer(h, key))
    assert h.version("week1")["phase"] == "Candidate"
    sig = signing.signature_uri(record.version_uri(STORAGE, "week1"))
    kept = h.store.objects.pop(sig)

    h.edit_lineage(pinnedVersion="week1")
    degraded = h.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True",
                                                        signing.SignatureCheck.UNSIGNED)
    assert "not rolling out week1" in degraded["message"]
    h.run_for(120.0)
    assert h.deployed() == "base"  # never pointed at it
    assert h.condition("Progressing")["reason"] != "RollingOut"

    h.store.put(sig, kept)
    h.run_for(60.0)
    assert h.deployed() == "week1"
    h.make_available()
    assert h.status()["servingVersion"] == "week1"
    assert h.condition("Degraded")["status"] == "False"
    assert served(h) == ["base", "week1"]


def test_a_history_that_storage_cannot_take_holds_the_status_back() -> None:
    h = Harness()
    h.add_deployment()
    h.create(make_lineage().serving().obj())
    assert h.deployed() == "base"
    put = h.store.put_bytes

    def refuse(uri: str, data: bytes, *, content_type: str | None = None) -> None:
        raise StorageError(f"{uri}: storage is down")

    h.store.put_bytes = refuse  # type: ignore[method-assign]
    h.make_available()
    assert h.status().get("servingVersion") is None  # the log lacks it: the status waits
    assert h.condition("Degraded")["reason"] == "StorageUnreachable"
    h.store.put_bytes = put  # type: ignore[method-assign]
    h.run_for(10.0)
    assert h.status()["servingVersion"] == "base"
    assert served(h) == ["base"]
    assert h.condition("Degraded")["status"] == "False"
