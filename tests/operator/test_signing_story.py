"""Signed versions through the real operator, trainer and model server on the local
cluster: the trainer signs with the key mounted from the lineage's Secret, the operator
records and rolls out only what verifies, the server checks the signature before ready,
and the serving history records the change. Then the key that signed is dropped from the
trusted keys: the next version is refused and serving stays where it was."""

from __future__ import annotations

from pathlib import Path

from tests.operator import kit
from warmstart import history, record, signing


def test_signed_story_and_refusal_after_key_removal(
    namespace: str,
    api: kit.Api,
    operator: kit.OperatorProcess,
    tiny_lineage: kit.TinyLineage,
    tmp_path: Path,
) -> None:
    private = signing.generate_private_key_pem()
    other = signing.generate_private_key_pem()
    api.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "reviews-signing"},
            "stringData": {signing.SIGNING_KEY_SECRET_KEY: private.decode()},
        },
    )
    # The base is signed by whoever published it (here: the same key, by this test).
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(private)
    base = record.ensure_prefix(tiny_lineage.base_uri)
    tiny_lineage.store.put_bytes(
        signing.signature_uri(base),
        signing.sign_manifest(tiny_lineage.store.read_manifest(base), "base", key_file),
    )

    def keys(*pems: bytes) -> dict[str, object]:
        return {
            "secretRef": {"name": "reviews-signing"},
            "trustedKeys": [
                {"name": f"key-{i}", "publicKey": signing.public_key_pem(p).decode()}
                for i, p in enumerate(pems)
            ],
        }

    kit.serve_reviews(api, tiny_lineage, signing=keys(private))

    api.create("warmstartjobs", kit.wsj_manifest("reviews-week1", tiny_lineage, "week1"))
    assert api.finished("reviews-week1") == "Succeeded", api.get("warmstartjobs", "reviews-week1")
    api.serving("reviews-week1")
    week1 = record.version_uri(tiny_lineage.uri("reviews/"), "reviews-week1")
    trusted = [signing.trusted_key("key-0", signing.public_key_pem(private))]
    assert signing.verify_version_signature(tiny_lineage.store, week1, trusted)
    # The server was told which keys to trust, and became ready.
    dep = api.apps.read_namespaced_deployment("reviews-server", namespace)
    env = {e.name: e.value for e in dep.spec.template.spec.containers[0].env or []}
    assert signing.trusted_keys_from_json(env[signing.TRUSTED_KEYS_ENV]) == tuple(trusted)
    status = api.lineage_status()
    entries = history.verify_history(
        tiny_lineage.store,
        tiny_lineage.uri("reviews/"),
        history.Head(status["historyHead"]["seq"], status["historyHead"]["digest"]),
    )
    last = entries[-1][0]
    assert (last.version, last.cause.event, last.cause.name) == (
        "reviews-week1",
        history.PROMOTED,
        "reviews-week1",
    )

    # Rotation that drops the key the trainer still signs with: week 2 is refused.
    api.patch_lineage({"signing": keys(other)})
    api.create("warmstartjobs", kit.wsj_manifest("reviews-week2", tiny_lineage, "week2"))
    assert api.finished("reviews-week2") == "Failed"
    conditions = api.get("warmstartjobs", "reviews-week2")["status"]["conditions"]
    failed = [c for c in conditions if c["reason"] == "UntrustedKey"]
    assert failed and "version reviews-week2" in failed[0]["message"], conditions
    assert api.lineage_status()["servingVersion"] == "reviews-week1"
    assert api.deployment_version() == "reviews-week1"
