"""The trust boundary with the real operator, API server and S3: a Deployment that has not
opted in is left alone until it carries the label, a second lineage on the same storage
prefix does nothing, a job asking for another image or service account fails before any Job
exists, and an unknown time zone is a condition, not an error loop. (No admission policy is
installed here: this is the operator's own check, for clusters without the chart's.)"""

from __future__ import annotations

from tests.conftest import wait_for
from tests.operator import kit

LABEL = "warmstart.dev/lineage"


def model_version(api: kit.Api, deployment: str) -> str | None:
    dep = api.apps.read_namespaced_deployment(deployment, api.ns)
    return (dep.spec.template.metadata.annotations or {}).get("warmstart.dev/model-version")


def test_the_operator_acts_only_on_what_was_handed_to_it(
        namespace: str, api: kit.Api, operator: kit.OperatorProcess,
        tiny_lineage: kit.TinyLineage) -> None:
    api.s3_secret()
    unlabelled = kit.server_deployment("web")
    del unlabelled["metadata"]["labels"]
    api.apps.create_namespaced_deployment(namespace, unlabelled)
    # Pinned to the base so that there is something to roll out without training first.
    api.create("modellineages", kit.lineage_manifest("reviews", tiny_lineage, serving="web",
                                                 pinnedVersion="base"))

    refused = api.degraded("reviews", "DeploymentNotOptedIn")
    assert f"kubectl label deployment web {LABEL}=reviews -n {namespace}" in refused["message"]
    assert model_version(api, "web") is None

    # A second lineage on the same prefix, created later: it touches nothing there.
    copycat = kit.lineage_manifest("zz-copycat", tiny_lineage)
    api.create("modellineages", copycat)
    claimed = api.degraded("zz-copycat", "StoragePrefixClaimed")
    assert 'lineage "reviews"' in claimed["message"], claimed
    assert not (api.get("modellineages", "zz-copycat").get("status") or {}).get("versions")

    # An unknown time zone: a reason on the lineage, and the operator goes on working.
    scheduled = kit.lineage_manifest("scheduled", tiny_lineage, retraining={
        "schedule": "@daily", "timeZone": "Mars/Olympus",
        "template": {"dataset": {"trainURI": tiny_lineage.data["week1-train"],
                                 "validationFraction": 0.2}}})
    scheduled["spec"]["storage"]["uri"] = tiny_lineage.uri("scheduled/")
    api.create("modellineages", scheduled)
    zone = api.degraded("scheduled", "InvalidSchedule")
    assert "spec.retraining.timeZone 'Mars/Olympus'" in zone["message"]

    # Jobs asking for what the operator's installation does not allow fail before any Job.
    image = kit.wsj_manifest("other-image", tiny_lineage, "week1", parent="base")
    image["spec"]["image"] = "evil.example.com/miner:1"
    account = kit.wsj_manifest("other-account", tiny_lineage, "week1", parent="base")
    account["spec"]["serviceAccountName"] = "builder"
    api.create("warmstartjobs", image)
    api.create("warmstartjobs", account)
    for name, reason in (("other-image", "ImageNotAllowed"),
                         ("other-account", "ServiceAccountNotAllowed")):
        failed = api.failed_condition(name)
        assert failed["reason"] == reason, failed
    assert api.batch.list_namespaced_job(namespace).items == []

    # The Deployment's owner opts in: the rollout happens and the refusal is lifted.
    api.apps.patch_namespaced_deployment("web", namespace,
                                         {"metadata": {"labels": {LABEL: "reviews"}}})
    wait_for("the opted-in Deployment to get the base", lambda: model_version(api, "web")
             == "base", timeout=90)
    wait_for("the refusal to be lifted", lambda: api.condition(
        "modellineages", "reviews", "Degraded").get("status") == "False", timeout=30)
