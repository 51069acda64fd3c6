"""The trust boundary's refusals as the reconcilers decide them, against the in-memory
cluster: the Deployment opt-in label, one lineage per storage prefix, allowed trainer images
and service accounts, schedules in unknown zones, and objects stored under an older CRD.
Each refusal is a condition with a reason, nothing is touched meanwhile, and the refusal is
lifted as soon as its cause is gone."""

from __future__ import annotations

from tests.operator.harness import NS, Harness, make_lineage, make_wsj
from warmstart_operator.config import OperatorConfig
from warmstart_operator.trust import LINEAGE_LABEL, TrustReason


def test_an_unlabelled_deployment_is_never_patched_until_it_opts_in() -> None:
    h = Harness()
    h.add_deployment(lineage=None)
    h.create(make_lineage().serving().obj())
    degraded = h.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True",
                                                        TrustReason.DEPLOYMENT_NOT_OPTED_IN)
    assert f"{LINEAGE_LABEL}=reviews" in degraded["message"]
    assert h.deployed() is None
    h.run_for(120.0)
    assert h.deployed() is None

    h.kube.update("Deployment", NS, "srv", lambda o: o["metadata"].__setitem__(
        "labels", {LINEAGE_LABEL: "reviews"}))
    h.run_for(60.0)  # Deployments are not watched: the lineage's next look finds the label
    assert h.deployed() == "base"
    h.make_available()
    assert h.status()["servingVersion"] == "base"
    assert h.condition("Degraded")["status"] == "False"


def test_a_deployment_of_another_lineage_is_left_alone() -> None:
    h = Harness()
    h.add_deployment(lineage="other")
    h.create(make_lineage().serving().obj())
    assert h.condition("Degraded")["reason"] == TrustReason.DEPLOYMENT_OF_ANOTHER_LINEAGE
    assert h.deployed() is None


def test_the_second_lineage_on_a_prefix_touches_nothing_and_its_jobs_fail() -> None:
    h = Harness()
    h.create(make_lineage("reviews").obj())
    h.clock.now += 2  # created a second later: "reviews" owns the prefix
    h.create(make_lineage("copycat").obj())
    degraded = h.condition("Degraded", h.lineage("copycat"))
    assert degraded["reason"] == TrustReason.STORAGE_PREFIX_CLAIMED
    assert '"reviews"' in degraded["message"]
    assert not h.lineage("copycat")["status"].get("versions")  # its base was not even read
    assert not any(c["type"] == "Degraded" and c["status"] == "True"
                   for c in h.status().get("conditions") or [])  # the owner is unaffected

    h.create(make_wsj("steal").lineage("copycat").obj())
    assert h.phase("steal") == "Failed"
    assert h.condition("Failed", h.wsj("steal"))["reason"] == TrustReason.STORAGE_PREFIX_CLAIMED
    assert h.kube.get_job(NS, "steal-train") is None

    # The owner goes: the prefix passes to the one refused, woken by the deletion.
    h.kube.remove("ModelLineage", NS, "reviews")
    h.settle()
    assert h.condition("Degraded", h.lineage("copycat"))["status"] == "False"
    assert h.lineage("copycat")["status"]["versions"][0]["name"] == "base"


def test_a_trainer_image_or_account_outside_the_allowlist_fails_before_any_job() -> None:
    h = Harness()
    h.create(make_lineage().obj())
    body = make_wsj("evil").obj()
    body["spec"]["image"] = "docker.io/attacker/miner:1"
    h.create(body)
    assert h.phase("evil") == "Failed"
    failed = h.condition("Failed", h.wsj("evil"))
    assert failed["reason"] == TrustReason.IMAGE_NOT_ALLOWED
    assert "allowedImages" in failed["message"]
    assert h.kube.get_job(NS, "evil-train") is None

    body = make_wsj("admin").obj()
    body["spec"]["serviceAccountName"] = "cluster-admin"
    h.create(body)
    assert h.condition("Failed", h.wsj("admin"))["reason"] == \
        TrustReason.SERVICE_ACCOUNT_NOT_ALLOWED
    assert h.kube.get_job(NS, "admin-train") is None


def test_allowed_images_and_accounts_train() -> None:
    h = Harness()
    h.config = OperatorConfig(poll_seconds=5.0, allowed_trainer_images=("registry.example/",),
                              allowed_service_accounts=("trainer",))
    h.controller.jobs.config = h.config
    h.create(make_lineage().obj())
    body = make_wsj("ok").obj()
    body["spec"]["image"] = "registry.example/trainer:2"
    body["spec"]["serviceAccountName"] = "trainer"
    h.create(body)
    assert h.phase("ok") == "Training"
    job = h.kube.get_job(NS, "ok-train")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "registry.example/trainer:2"


def test_an_unknown_time_zone_is_a_condition_and_creates_no_job() -> None:
    h = Harness()
    lineage = make_lineage().schedule("*/5 * * * *").obj()
    lineage["spec"]["retraining"]["timeZone"] = "Mars/Olympus_Mons"
    h.create(lineage)
    h.run_for(900.0)
    degraded = h.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", TrustReason.INVALID_SCHEDULE)
    assert "Mars/Olympus_Mons" in degraded["message"]
    assert not h.kube.jobs_of(NS, "reviews")

    h.edit_lineage(retraining={**lineage["spec"]["retraining"], "timeZone": "Europe/Berlin"})
    h.run_for(600.0)
    assert h.condition("Degraded")["status"] == "False"
    assert h.kube.jobs_of(NS, "reviews")


def test_serving_env_names_that_shadow_the_process_environment_patch_nothing() -> None:
    h = Harness()
    h.add_deployment()
    lineage = make_lineage().serving().obj()
    lineage["spec"]["serving"]["modelURIEnv"] = "LD_PRELOAD"
    h.create(lineage)
    degraded = h.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", TrustReason.RESERVED_ENV_NAME)
    assert "modelURIEnv" in degraded["message"]
    assert h.deployed() is None


def test_a_lineage_stored_under_an_older_crd_is_degraded_naming_the_field() -> None:
    h = Harness()
    lineage = make_lineage().schedule("@daily").obj()
    template = lineage["spec"]["retraining"]["template"]
    template["resources"] = {"tolerations": [{"key": "gpu type", "operator": "Exists"}]}
    h.create(lineage)
    degraded = h.condition("Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "InvalidSpec")
    assert "tolerations.0.key" in degraded["message"]
    h.run_for(60.0)  # a condition, not a retried exception
    assert h.kube.events_of("reviews") == ["InvalidSpec"]

    h.create(make_wsj("week1").obj())
    failed = h.condition("Failed", h.wsj("week1"))
    assert failed["reason"] == "InvalidLineage"
    assert "tolerations.0.key" in failed["message"]

    del template["resources"]
    h.edit_lineage(retraining=lineage["spec"]["retraining"])
    assert h.condition("Degraded")["status"] == "False"
    assert h.version("base")["manifestDigest"] == h.base_digest
