"""The trust boundary's decisions, on plain data: which Deployment, storage prefix, image,
service account, env name and schedule the operator may act on, and the reason it gives
when it refuses."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmstart.api.podfields import RESERVED_ENV_NAMES, RESERVED_ENV_PREFIXES
from warmstart_operator import trust
from warmstart_operator.config import OperatorConfig
from warmstart_operator.trust import Claimant, TrustReason

AT = dt.datetime(2026, 12, 2, 16, 0, tzinfo=dt.UTC)
TRAINER = "ghcr.io/warmstart-dev/trainer:0.1.0"


# -- Deployment opt-in --------------------------------------------------------------------
def test_a_labelled_deployment_is_handed_over() -> None:
    labels = {"app": "web", trust.LINEAGE_LABEL: "reviews"}
    assert trust.deployment_opt_in("web", labels, "reviews", "team-a") is None


@pytest.mark.parametrize("labels", [None, {}, {"app": "web"}, {trust.LINEAGE_LABEL: ""}])
def test_an_unlabelled_deployment_is_refused_with_the_label_to_add(
        labels: dict[str, str] | None) -> None:
    refusal = trust.deployment_opt_in("web", labels, "reviews", "team-a")
    assert refusal is not None
    assert refusal.reason == TrustReason.DEPLOYMENT_NOT_OPTED_IN
    assert "warmstart.dev/lineage=reviews" in refusal.message
    assert "kubectl label deployment web warmstart.dev/lineage=reviews -n team-a" in \
        refusal.message


def test_a_deployment_of_another_lineage_is_left_alone() -> None:
    refusal = trust.deployment_opt_in("web", {trust.LINEAGE_LABEL: "fraud"}, "reviews", "a")
    assert refusal is not None
    assert refusal.reason == TrustReason.DEPLOYMENT_OF_ANOTHER_LINEAGE
    assert 'belongs to lineage "fraud"' in refusal.message


# -- env names ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["PATH", "path", "LD_PRELOAD", "ld_library_path", "HOME",
                                  "PYTHONPATH", "PYTHONSTARTUP", "KUBERNETES_SERVICE_HOST",
                                  "AWS_SECRET_ACCESS_KEY", "SSL_CERT_FILE", "HTTPS_PROXY",
                                  "https_proxy", "PORT", "POD_IP", "WARMSTART_WORKDIR",
                                  "warmstart_model_uri", "HF_HOME", "TORCH_HOME"])
def test_names_that_shadow_the_process_environment_are_refused(name: str) -> None:
    assert trust.reserved_env_name(name)
    refusal = trust.serving_env_names("MODEL_URI", name)
    assert refusal is not None and refusal.reason == TrustReason.RESERVED_ENV_NAME
    assert f"spec.serving.modelDigestEnv {name!r}" in refusal.message


@pytest.mark.parametrize("name", ["WARMSTART_MODEL_URI", "WARMSTART_MODEL_DIGEST", "MODEL_URI",
                                  "MY_PATH", "HOMEPAGE", "APP_LD_MODE", "WARMSTART_MODEL_X"])
def test_own_names_are_allowed(name: str) -> None:
    assert not trust.reserved_env_name(name)
    assert trust.serving_env_names(name, "MODEL_DIGEST") is None


@given(st.sampled_from(RESERVED_ENV_PREFIXES), st.from_regex(r"[A-Za-z0-9_]{0,20}",
                                                             fullmatch=True))
def test_every_reserved_prefix_is_refused_in_any_case(prefix: str, rest: str) -> None:
    assert trust.reserved_env_name(prefix + rest)
    assert trust.reserved_env_name((prefix + rest).lower())


def test_every_reserved_name_is_refused() -> None:
    assert all(trust.reserved_env_name(name) for name in RESERVED_ENV_NAMES)


# -- storage prefixes ---------------------------------------------------------------------
def claimant(name: str, created: str, uri: str) -> Claimant:
    return Claimant(name, created, uri)


@pytest.mark.parametrize(("a", "b", "overlap"), [
    ("s3://bkt/m/", "s3://bkt/m/", True),
    ("s3://bkt/m", "s3://bkt/m/", True),
    ("s3://bkt/m/", "s3://bkt/m/reviews/", True),
    ("s3://bkt", "s3://bkt/anything/", True),
    ("s3://bkt/m/", "s3://bkt/models/", False),
    ("s3://bkt/a/", "s3://bkt/b/", False),
    ("s3://bkt/m/", "s3://bkt2/m/", False),
])
def test_prefix_overlap(a: str, b: str, overlap: bool) -> None:
    assert trust.prefixes_overlap(a, b) is overlap
    assert trust.prefixes_overlap(b, a) is overlap


def test_the_first_created_keeps_the_prefix_and_the_second_is_refused() -> None:
    first = claimant("zeta", "2026-12-01T10:00:00Z", "s3://bkt/m/")
    second = claimant("alpha", "2026-12-01T10:00:05Z", "s3://bkt/m/reviews/")
    assert trust.storage_claim(first, [first, second]) is None
    refusal = trust.storage_claim(second, [first, second])
    assert refusal is not None and refusal.reason == TrustReason.STORAGE_PREFIX_CLAIMED
    assert 'lineage "zeta"' in refusal.message and "s3://bkt/m/" in refusal.message


def test_same_second_is_decided_by_name() -> None:
    a = claimant("a", "2026-12-01T10:00:00Z", "s3://bkt/m/")
    b = claimant("b", "2026-12-01T10:00:00Z", "s3://bkt/m/")
    assert trust.storage_claim(a, [a, b]) is None
    assert trust.storage_claim(b, [a, b]) is not None


def test_exactly_one_of_many_overlapping_claimants_owns_the_prefix() -> None:
    claimants = [claimant(f"l{i}", f"2026-12-01T10:00:0{i % 3}Z", f"s3://bkt/m/{'x/' * (i % 2)}")
                 for i in range(6)]
    for order in itertools.permutations(claimants, 3):
        owners = [c for c in order if trust.storage_claim(c, order) is None]
        assert len(owners) == 1, order


def test_unrelated_prefixes_and_deleted_lineages_do_not_claim() -> None:
    me = claimant("late", "2026-12-02T00:00:00Z", "s3://bkt/late/")
    other = claimant("early", "2026-12-01T00:00:00Z", "s3://bkt/early/")
    assert trust.storage_claim(me, [other, None]) is None
    going: dict[str, Any] = {
        "metadata": {"name": "early", "creationTimestamp": "2026-12-01T00:00:00Z",
                     "deletionTimestamp": "2026-12-02T00:00:00Z"},
        "spec": {"storage": {"uri": "s3://bkt/late/"}}}
    assert Claimant.of(going) is None
    assert trust.storage_claim(me, [Claimant.of(going)]) is None


def test_claimant_from_an_api_object() -> None:
    obj = {"metadata": {"name": "r", "creationTimestamp": "2026-12-01T00:00:00Z"},
           "spec": {"storage": {"uri": "s3://bkt/r/"}}}
    assert Claimant.of(obj) == Claimant("r", "2026-12-01T00:00:00Z", "s3://bkt/r/")
    assert Claimant.of({"metadata": {"name": "x"}, "spec": {}}) is None


# -- trainer image and service account ----------------------------------------------------
def test_by_default_only_the_operators_trainer_image_runs() -> None:
    assert trust.trainer_image(None, TRAINER, ()) is None
    assert trust.trainer_image(TRAINER, TRAINER, ()) is None
    refusal = trust.trainer_image("evil.example.com/miner:1", TRAINER, ())
    assert refusal is not None and refusal.reason == TrustReason.IMAGE_NOT_ALLOWED
    assert "spec.image 'evil.example.com/miner:1'" in refusal.message
    assert "operator.trainer.allowedImages" in refusal.message


@pytest.mark.parametrize(("image", "allowed"), [
    ("registry.example.com/ml/trainer:2.0", True),
    ("registry.example.com/ml/sub/trainer@sha256:" + "a" * 64, True),
    ("ghcr.io/warmstart-dev/trainer:0.2.0", True),
    ("ghcr.io/warmstart-dev/trainer:0.2.0@sha256:" + "b" * 64, True),
    ("pinned.example.com/t:1", True),
    ("pinned.example.com/t:10", False),
    ("registry.example.com/mlx/trainer:1", False),
    ("ghcr.io/warmstart-dev/trainer-evil:0.1.0", False),
    ("registry.example.com/ml/../evil:1", False),
    ("registry.example.com/ml/trainer:1\n", False),
])
def test_allowed_entries_are_prefixes_only_at_a_boundary(image: str, allowed: bool) -> None:
    entries = ("registry.example.com/ml/", "ghcr.io/warmstart-dev/trainer:",
               "pinned.example.com/t:1")
    assert trust.image_allowed(image, entries) is allowed
    assert (trust.trainer_image(image, TRAINER, entries) is None) is allowed


def test_service_accounts() -> None:
    assert trust.service_account(None, ()) is None
    assert trust.service_account("default", ()) is None
    refusal = trust.service_account("cluster-admin-sa", ())
    assert refusal is not None and refusal.reason == TrustReason.SERVICE_ACCOUNT_NOT_ALLOWED
    assert "operator.trainer.allowedServiceAccounts" in refusal.message
    assert trust.service_account("trainer", ("trainer",)) is None


def test_trainer_pod_checks_both_against_the_operator_config() -> None:
    config = OperatorConfig.from_env({"WARMSTART_TRAINER_IMAGE": TRAINER,
                                      "WARMSTART_ALLOWED_IMAGES": "reg.example.com/ml/, x:1",
                                      "WARMSTART_ALLOWED_SERVICE_ACCOUNTS": "trainer,"})
    assert config.allowed_trainer_images == ("reg.example.com/ml/", "x:1")
    assert config.allowed_service_accounts == ("trainer",)

    def check(image: str | None, account: str | None) -> str | None:
        refusal = trust.trainer_pod(image, account, config.trainer_image,
                                    config.allowed_trainer_images,
                                    config.allowed_service_accounts)
        return refusal.reason if refusal else None

    assert check(None, None) is None
    assert check("reg.example.com/ml/t:1", "trainer") is None
    assert check("x:1", None) is None
    assert check("x:2", None) == TrustReason.IMAGE_NOT_ALLOWED
    assert check(None, "builder") == TrustReason.SERVICE_ACCOUNT_NOT_ALLOWED
    assert OperatorConfig.from_env({}).allowed_trainer_images == ()


# -- schedules ----------------------------------------------------------------------------
@pytest.mark.parametrize("zone", [None, "Etc/UTC", "Europe/Berlin", "America/New_York"])
def test_known_zones_pass(zone: str | None) -> None:
    assert trust.time_zone(zone) is not None
    assert trust.schedule("0 3 * * 1", zone, AT) is None


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "UTC+1", "../../etc/passwd",
                                  "Europe/Berlin/"])
def test_unknown_zones_are_a_reason_not_an_exception(zone: str) -> None:
    assert trust.time_zone(zone) is None
    refusal = trust.schedule("@daily", zone, AT)
    assert refusal is not None and refusal.reason == TrustReason.INVALID_SCHEDULE
    assert f"spec.retraining.timeZone {zone!r}" in refusal.message


@pytest.mark.parametrize("expression", ["99 99 * * *", "0 3 31 2 *", "@fortnightly",
                                        "0 3 * * 9"])
def test_schedules_that_never_fire_are_refused(expression: str) -> None:
    refusal = trust.schedule(expression, None, AT)
    assert refusal is not None and refusal.reason == TrustReason.INVALID_SCHEDULE
    assert f"spec.retraining.schedule {expression!r}" in refusal.message


@given(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=40)))
def test_no_schedule_or_zone_raises(expression: str, zone: str | None) -> None:
    refusal = trust.schedule(expression, zone, AT)
    assert refusal is None or refusal.reason == TrustReason.INVALID_SCHEDULE


@given(st.text(max_size=80), st.lists(st.text(max_size=30), max_size=4))
def test_no_image_raises(image: str, allowed: list[str]) -> None:
    refusal = trust.trainer_image(image, TRAINER, allowed)
    assert refusal is None or refusal.reason == TrustReason.IMAGE_NOT_ALLOWED


def test_an_object_stored_under_an_older_crd_is_named_by_its_field() -> None:
    from pydantic import ValidationError

    from warmstart.api.modellineage import ModelLineage

    body = {"metadata": {"name": "r"}, "spec": {
        "labels": ["a", "b"], "storage": {"uri": "s3://bkt/r/", "secretRef": {"name": "s"}},
        "base": {"uri": "s3://bkt/base/"}, "evaluation": {"holdoutURI": "s3://bkt/h.jsonl"},
        "retraining": {"schedule": "@daily", "template": {
            "dataset": {"trainURI": "s3://bkt/t.jsonl", "validationFraction": 0.1},
            "resources": {"tolerations": [{"key": "gpu type", "operator": "Exists"}]}}}}}
    with pytest.raises(ValidationError) as caught:
        ModelLineage.model_validate(body)
    message = trust.first_error(caught.value)
    assert message.startswith("spec.retraining.template.resources.tolerations.0.key: "), message
