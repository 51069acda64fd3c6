"""The API server refuses malformed WarmStartJobs and ModelLineages, naming the field.

Each case breaks exactly one rule: the API server skips CEL rules once the plain schema has
failed, so a manifest with two defects would test only one of them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.conftest import LocalCluster
from warmstart.api.constants import GROUP, VERSION, WARMSTARTJOB_PLURAL

from .builders import BUCKET, DIGEST, make_lineage, make_wsj

DATA = f"{BUCKET}/data/week1/train.jsonl"
CHECKPOINT = f"{BUCKET}/models/v3/"


def job_with_train_uri(case: str, uri: str) -> dict[str, Any]:
    return make_wsj(case).train_uri(uri).obj()


# (case id, manifest, path the message must name, words the message must contain)
JOB_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("epochs-zero", make_wsj("epochs-zero").epochs(0).obj(), "spec.training.maxEpochs",
     "greater than or equal to 1"),
    ("epochs-negative", make_wsj("epochs-negative").epochs(-3).obj(), "spec.training.maxEpochs",
     "greater than or equal to 1"),
    ("learning-rate-zero", make_wsj("learning-rate-zero").learning_rate(0).obj(),
     "spec.training.learningRate", "greater than 0"),
    ("learning-rate-negative", make_wsj("learning-rate-negative").learning_rate(-1e-5).obj(),
     "spec.training.learningRate", "greater than 0"),
    ("batch-size-zero", make_wsj("batch-size-zero").batch_size(0).obj(),
     "spec.training.batchSize", "greater than or equal to 1"),
    ("batch-size-negative", make_wsj("batch-size-negative").batch_size(-16).obj(),
     "spec.training.batchSize", "greater than or equal to 1"),
    ("promotion-unknown", make_wsj("promotion-unknown").promotion("Sometimes").obj(),
     "spec.promotion", 'Unsupported value: "Sometimes"'),
    ("train-uri-http", job_with_train_uri("train-uri-http", "http://data.example.com/t.jsonl"),
     "spec.dataset.trainURI", "must be an s3:// URI"),
    ("train-uri-relative", job_with_train_uri("train-uri-relative", "data/train.jsonl"),
     "spec.dataset.trainURI", "must be an s3:// URI"),
    ("bucket-uppercase", job_with_train_uri("bucket-uppercase", "s3://Reviews/t.jsonl"),
     "spec.dataset.trainURI", "bucket name must be 3-63 characters"),
    ("bucket-too-short", job_with_train_uri("bucket-too-short", "s3://ab/t.jsonl"),
     "spec.dataset.trainURI", "bucket name must be 3-63 characters"),
    ("bucket-too-long", job_with_train_uri("bucket-too-long", f"s3://{'a' * 64}/t.jsonl"),
     "spec.dataset.trainURI", "bucket name must be 3-63 characters"),
    ("bucket-underscore", job_with_train_uri("bucket-underscore", "s3://my_bucket/t.jsonl"),
     "spec.dataset.trainURI", "bucket name must be 3-63 characters"),
    ("bucket-leading-hyphen", job_with_train_uri("bucket-leading-hyphen", "s3://-data/t.jsonl"),
     "spec.dataset.trainURI", "beginning and ending with a letter or digit"),
    ("bucket-trailing-dot", job_with_train_uri("bucket-trailing-dot", "s3://data./t.jsonl"),
     "spec.dataset.trainURI", "beginning and ending with a letter or digit"),
    ("bucket-adjacent-dots", job_with_train_uri("bucket-adjacent-dots", "s3://my..data/t.jsonl"),
     "spec.dataset.trainURI", "two adjacent periods"),
    ("bucket-ip-address", job_with_train_uri("bucket-ip-address", "s3://192.168.10.20/t.jsonl"),
     "spec.dataset.trainURI", "formatted as an IP address"),
    ("bucket-reserved-prefix", job_with_train_uri("bucket-reserved-prefix", "s3://xn--data/t"),
     "spec.dataset.trainURI", "S3 reserves"),
    ("bucket-reserved-suffix", job_with_train_uri("bucket-reserved-suffix", "s3://d-s3alias/t"),
     "spec.dataset.trainURI", "S3 reserves"),
    ("key-dot-dot", make_wsj("key-dot-dot").validation_uri(f"{BUCKET}/data/../keys/v.jsonl")
     .obj(), "spec.dataset.validationURI", "'..' path segments"),
    ("key-trailing-dot-dot", make_wsj("key-trailing-dot-dot").parent_uri(f"{BUCKET}/models/..")
     .obj(), "spec.parent.uri", "'..' path segments"),
    ("uri-bucket-only", job_with_train_uri("uri-bucket-only", f"{BUCKET}/"),
     "spec.dataset.trainURI", "must name a key inside the bucket"),
    ("uri-whitespace", job_with_train_uri("uri-whitespace", f"{DATA} "),
     "spec.dataset.trainURI", "whitespace"),
    ("parent-version-and-uri", make_wsj("parent-version-and-uri")
     .set("spec.parent", {"version": "v3", "uri": CHECKPOINT, "digest": DIGEST}).obj(),
     "spec.parent", "exactly one of version or uri"),
    ("parent-uri-without-digest", make_wsj("parent-uri-without-digest")
     .parent_uri(CHECKPOINT, digest=None).obj(), "spec.parent.digest", "Required value"),
    ("parent-digest-with-version", make_wsj("parent-digest-with-version")
     .set("spec.parent", {"version": "v3", "digest": DIGEST}).obj(), "spec.parent.digest",
     "only allowed with uri"),
    ("digest-short", make_wsj("digest-short").parent_uri(CHECKPOINT, "sha256:abc").obj(),
     "spec.parent.digest", "64 lowercase hexadecimal digits"),
    ("digest-uppercase", make_wsj("digest-uppercase").parent_uri(CHECKPOINT, "sha256:" + "A" * 64)
     .obj(), "spec.parent.digest", "64 lowercase hexadecimal digits"),
    ("digest-md5", make_wsj("digest-md5").parent_uri(CHECKPOINT, "md5:" + "0" * 32).obj(),
     "spec.parent.digest", "64 lowercase hexadecimal digits"),
    ("parent-version-name", make_wsj("parent-version-name").parent("Week_3").obj(),
     "spec.parent.version", "should match"),
    ("lineage-ref-namespace", make_wsj("lineage-ref-namespace")
     .set("spec.lineageRef", {"name": "reviews-classifier", "namespace": "other-team"}).obj(),
     "spec.lineageRef.namespace", "unknown field"),
    ("unknown-field", make_wsj("unknown-field").set("spec.training.epochs", 3).obj(),
     "spec.training.epochs", "unknown field"),
    ("lineage-ref-missing", make_wsj("lineage-ref-missing").unset("spec.lineageRef").obj(),
     "spec.lineageRef", "Required value"),
    ("no-validation-data", make_wsj("no-validation-data").unset("spec.dataset.validationURI")
     .obj(), "spec.dataset", "exactly one of validationURI or validationFraction"),
    ("both-validation-sources", make_wsj("both-validation-sources")
     .set("spec.dataset.validationFraction", 0.1).obj(), "spec.dataset",
     "exactly one of validationURI or validationFraction"),
    ("validation-fraction-too-big", make_wsj("validation-fraction-too-big")
     .validation_fraction(0.9).obj(), "spec.dataset.validationFraction",
     "less than or equal to 0.5"),
    ("validation-is-train", make_wsj("validation-is-train").validation_uri(DATA)
     .train_uri(DATA).obj(), "spec.dataset.validationURI", "must differ from trainURI"),
    ("patience-zero", make_wsj("patience-zero").set("spec.training.earlyStopping.patience", 0)
     .obj(), "spec.training.earlyStopping.patience", "greater than or equal to 1"),
    ("warmup-ratio-one", make_wsj("warmup-ratio-one").set("spec.training.warmupRatio", 1.0)
     .obj(), "spec.training.warmupRatio", "less than 1"),
    ("gpus-negative", make_wsj("gpus-negative").set("spec.resources.gpus", -1).obj(),
     "spec.resources.gpus", "greater than or equal to 0"),
    ("quantity-malformed", make_wsj("quantity-malformed")
     .set("spec.resources.requests", {"memory": "lots"}).obj(), "spec.resources.requests.memory",
     "should match"),
    ("queue-name-invalid", make_wsj("queue-name-invalid").set("spec.queueName", "GPU Queue")
     .obj(), "spec.queueName", "should match"),
    ("lineage-ref-name-too-long", make_wsj("lineage-ref-name-too-long").lineage("x" * 64).obj(),
     "spec.lineageRef.name", "may not be more than 63"),
    ("toleration-exists-with-value", make_wsj("toleration-exists-with-value")
     .set("spec.resources.tolerations", [{"key": "gpu", "operator": "Exists", "value": "a100"}])
     .obj(), "spec.resources.tolerations[0].value", "must be empty when operator is Exists"),
]


def lineage_with_storage(case: str, uri: str) -> dict[str, Any]:
    return make_lineage(case).storage_uri(uri).obj()


LINEAGE_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("labels-empty", make_lineage("labels-empty").labels().obj(), "spec.labels",
     "at least 2 items"),
    ("labels-single", make_lineage("labels-single").labels("positive").obj(), "spec.labels",
     "at least 2 items"),
    ("labels-duplicate", make_lineage("labels-duplicate").labels("pos", "neg", "pos").obj(),
     "spec.labels[2]", 'Duplicate value: "pos"'),
    ("label-empty-string", make_lineage("label-empty-string").labels("", "pos").obj(),
     "spec.labels[0]", "at least 1 chars long"),
    ("storage-https", lineage_with_storage("storage-https", "https://s3.amazonaws.com/b/m/"),
     "spec.storage.uri", "must be an s3:// URI"),
    ("storage-relative", lineage_with_storage("storage-relative", "models/reviews/"),
     "spec.storage.uri", "must be an s3:// URI"),
    ("storage-bucket-ip", lineage_with_storage("storage-bucket-ip", "s3://10.0.0.1/models/"),
     "spec.storage.uri", "formatted as an IP address"),
    ("storage-key-dot-dot", lineage_with_storage("storage-key-dot-dot", f"{BUCKET}/a/../b/"),
     "spec.storage.uri", "'..' path segments"),
    ("secret-ref-namespace", make_lineage("secret-ref-namespace")
     .set("spec.storage.secretRef", {"name": "reviews-s3", "namespace": "vault"}).obj(),
     "spec.storage.secretRef.namespace", "unknown field"),
    ("deployment-ref-namespace", make_lineage("deployment-ref-namespace").serving("web")
     .set("spec.serving.deploymentRef.namespace", "prod").obj(),
     "spec.serving.deploymentRef.namespace", "unknown field"),
    ("policy-unknown", make_lineage("policy-unknown").policy("Sometimes").obj(),
     "spec.promotion.policy", 'Unsupported value: "Sometimes"'),
    ("metric-unknown", make_lineage("metric-unknown").metric("auc").obj(),
     "spec.promotion.metric", 'Unsupported value: "auc"'),
    ("min-value-accuracy-above-one", make_lineage("min-value-accuracy-above-one")
     .metric("accuracy", 1.5).obj(), "spec.promotion.minValue", "within [0, 1]"),
    ("min-value-f1-above-one", make_lineage("min-value-f1-above-one").metric("f1", 2).obj(),
     "spec.promotion.minValue", "within [0, 1]"),
    ("min-value-negative", make_lineage("min-value-negative").metric("loss", -0.5).obj(),
     "spec.promotion.minValue", "greater than or equal to 0"),
    ("mode-contradicts-metric", make_lineage("mode-contradicts-metric").metric("loss")
     .set("spec.promotion.mode", "Max").obj(), "spec.promotion.mode", "Min for loss"),
    ("schedule-words", make_lineage("schedule-words").schedule("every monday").obj(),
     "spec.retraining.schedule", "cron expression"),
    ("schedule-four-fields", make_lineage("schedule-four-fields").schedule("0 3 * *").obj(),
     "spec.retraining.schedule", "cron expression"),
    ("schedule-six-fields", make_lineage("schedule-six-fields").schedule("0 0 3 * * 1").obj(),
     "spec.retraining.schedule", "cron expression"),
    ("schedule-unknown-macro", make_lineage("schedule-unknown-macro").schedule("@fortnightly")
     .obj(), "spec.retraining.schedule", "cron expression"),
    ("template-lineage-ref", make_lineage("template-lineage-ref").schedule("@weekly")
     .set("spec.retraining.template.lineageRef", {"name": "other"}).obj(),
     "spec.retraining.template.lineageRef", "unknown field"),
    ("base-digest-malformed", make_lineage("base-digest-malformed")
     .base(f"{BUCKET}/base/", "sha256:xyz").obj(), "spec.base.digest",
     "64 lowercase hexadecimal digits"),
    ("base-bucket-only", make_lineage("base-bucket-only").base("s3://warmstart-test").obj(),
     "spec.base.uri", "must name a key inside the bucket"),
    ("replay-repeats-holdout", make_lineage("replay-repeats-holdout")
     .replay(f"{BUCKET}/data/holdout.jsonl").obj(), "spec.evaluation.replayURIs",
     "must not repeat holdoutURI"),
    ("replay-duplicate", make_lineage("replay-duplicate")
     .replay(f"{BUCKET}/w0.jsonl", f"{BUCKET}/w0.jsonl").obj(),
     "spec.evaluation.replayURIs[1]", "Duplicate value"),
    ("task-unknown", make_lineage("task-unknown").set("spec.task", "translation").obj(),
     "spec.task", 'Unsupported value: "translation"'),
    ("keep-versions-zero", make_lineage("keep-versions-zero")
     .set("spec.retention.keepVersions", 0).obj(), "spec.retention.keepVersions",
     "greater than or equal to 1"),
    ("keep-versions-above-status-bound", make_lineage("keep-versions-above-status-bound")
     .set("spec.retention.keepVersions", 101).obj(), "spec.retention.keepVersions",
     "less than or equal to 100"),
    ("lineage-name-too-long", make_lineage("x" * 64).obj(), "metadata.name",
     "at most 63 characters"),
    ("pinned-version-name", make_lineage("pinned-version-name").pinned("V3!").obj(),
     "spec.pinnedVersion", "should match"),
    ("env-var-name", make_lineage("env-var-name").serving("web")
     .set("spec.serving.modelURIEnv", "1-model").obj(), "spec.serving.modelURIEnv",
     "should match"),
    ("concurrency-policy-unknown", make_lineage("concurrency-policy-unknown").schedule("@daily")
     .set("spec.retraining.concurrencyPolicy", "Allow").obj(),
     "spec.retraining.concurrencyPolicy", 'Unsupported value: "Allow"'),
]


def case_params(cases: list[tuple[str, dict[str, Any], str, str]]) -> list[Any]:
    return [pytest.param(manifest, path, words, id=case) for case, manifest, path, words in cases]


def create(cluster: LocalCluster, namespace: str, manifest: dict[str, Any], *flags: str) -> Any:
    return cluster.kubectl(
        "create", "-n", namespace, "-f", "-", *flags, input=yaml.safe_dump(manifest), check=False
    )


def assert_refused(
    cluster: LocalCluster, namespace: str, manifest: dict[str, Any], path: str, words: str
) -> None:
    result = create(cluster, namespace, manifest)
    assert result.returncode != 0, f"the API server accepted it:\n{result.stdout}"
    assert path in result.stderr, result.stderr
    assert words in result.stderr, result.stderr
    name = manifest["metadata"]["name"]
    found = cluster.kubectl("get", manifest["kind"], name, "-n", namespace, check=False)
    assert "NotFound" in found.stderr


def test_at_least_25_distinct_refusals() -> None:
    cases = JOB_CASES + LINEAGE_CASES
    assert len({case for case, *_ in cases}) == len(cases) >= 25


@pytest.mark.parametrize(("manifest", "path", "words"), case_params(JOB_CASES))
def test_malformed_warmstartjob_is_refused_naming_the_field(
    crds: LocalCluster, shared_namespace: str, manifest: dict[str, Any], path: str, words: str
) -> None:
    assert_refused(crds, shared_namespace, manifest, path, words)


@pytest.mark.parametrize(("manifest", "path", "words"), case_params(LINEAGE_CASES))
def test_malformed_modellineage_is_refused_naming_the_field(
    crds: LocalCluster, shared_namespace: str, manifest: dict[str, Any], path: str, words: str
) -> None:
    assert_refused(crds, shared_namespace, manifest, path, words)


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(make_wsj("valid-minimal").obj(), id="job-minimal"),
        pytest.param(make_wsj("valid-uri-parent").parent_uri(CHECKPOINT).cold_start().obj(),
                     id="job-uri-parent"),
        pytest.param(make_wsj("valid-fraction").validation_fraction(0.2).obj(),
                     id="job-validation-fraction"),
        pytest.param(job_with_train_uri("valid-dotted-bucket", "s3://data.example-1/a/b.jsonl"),
                     id="job-dotted-bucket"),
        pytest.param(make_lineage("valid-minimal").obj(), id="lineage-minimal"),
        pytest.param(make_lineage("valid-loss").metric("loss", 2.5)
                     .set("spec.promotion.mode", "Min").obj(), id="lineage-loss-above-one"),
        pytest.param(make_lineage("valid-macro").schedule("@weekly").obj(),
                     id="lineage-schedule-macro"),
        pytest.param(make_lineage("valid-cron").schedule("*/15 2-4 1,15 JAN-JUN MON#1").obj(),
                     id="lineage-schedule-cron-lists-ranges-names"),
        pytest.param(make_lineage("valid-bucket-root").storage_uri("s3://warmstart-test").obj(),
                     id="lineage-storage-bucket-root"),
    ],
)
def test_valid_edge_cases_are_accepted(
    crds: LocalCluster, shared_namespace: str, manifest: dict[str, Any]
) -> None:
    # The refusals above prove little if the rules also refuse what they should allow.
    result = create(crds, shared_namespace, manifest)
    assert result.returncode == 0, result.stderr


IMMUTABLE_JOB_PATCHES = [
    ("lineageRef", {"lineageRef": {"name": "another-lineage"}}),
    ("parent", {"parent": {"version": "latest"}}),
    ("coldStart", {"coldStart": True}),
    ("dataset", {"dataset": {"trainURI": f"{BUCKET}/data/week2/train.jsonl"}}),
    ("training", {"training": {"maxEpochs": 9}}),
]


def merge_patch(
    cluster: LocalCluster, namespace: str, kind: str, name: str, spec: dict[str, Any]
) -> Any:
    return cluster.kubectl(
        "patch", kind, name, "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": spec}), check=False,
    )


@pytest.mark.parametrize(("field", "patch"), IMMUTABLE_JOB_PATCHES, ids=[f for f, _ in
                                                                          IMMUTABLE_JOB_PATCHES])
def test_job_fields_that_shape_the_result_cannot_change(
    crds: LocalCluster, namespace: str, field: str, patch: dict[str, Any]
) -> None:
    create(crds, namespace, make_wsj("a").obj()).check_returncode()
    result = merge_patch(crds, namespace, "wsj", "a", patch)
    assert result.returncode != 0
    assert f"spec.{field}: Invalid value" in result.stderr
    assert f"{field} is immutable" in result.stderr


def test_job_scheduling_fields_stay_mutable(crds: LocalCluster, namespace: str) -> None:
    create(crds, namespace, make_wsj("a").obj()).check_returncode()
    patch = {"suspend": True, "promotion": "Never", "resources": {"gpus": 1},
             "activeDeadlineSeconds": 600}
    result = merge_patch(crds, namespace, "wsj", "a", patch)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("field", "patch"),
    [
        ("labels", {"labels": ["negative", "neutral", "positive"]}),
        ("storage.uri", {"storage": {"uri": f"{BUCKET}/elsewhere/"}}),
        ("base", {"base": {"uri": f"{BUCKET}/base/other/"}}),
    ],
)
def test_lineage_identity_cannot_change(
    crds: LocalCluster, namespace: str, field: str, patch: dict[str, Any]
) -> None:
    create(crds, namespace, make_lineage("m").obj()).check_returncode()
    result = merge_patch(crds, namespace, "mlin", "m", patch)
    assert result.returncode != 0
    assert f"spec.{field}: Invalid value" in result.stderr
    assert f"{field} is immutable" in result.stderr or f"{field} are immutable" in result.stderr


def test_lineage_policy_and_credentials_stay_mutable(crds: LocalCluster, namespace: str) -> None:
    create(crds, namespace, make_lineage("m").obj()).check_returncode()
    patch = {"promotion": {"policy": "Auto"}, "storage": {"secretRef": {"name": "rotated"}},
             "pinnedVersion": "v2"}
    result = merge_patch(crds, namespace, "mlin", "m", patch)
    assert result.returncode == 0, result.stderr


def with_namespaced_lineage_ref(name: str) -> dict[str, Any]:
    return (
        make_wsj(name)
        .set("spec.lineageRef", {"name": "reviews-classifier", "namespace": "other-team"})
        .obj()
    )


def stored_lineage_ref(cluster: LocalCluster, namespace: str, name: str) -> Any:
    got = cluster.kubectl("get", "wsj", name, "-n", namespace, "-o", "json")
    return json.loads(got.stdout)["spec"]["lineageRef"]


def test_unknown_field_is_refused_under_kubectls_default_strict_validation(
    crds: LocalCluster, namespace: str
) -> None:
    result = create(crds, namespace, with_namespaced_lineage_ref("strict"), "--validate=strict")
    assert result.returncode != 0
    assert 'strict decoding error: unknown field "spec.lineageRef.namespace"' in result.stderr


def test_unknown_field_is_pruned_with_a_warning_under_warn_validation(
    crds: LocalCluster, namespace: str
) -> None:
    result = create(crds, namespace, with_namespaced_lineage_ref("warned"), "--validate=warn")
    assert result.returncode == 0, result.stderr
    assert 'unknown field "spec.lineageRef.namespace"' in result.stderr
    assert stored_lineage_ref(crds, namespace, "warned") == {"name": "reviews-classifier"}


def test_unknown_field_is_pruned_for_clients_that_do_not_ask_for_validation(
    crds: LocalCluster, namespace: str
) -> None:
    # The Python client sends no fieldValidation: the server default (Warn) prunes. The
    # reference can therefore never point across namespaces, whatever the client.
    api = crds.api_client()
    try:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, WARMSTARTJOB_PLURAL, with_namespaced_lineage_ref("quiet")
        )
    finally:
        api.close()
    assert stored_lineage_ref(crds, namespace, "quiet") == {"name": "reviews-classifier"}
