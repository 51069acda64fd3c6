"""The trust boundary at admission: what the operator would copy into a pod or a Deployment
with its own rights is refused by the API server when it could shadow the process
environment, smuggle control characters, or address something other than one S3 object.

Each case breaks exactly one rule (the API server skips CEL rules once the plain schema has
failed), and the message must name the field.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_admission import assert_refused, case_params, create
from tests.conftest import LocalCluster

from .builders import BUCKET, DIGEST, make_lineage, make_wsj

SHADOWING = "must not shadow the process environment"
CONTROL = "must not contain control characters"


def env_case(case: str, field: str, name: str) -> tuple[str, dict[str, Any], str, str]:
    manifest = make_lineage(case).serving("web").set(f"spec.serving.{field}", name).obj()
    return case, manifest, f"spec.serving.{field}", SHADOWING


ENV_CASES = [
    env_case("env-path", "modelURIEnv", "PATH"),
    env_case("env-ld-preload", "modelDigestEnv", "LD_PRELOAD"),
    env_case("env-lowercase-pythonpath", "modelURIEnv", "pythonpath"),
    env_case("env-python-startup", "modelURIEnv", "PYTHONSTARTUP"),
    env_case("env-home", "modelDigestEnv", "HOME"),
    env_case("env-kubernetes", "modelURIEnv", "KUBERNETES_SERVICE_HOST"),
    env_case("env-aws", "modelDigestEnv", "AWS_ENDPOINT_URL"),
    env_case("env-proxy", "modelURIEnv", "https_proxy"),
    env_case("env-ca-bundle", "modelURIEnv", "SSL_CERT_FILE"),
    env_case("env-server-port", "modelDigestEnv", "PORT"),
    env_case("env-warmstart-workdir", "modelURIEnv", "WARMSTART_WORKDIR"),
]

URI_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("train-uri-query", make_wsj("train-uri-query")
     .train_uri(f"{BUCKET}/data/train.jsonl?versionId=3").obj(), "spec.dataset.trainURI",
     "must not contain a query (?) or fragment (#)"),
    ("validation-uri-fragment", make_wsj("validation-uri-fragment")
     .validation_uri(f"{BUCKET}/data/v.jsonl#part2").obj(), "spec.dataset.validationURI",
     "must not contain a query (?) or fragment (#)"),
    ("parent-uri-encoded-dot-dot", make_wsj("parent-uri-encoded-dot-dot")
     .parent_uri(f"{BUCKET}/models/%2e%2e/other-team/", DIGEST).obj(), "spec.parent.uri",
     "percent-encoded dot segments"),
    ("train-uri-mixed-encoded-dots", make_wsj("train-uri-mixed-encoded-dots")
     .train_uri(f"{BUCKET}/data/.%2E/t.jsonl").obj(), "spec.dataset.trainURI",
     "percent-encoded dot segments"),
    ("uri-c1-control", make_wsj("uri-c1-control").train_uri(f"{BUCKET}/data/t\u0085.jsonl")
     .obj(), "spec.dataset.trainURI", "whitespace or control characters"),
    ("storage-uri-query", make_lineage("storage-uri-query")
     .storage_uri(f"{BUCKET}/lineages/x/?prefix=other").obj(), "spec.storage.uri",
     "must not contain a query"),
    ("holdout-encoded-dot", make_lineage("holdout-encoded-dot")
     .set("spec.evaluation.holdoutURI", f"{BUCKET}/data/%2E/holdout.jsonl").obj(),
     "spec.evaluation.holdoutURI", "percent-encoded dot segments"),
    ("base-uri-fragment", make_lineage("base-uri-fragment").base(f"{BUCKET}/base/#v2").obj(),
     "spec.base.uri", "must not contain a query"),
]

POD_STRING_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("image-newline", make_wsj("image-newline")
     .set("spec.image", "ghcr.io/warmstart-dev/trainer:0.1.0\nevil").obj(), "spec.image",
     CONTROL),
    ("image-not-a-reference", make_wsj("image-not-a-reference")
     .set("spec.image", "ghcr.io/Team/Trainer:latest").obj(), "spec.image",
     "must be a container image reference"),
    ("image-shell", make_wsj("image-shell").set("spec.image", "trainer;rm -rf /").obj(),
     "spec.image", "must be a container image reference"),
    ("text-field-tab", make_wsj("text-field-tab").set("spec.dataset.textField", "te\txt").obj(),
     "spec.dataset.textField", CONTROL),
    ("label-field-escape", make_wsj("label-field-escape")
     .set("spec.dataset.labelField", "label\u001b[2J").obj(), "spec.dataset.labelField",
     CONTROL),
    ("node-selector-key", make_wsj("node-selector-key")
     .set("spec.resources.nodeSelector", {"gpu type!": "a100"}).obj(),
     "spec.resources.nodeSelector", "keys must be qualified names"),
    ("toleration-key", make_wsj("toleration-key")
     .set("spec.resources.tolerations", [{"key": "gpu\ntype", "operator": "Exists"}]).obj(),
     "spec.resources.tolerations[0].key", "should match"),
    ("resource-name", make_wsj("resource-name")
     .set("spec.resources.limits", {"GPU count": "1"}).obj(), "spec.resources.limits",
     "keys must be resource names"),
    ("class-label-newline", make_lineage("class-label-newline").labels("negative", "pos\nitive")
     .obj(), "spec.labels[1]", CONTROL),
    ("template-image-newline", make_lineage("template-image-newline").schedule("@daily")
     .set("spec.retraining.template.image", "trainer:1\n").obj(),
     "spec.retraining.template.image", CONTROL),
]


def test_cases_are_distinct() -> None:
    cases = ENV_CASES + URI_CASES + POD_STRING_CASES
    assert len({case for case, *_ in cases}) == len(cases) >= 25


@pytest.mark.parametrize(("manifest", "path", "words"),
                         case_params(ENV_CASES + URI_CASES + POD_STRING_CASES))
def test_untrustworthy_input_is_refused_naming_the_field(
    crds: LocalCluster, shared_namespace: str, manifest: dict[str, Any], path: str, words: str
) -> None:
    assert_refused(crds, shared_namespace, manifest, path, words)


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(make_lineage("ok-env").serving("web")
                     .set("spec.serving.modelURIEnv", "MODEL_URI")
                     .set("spec.serving.modelDigestEnv", "WARMSTART_MODEL_DIGEST_B").obj(),
                     id="env-own-names"),
        pytest.param(make_lineage("ok-env-like").serving("web")
                     .set("spec.serving.modelURIEnv", "MY_PATH")
                     .set("spec.serving.modelDigestEnv", "HOMEPAGE_DIGEST").obj(),
                     id="env-names-that-only-contain-reserved-words"),
        pytest.param(make_wsj("ok-image").set(
            "spec.image", "registry.example.com:5000/team/trainer_x:1.2-rc.1@sha256:" + "a" * 64)
            .obj(), id="image-with-port-tag-and-digest"),
        pytest.param(make_wsj("ok-image-bare").set("spec.image", "trainer").obj(),
                     id="image-bare-name"),
        pytest.param(make_wsj("ok-dots-in-names")
                     .train_uri(f"{BUCKET}/data/v1.%2e/a..b/t.jsonl").obj(),
                     id="uri-dots-inside-names"),
        pytest.param(make_wsj("ok-scheduling").set("spec.resources", {
            "requests": {"cpu": "2", "nvidia.com/gpu": 1},
            "nodeSelector": {"cloud.example.com/pool": "gpu-a100"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}).obj(),
            id="qualified-keys"),
        pytest.param(make_lineage("ok-unicode-label").labels("négatif", "positif ✓").obj(),
                     id="unicode-class-labels"),
    ],
)
def test_legitimate_values_are_accepted(
    crds: LocalCluster, shared_namespace: str, manifest: dict[str, Any]
) -> None:
    result = create(crds, shared_namespace, manifest)
    assert result.returncode == 0, result.stderr
