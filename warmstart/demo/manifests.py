"""The manifests in examples/, read and changed only where the local run must differ.

Pure functions over plain dicts: each returns a changed deep copy, so the file contents a
later step re-reads are never disturbed, and each change is unit-tested on its own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from warmstart.demo.errors import DemoError

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"

# Object names the story refers to (they are the names in the example files).
LINEAGE = "reviews-classifier"
SECRET = "reviews-s3"  # noqa: S105 - the Secret's name, not a credential
DEPLOYMENT = "reviews-classifier"
WEEK1 = "reviews-week1"
WEEK2 = "reviews-week2"
WEEK2_COLD = "reviews-week2-cold"
MISLABELLED = "reviews-week3-mislabelled"
SIGNING_SECRET = "reviews-signing"  # noqa: S105 - the Secret's name, not a credential
# The pod the tamper step starts from the serving Deployment's template; its own label
# keeps it out of the Deployment's selector.
TAMPER_CHECK_POD = "reviews-tamper-check"

@dataclass(frozen=True)
class ExampleFile:
    """One object the demo applies, and the file in examples/ that holds it."""

    kind: str
    name: str
    file: str

    @property
    def shown_path(self) -> str:
        return f"examples/{self.file}"


SECRET_EXAMPLE = ExampleFile("Secret", SECRET, "s3-secret.yaml")
LINEAGE_EXAMPLE = ExampleFile("ModelLineage", LINEAGE, "lineage.yaml")
DEPLOYMENT_EXAMPLE = ExampleFile("Deployment", DEPLOYMENT, "serving/deployment.yaml")
JOB_EXAMPLES = {
    WEEK1: ExampleFile("WarmStartJob", WEEK1, "warmstart-job.yaml"),
    WEEK2: ExampleFile("WarmStartJob", WEEK2, "week2/warmstart-job.yaml"),
    WEEK2_COLD: ExampleFile("WarmStartJob", WEEK2_COLD, "week2/coldstart-job.yaml"),
    MISLABELLED: ExampleFile("WarmStartJob", MISLABELLED, "week3/mislabelled-job.yaml"),
}
ALL_EXAMPLES = (SECRET_EXAMPLE, LINEAGE_EXAMPLE, DEPLOYMENT_EXAMPLE, *JOB_EXAMPLES.values())


def load(example: ExampleFile, examples: Path = EXAMPLES) -> dict[str, Any]:
    """The single object in the example's file, checked to be the one the story expects."""
    path = examples / example.file
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    except (OSError, yaml.YAMLError) as exc:
        raise DemoError(f"cannot read {path}: {exc}") from None
    if (len(docs) != 1 or docs[0].get("kind") != example.kind
            or docs[0].get("metadata", {}).get("name") != example.name):
        raise DemoError(f"{path}: expected exactly one {example.kind} named {example.name}")
    doc: dict[str, Any] = docs[0]
    return doc


def secret_with(doc: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The example Secret with its placeholder values replaced by real credentials."""
    result = copy.deepcopy(dict(doc))
    result["stringData"] = dict(values)
    return result


def lineage_for_demo(
    doc: Mapping[str, Any],
    *,
    replay_keys: Sequence[str] | None = None,
    pinned: str | None = None,
    promotion: Mapping[str, Any] | None = None,
    signing_key: str | None = None,
) -> dict[str, Any]:
    """The example lineage as this step of the story has it.

    The weekly schedule is suspended: the demo plays the weeks itself, and a cron tick
    (Mondays 03:00) must not start a training of its own half-way through. ``replay_keys``
    replaces the replay sets (URIs under the same bucket as the holdout), as the data
    pipeline's commit would after a week closes; ``pinned`` sets spec.pinnedVersion, as a
    GitOps rollback commit would; ``signing_key`` (PEM) replaces the placeholder public key
    of spec.signing with the demo's own, keeping the key's name.
    """
    result = copy.deepcopy(dict(doc))
    spec = result["spec"]
    if "retraining" in spec:
        spec["retraining"]["suspend"] = True
    if replay_keys is not None:
        spec["evaluation"]["replayURIs"] = [
            dataset_uri(spec, key) for key in replay_keys
        ]
    if promotion:
        spec["promotion"] = {**spec.get("promotion", {}), **promotion}
    if pinned is not None:
        spec["pinnedVersion"] = pinned
    if signing_key is not None:
        keys = spec.get("signing", {}).get("trustedKeys") or []
        if not keys:
            raise DemoError(f"{LINEAGE_EXAMPLE.shown_path}: no spec.signing.trustedKeys to fill")
        spec["signing"]["trustedKeys"] = [{"name": keys[0]["name"], "publicKey": signing_key}]
    return result


def signing_secret(private_pem: str) -> dict[str, Any]:
    """The Secret spec.signing.secretRef names, holding the demo's private key; what
    `kubectl create secret generic reviews-signing --from-file=signing.key` creates."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SIGNING_SECRET},
        "type": "Opaque",
        "stringData": {"signing.key": private_pem},
    }


def tamper_check_pod(deployment: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """A bare Pod running the serving Deployment's pod template with ``env`` set on its
    server container (the model the lineage would set): the same server, the same checks,
    started on a version of the demo's choosing without touching what serves."""
    template = copy.deepcopy(dict(deployment["spec"]["template"]))
    spec = template["spec"]
    spec["restartPolicy"] = "Never"
    container = spec["containers"][0]
    kept = [e for e in container.get("env", []) if e.get("name") not in env]
    container["env"] = kept + [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": TAMPER_CHECK_POD, "labels": {"app": TAMPER_CHECK_POD}},
        "spec": spec,
    }


def dataset_uri(lineage_spec: Mapping[str, Any], key: str) -> str:
    """URI of a dataset file next to the lineage's holdout set (``week1/eval.jsonl``)."""
    holdout = str(lineage_spec["evaluation"]["holdoutURI"])
    return holdout.rsplit("/", 1)[0] + "/" + key


def job_for_demo(doc: Mapping[str, Any], training: Mapping[str, Any] | None) -> dict[str, Any]:
    """The example WarmStartJob with the plan's training overrides (the quick variant's
    smaller epoch budget); nested earlyStopping is merged, not replaced."""
    result = copy.deepcopy(dict(doc))
    if training:
        current = result["spec"].setdefault("training", {})
        for key, value in training.items():
            if isinstance(value, Mapping) and isinstance(current.get(key), Mapping):
                current[key] = {**current[key], **value}
            else:
                current[key] = value
    return result


def storage_uris(lineage: Mapping[str, Any]) -> tuple[str, str, str]:
    """(versions prefix, base checkpoint prefix, datasets prefix) named by the lineage."""
    spec = lineage["spec"]
    holdout = str(spec["evaluation"]["holdoutURI"])
    return str(spec["storage"]["uri"]), str(spec["base"]["uri"]), holdout.rsplit("/", 1)[0] + "/"


def bucket_of(uri: str) -> str:
    if not uri.startswith("s3://"):
        raise DemoError(f"{uri}: the demo stores everything in S3; want s3://bucket/...")
    return uri[len("s3://"):].split("/", 1)[0]
