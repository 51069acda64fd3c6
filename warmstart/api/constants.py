"""Names and enumerations of the warmstart API that the operator, trainer and CLI share."""

from __future__ import annotations

from enum import StrEnum

GROUP = "warmstart.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "warmstart"

WARMSTARTJOB_KIND = "WarmStartJob"
WARMSTARTJOB_PLURAL = "warmstartjobs"
MODELLINEAGE_KIND = "ModelLineage"
MODELLINEAGE_PLURAL = "modellineages"

# Label the operator puts on child Jobs so Kueue admits them through this LocalQueue.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


class StorageSecretKeys:
    """Keys of the Secret named by ModelLineage spec.storage.secretRef.

    They are the variable names boto3 reads from the environment, so the Secret can be
    handed to pods as envFrom. (Key names, not credentials: hence the S105 exemptions.)
    """

    ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
    SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"  # noqa: S105
    ENDPOINT_URL = "AWS_ENDPOINT_URL"  # optional: S3-compatible servers
    REGION = "AWS_REGION"  # optional

    REQUIRED = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)


# Environment variables the operator sets on the serving container (overridable per lineage).
DEFAULT_MODEL_URI_ENV = "WARMSTART_MODEL_URI"
DEFAULT_MODEL_DIGEST_ENV = "WARMSTART_MODEL_DIGEST"

# parent.version values that name a role rather than a version.
PARENT_SERVING = "serving"
PARENT_LATEST = "latest"


class Task(StrEnum):
    """What a lineage's models do; decides the model head and the evaluation metrics."""

    SEQUENCE_CLASSIFICATION = "sequence-classification"


class JobPhase(StrEnum):
    PENDING = "Pending"
    QUEUED = "Queued"
    TRAINING = "Training"
    REGISTERING = "Registering"
    SUCCEEDED = "Succeeded"
    REJECTED = "Rejected"
    FAILED = "Failed"


TERMINAL_JOB_PHASES = frozenset({JobPhase.SUCCEEDED, JobPhase.REJECTED, JobPhase.FAILED})


class VersionPhase(StrEnum):
    CANDIDATE = "Candidate"
    PROMOTED = "Promoted"
    REJECTED = "Rejected"
    ROLLED_BACK = "RolledBack"
    RETIRED = "Retired"


class Metric(StrEnum):
    ACCURACY = "accuracy"
    F1 = "f1"
    LOSS = "loss"



class MetricMode(StrEnum):
    MAX = "Max"
    MIN = "Min"


class PromotionPolicy(StrEnum):
    """Lineage-wide: what happens to a candidate that passes the gate."""

    AUTO = "Auto"
    MANUAL = "Manual"


class JobPromotion(StrEnum):
    """Per job: override of the lineage policy; `Never` keeps a run out of serving."""

    AUTO = "Auto"
    MANUAL = "Manual"
    NEVER = "Never"


class ConcurrencyPolicy(StrEnum):
    FORBID = "Forbid"
    REPLACE = "Replace"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"
