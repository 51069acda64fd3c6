"""Pure builders of the objects the operator creates: the training spec, its ConfigMap, the
batch/v1 Job that runs the trainer, and the serving Deployment's model patch.

Nothing here talks to the API server; every function is unit-tested on plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from warmstart import trainspec
from warmstart.api.constants import API_VERSION, KUEUE_QUEUE_LABEL, WARMSTARTJOB_KIND
from warmstart.api.modellineage import ModelLineageSpec
from warmstart.api.warmstartjob import WarmStartJobSpec
from warmstart.record import version_uri
from warmstart_operator import naming
from warmstart_operator.config import OperatorConfig

SPEC_MOUNT = "/etc/warmstart"
SPEC_FILE = "spec.json"
WORK_MOUNT = "/scratch"
MANAGED_BY = "warmstart-operator"
LINEAGE_LABEL = "warmstart.dev/lineage"
WSJ_LABEL = "warmstart.dev/warmstartjob"
# The trainer exits 2 for a bad spec or bad data and 3 when it refuses the parent (digest
# mismatch, pickle file, another version at the output): retrying cannot help.
PERMANENT_EXIT_CODES = (2, 3)


@dataclass(frozen=True)
class ResolvedParent:
    version: str
    uri: str
    manifest_digest: str


def labels(lineage: str, wsj: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/name": "warmstart-trainer",
        LINEAGE_LABEL: naming.label_value(lineage),
        WSJ_LABEL: naming.label_value(wsj),
    }


def owner_reference(wsj: dict[str, Any]) -> dict[str, Any]:
    meta = wsj["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": WARMSTARTJOB_KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def train_spec(
    wsj_name: str,
    spec: WarmStartJobSpec,
    lineage_name: str,
    lineage: ModelLineageSpec,
    parent: ResolvedParent,
) -> trainspec.TrainSpec:
    """The trainer's JSON spec for this run; raises trainspec.SpecError naming a field."""
    training = spec.training
    patience, min_delta = (None, None)
    if training.early_stopping is not None:
        patience, min_delta = training.early_stopping.patience, training.early_stopping.min_delta
    version = naming.version_name(wsj_name)
    return trainspec.TrainSpec(
        lineage=trainspec.LineageSpec(
            name=lineage_name, labels=tuple(lineage.labels), task=lineage.task.value
        ),
        version=version,
        parent=trainspec.ParentSpec(
            uri=parent.uri, manifest_digest=parent.manifest_digest, version=parent.version
        ),
        dataset=trainspec.DatasetSpec(
            train_uri=spec.dataset.train_uri,
            validation_uri=spec.dataset.validation_uri,
            validation_fraction=spec.dataset.validation_fraction,
            text_field=spec.dataset.text_field,
            label_field=spec.dataset.label_field,
        ),
        output=trainspec.OutputSpec(uri=version_uri(lineage.storage.uri, version)),
        cold_start=spec.cold_start,
        training=trainspec.TrainingSpec(
            max_epochs=training.max_epochs,
            learning_rate=training.learning_rate,
            learning_rates=tuple(training.learning_rates or ()),
            batch_size=training.batch_size,
            max_seq_length=training.max_seq_length,
            seed=training.seed,
            warmup_ratio=training.warmup_ratio,
            max_grad_norm=training.grad_clip_norm,
            early_stopping=trainspec.EarlyStoppingSpec(patience=patience, min_delta=min_delta),
            checkpoint_every_steps=training.checkpoint_every_steps,
        ),
        evaluation=trainspec.EvaluationSpec(
            holdout_uri=lineage.evaluation.holdout_uri,
            replay_uris=tuple(lineage.evaluation.replay_uris or ()),
        ),
    )


def spec_configmap(wsj: dict[str, Any], lineage_name: str, spec: trainspec.TrainSpec) -> dict[
        str, Any]:
    meta = wsj["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": naming.spec_configmap(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels(lineage_name, meta["name"]),
            "ownerReferences": [owner_reference(wsj)],
        },
        "data": {SPEC_FILE: spec.to_json_text()},
    }


def training_job(
    wsj: dict[str, Any],
    spec: WarmStartJobSpec,
    lineage_name: str,
    secret_name: str,
    config: OperatorConfig,
) -> dict[str, Any]:
    """The batch/v1 Job; deterministic name, owned by the WarmStartJob."""
    meta = wsj["metadata"]
    job_labels = labels(lineage_name, meta["name"])
    if spec.queue_name:
        job_labels[KUEUE_QUEUE_LABEL] = spec.queue_name
    res = spec.resources
    resources: dict[str, dict[str, str]] = {}
    if res.requests:
        resources["requests"] = {k: str(v) for k, v in res.requests.items()}
    if res.limits:
        resources["limits"] = {k: str(v) for k, v in res.limits.items()}
    if res.gpus:
        resources.setdefault("limits", {})["nvidia.com/gpu"] = str(res.gpus)
    container: dict[str, Any] = {
        "name": "trainer",
        "image": spec.image or config.trainer_image,
        "imagePullPolicy": "IfNotPresent",
        "command": [*config.trainer_command, "train", "--spec", f"{SPEC_MOUNT}/{SPEC_FILE}"],
        # Credentials by reference only: the Secret's keys are the AWS_* variables boto3
        # reads, so the operator never copies them into the Job or the ConfigMap.
        "envFrom": [{"secretRef": {"name": secret_name}}],
        "env": [
            {"name": "WARMSTART_WORKDIR", "value": WORK_MOUNT},
            {"name": "TMPDIR", "value": f"{WORK_MOUNT}/tmp"},  # noqa: S108 (an emptyDir)
            {"name": "HOME", "value": WORK_MOUNT},
        ],
        "volumeMounts": [
            {"name": "trainspec", "mountPath": SPEC_MOUNT, "readOnly": True},
            {"name": "work", "mountPath": WORK_MOUNT},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # The trainer talks to object storage, never to the Kubernetes API.
        "automountServiceAccountToken": False,
        # The image's numeric USER decides the uid; the kubelet refuses it if it is root.
        "securityContext": {
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "trainspec", "configMap": {"name": naming.spec_configmap(meta["name"])}},
            {"name": "work", "emptyDir": {}},
        ],
    }
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    if res.node_selector:
        pod_spec["nodeSelector"] = dict(res.node_selector)
    if res.tolerations:
        pod_spec["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True, mode="json")
                                   for t in res.tolerations]
    if res.priority_class_name:
        pod_spec["priorityClassName"] = res.priority_class_name
    job_spec: dict[str, Any] = {
        "backoffLimit": spec.backoff_limit,
        "suspend": spec.suspend,
        "podFailurePolicy": {"rules": [{
            "action": "FailJob",
            "onExitCodes": {"containerName": "trainer", "operator": "In",
                            "values": list(PERMANENT_EXIT_CODES)},
        }]},
        "template": {"metadata": {"labels": job_labels}, "spec": pod_spec},
    }
    if spec.active_deadline_seconds:
        job_spec["activeDeadlineSeconds"] = spec.active_deadline_seconds
    if spec.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": naming.training_job(meta["name"]),
            "namespace": meta["namespace"],
            "labels": job_labels,
            "ownerReferences": [owner_reference(wsj)],
        },
        "spec": job_spec,
    }


def serving_patch(
    deployment_name: str,
    container: str,
    uri_env: str,
    digest_env: str,
    version: str,
    uri: str,
    digest: str,
    extra_env: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Server-side-apply body: ONLY the model env vars of the serving container, plus an
    annotation naming the version, owned by the operator's field manager (GitOps tools are
    told to ignore exactly these fields)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name},
        "spec": {"template": {
            "metadata": {"annotations": {"warmstart.dev/model-version": version}},
            "spec": {"containers": [{
                "name": container,
                "env": [
                    {"name": uri_env, "value": uri},
                    {"name": digest_env, "value": digest},
                    *(extra_env or []),
                ],
            }]},
        }},
    }
