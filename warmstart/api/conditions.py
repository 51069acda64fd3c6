"""Status conditions: the shape (as metav1.Condition), the types and reasons both kinds use,
and the one way to set a condition.

Reasons are CamelCase constants so tools and alerts can match on them; the message carries
the human detail. Conditions the API server cannot check (a lineage that does not exist, a
parent version nobody recorded) are how the operator refuses input it only learns is bad
at reconcile time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from pydantic import Field

from warmstart.api.base import ApiModel
from warmstart.api.constants import ConditionStatus

# Same shapes as metav1.Condition, so condition-aware tools (kstatus, Argo CD) read them.
_CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
_CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
MAX_CONDITIONS = 16


class Condition(ApiModel):
    """One aspect of the object's state, as in metav1.Condition."""

    type: Annotated[str, Field(min_length=1, max_length=316, pattern=_CONDITION_TYPE_PATTERN)]
    """Aspect this condition reports, in CamelCase (e.g. Ready, ParentResolved)."""

    status: ConditionStatus
    """Whether the aspect holds: True, False or Unknown."""

    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=_CONDITION_REASON_PATTERN)]
    """Machine-readable CamelCase cause of the last transition (e.g. LineageNotFound)."""

    message: Annotated[str, Field(max_length=32768)] = ""
    """Human-readable detail of the last transition."""

    last_transition_time: datetime
    """When status last changed; kept while the status stays the same."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """metadata.generation of the object this condition was computed from."""


def set_condition(conditions: Sequence[Condition], new: Condition) -> list[Condition]:
    """Return `conditions` with `new` in place of the condition of the same type.

    lastTransitionTime moves only when the status changes: a reconcile that re-asserts the
    same status must not make the condition look fresh.
    """
    updated: list[Condition] = []
    replaced = False
    for current in conditions:
        if current.type != new.type:
            updated.append(current)
            continue
        replaced = True
        if current.status == new.status:
            kept = {"last_transition_time": current.last_transition_time}
            updated.append(new.model_copy(update=kept))
        else:
            updated.append(new)
    if not replaced:
        updated.append(new)
    return updated


def find_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    return next((c for c in conditions if c.type == condition_type), None)


class JobConditionType:
    """Condition types of a WarmStartJob."""

    PARENT_RESOLVED = "ParentResolved"  # lineage found, parent manifest read and verified
    TRAINED = "Trained"  # the training Job finished and the child manifest verified
    GATE_PASSED = "GatePassed"  # candidate met the lineage's promotion gate
    PROMOTED = "Promoted"  # candidate became the lineage's desired serving version
    COMPLETE = "Complete"  # terminal: Succeeded or Rejected
    FAILED = "Failed"  # terminal: the run cannot produce a version
    MAJORITY_CLASS = "MajorityClass"  # warning: the candidate predicts one label for all


class JobReason:
    """Reasons on WarmStartJob conditions."""

    # ParentResolved=False: input only the operator can check.
    LINEAGE_NOT_FOUND = "LineageNotFound"
    PARENT_NOT_FOUND = "ParentNotFound"  # parent.version names no recorded version
    NO_SERVING_VERSION = "NoServingVersion"  # parent.version=serving before any promotion
    PARENT_MANIFEST_UNREADABLE = "ParentManifestUnreadable"
    PARENT_DIGEST_MISMATCH = "ParentDigestMismatch"
    STORAGE_SECRET_NOT_FOUND = "StorageSecretNotFound"  # noqa: S105 - a reason, no secret
    PARENT_RESOLVED = "ParentResolved"
    # Waiting.
    LINEAGE_BUSY = "LineageBusy"  # another job of the lineage is running (Queued)
    SUSPENDED = "Suspended"
    # Training outcome.
    TRAINING_SUCCEEDED = "TrainingSucceeded"
    TRAINING_FAILED = "TrainingFailed"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    IMAGE_PULL_FAILED = "ImagePullFailed"  # the trainer image cannot be pulled
    PREDICTS_ONE_CLASS = "PredictsOneClass"  # MajorityClass=True
    OUTPUT_MANIFEST_INVALID = "OutputManifestInvalid"
    # Gate outcome.
    GATE_PASSED = "GatePassed"
    BELOW_MIN_VALUE = "BelowMinValue"
    INSUFFICIENT_IMPROVEMENT = "InsufficientImprovement"
    REPLAY_REGRESSION = "ReplayRegression"
    # Promotion outcome.
    PROMOTED = "Promoted"
    AWAITING_APPROVAL = "AwaitingApproval"  # policy Manual: a person sets the version
    PROMOTION_DISABLED = "PromotionDisabled"  # job promotion: Never
    SUPERSEDED = "Superseded"  # a newer version was promoted first


class LineageConditionType:
    """Condition types of a ModelLineage."""

    READY = "Ready"  # the desired version is serving and available
    PROGRESSING = "Progressing"  # a rollout is under way
    DEGRADED = "Degraded"  # a rollout failed and was rolled back, or storage is unusable


class LineageReason:
    """Reasons on ModelLineage conditions."""

    SERVING = "Serving"
    NO_VERSION_SERVING = "NoVersionServing"
    NO_SERVING_CONFIGURED = "NoServingConfigured"  # spec.serving unset: a registry only
    DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
    CONTAINER_NOT_FOUND = "ContainerNotFound"
    PINNED_VERSION_NOT_FOUND = "PinnedVersionNotFound"
    STORAGE_SECRET_NOT_FOUND = "StorageSecretNotFound"  # noqa: S105 - a reason, no secret
    STORAGE_UNREACHABLE = "StorageUnreachable"
    BASE_UNVERIFIED = "BaseUnverified"
    ROLLING_OUT = "RollingOut"
    ROLLOUT_COMPLETE = "RolloutComplete"
    ROLLOUT_TIMED_OUT = "RolloutTimedOut"
    ROLLED_BACK = "RolledBack"
    RECONCILED = "Reconciled"
