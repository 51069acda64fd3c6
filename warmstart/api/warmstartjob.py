"""WarmStartJob: one training run that warm-starts from a parent checkpoint of a lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from warmstart.api.base import ApiModel
from warmstart.api.common import MetricValues
from warmstart.api.conditions import MAX_CONDITIONS, Condition
from warmstart.api.constants import (
    API_VERSION,
    PARENT_SERVING,
    WARMSTARTJOB_KIND,
    JobPhase,
    JobPromotion,
    Metric,
)
from warmstart.api.fields import (
    Digest,
    DnsSubdomain,
    LabelSafeName,
    S3KeyURI,
    VersionName,
)
from warmstart.api.markers import Cel, ListType
from warmstart.api.podfields import ImageReference, PlainText
from warmstart.api.scheduling import Resources, Toleration
from warmstart.api.training import (
    COLD_START_MIN_DELTA,
    COLD_START_PATIENCE,
    DEFAULT_MIN_DELTA,
    WARM_START_PATIENCE,
    EarlyStopping,
    Training,
)

# Moved to scheduling.py and training.py; importable from here too.
__all__ = [
    "COLD_START_MIN_DELTA",
    "COLD_START_PATIENCE",
    "DEFAULT_MIN_DELTA",
    "WARM_START_PATIENCE",
    "EarlyStopping",
    "Resources",
    "Toleration",
    "Training",
]

# Replay sets a lineage may list; also bounds the per-set results in job status.
MAX_REPLAY_SETS = 16


class LineageReference(ApiModel):
    """The ModelLineage this job trains a version of. Same namespace only: there is no
    namespace field."""

    name: LabelSafeName
    """Name of the ModelLineage in the job's namespace."""


class ParentReference(ApiModel):
    """The checkpoint training starts from: a version of the lineage or a pinned URI."""

    crd_rules = (
        Cel("has(self.version) != has(self.uri)", "set exactly one of version or uri"),
        Cel(
            "!has(self.uri) || has(self.digest)",
            "digest is required with uri: it pins the exact parent checkpoint",
            field_path=".digest",
            reason="FieldValueRequired",
        ),
        Cel(
            "!has(self.digest) || has(self.uri)",
            "digest is only allowed with uri; a version's digest comes from the lineage record",
            field_path=".digest",
            reason="FieldValueForbidden",
        ),
    )

    version: VersionName | None = None
    """A version of the lineage: `serving` (the version the lineage serves now), `latest`
    (the newest recorded version, promoted or not) or a version name from the lineage's
    status.versions. Resolved once, when the job starts; status.parent records the result."""

    uri: S3KeyURI | None = None
    """A checkpoint outside the lineage's record, e.g. s3://bucket/models/v7/. Requires digest."""

    digest: Digest | None = None
    """sha256 of the checkpoint's manifest.json (its manifestDigest), as sha256:<64 hex>.
    The trainer refuses a parent whose manifest does not match."""


class Dataset(ApiModel):
    """Where the training and validation examples are and which fields hold text and label."""

    crd_rules = (
        Cel(
            "has(self.validationURI) != has(self.validationFraction)",
            "set exactly one of validationURI or validationFraction: early stopping needs "
            "validation data",
        ),
        Cel(
            "!has(self.validationURI) || self.validationURI != self.trainURI",
            "validationURI must differ from trainURI: validation loss on training data does "
            "not measure generalisation",
            field_path=".validationURI",
        ),
    )

    train_uri: S3KeyURI
    """Training examples, one JSON object per line (s3://bucket/key.jsonl)."""

    validation_uri: S3KeyURI | None = None
    """Validation examples, same format; early stopping watches the loss on them."""

    validation_fraction: Annotated[float, Field(gt=0, le=0.5)] | None = None
    """Instead of validationURI: hold out this fraction of the training examples (chosen
    with training.seed), in (0, 0.5]."""

    text_field: PlainText = "text"
    """JSON field of each example that holds the input text."""

    label_field: PlainText = "label"
    """JSON field of each example that holds the class label (one of the lineage's labels)."""


class WarmStartJobTemplate(ApiModel):
    """Everything in a WarmStartJob spec except the lineage it belongs to; a ModelLineage's
    retraining.template uses it to create scheduled jobs."""

    parent: ParentReference = Field(default_factory=lambda: ParentReference(version=PARENT_SERVING))
    """Checkpoint to start from; defaults to the version the lineage serves."""

    cold_start: bool = False
    """Train the parent's architecture from random weights instead: the baseline a warm
    start is compared against. Its result is recorded like any other version."""

    dataset: Dataset
    """Training and validation data."""

    training: Training = Field(default_factory=Training)
    """Hyperparameters of the run, recorded in the new version's manifest."""

    resources: Resources = Field(default_factory=Resources)
    """Scheduling and resources of the trainer pod."""

    queue_name: LabelSafeName | None = None
    """Kueue LocalQueue to submit the training Job to (sets the kueue.x-k8s.io/queue-name
    label on it); unset: the Job is not managed by Kueue."""

    image: ImageReference | None = None
    """Trainer image; unset: the image the operator was installed with. Only images the
    operator's installation allows (Helm value operator.trainer.allowedImages) are run."""

    service_account_name: DnsSubdomain | None = None
    """ServiceAccount of the trainer pod; unset: the namespace's default. Only accounts the
    operator's installation allows (Helm value operator.trainer.allowedServiceAccounts) are
    used."""

    backoff_limit: Annotated[int, Field(ge=0, le=100)] = 3
    """Pod retries before the run fails; each retry resumes from the newest checkpoint."""

    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    """Wall-clock limit of the training Job, counted from its start, retries included."""

    ttl_seconds_after_finished: Annotated[int, Field(ge=0)] | None = None
    """Delete the finished training Job and its pods after this many seconds; the
    WarmStartJob and the recorded version stay."""

    suspend: bool = False
    """While true no training pod runs; a running one is stopped and resumes from its last
    checkpoint when set back to false."""

    promotion: JobPromotion | None = None
    """Override of the lineage's promotion.policy for this run: Auto, Manual, or Never
    (record the version but never serve it, e.g. for a cold-start baseline)."""


_IMMUTABLE_SPEC_FIELDS = ("lineageRef", "parent", "coldStart", "dataset", "training")


class WarmStartJobSpec(WarmStartJobTemplate):
    """Desired training run. lineageRef, parent, coldStart, dataset and training cannot
    change once the job exists: the version it records must say how it was produced."""

    # The recorded version must describe how it was produced: fields that shape the result
    # cannot change once the job exists. Scheduling fields (resources, suspend) stay mutable.
    crd_rules = tuple(
        Cel(
            f"self.{field} == oldSelf.{field}",
            f"{field} is immutable: create a new WarmStartJob to train with other settings",
            field_path=f".{field}",
        )
        for field in _IMMUTABLE_SPEC_FIELDS
    )

    lineage_ref: LineageReference
    """The ModelLineage this job produces a version of (same namespace)."""


class ResolvedParent(ApiModel):
    """The parent as resolved when the job started."""

    version: Annotated[str, Field(max_length=63)] | None = None
    """Version name of the parent in the lineage (set when the parent is a lineage version)."""

    uri: Annotated[str, Field(max_length=1024)] | None = None
    """Where the parent checkpoint was read from."""

    manifest_digest: Annotated[str, Field(max_length=71)] | None = None
    """sha256 of the parent's manifest.json, verified before training."""


class JobOutput(ApiModel):
    """The version this run produced."""

    version: Annotated[str, Field(max_length=63)] | None = None
    """Name of the new version in the lineage."""

    uri: Annotated[str, Field(max_length=1024)] | None = None
    """Where the new checkpoint lives (<storage.uri>/<version>/)."""

    manifest_digest: Annotated[str, Field(max_length=71)] | None = None
    """sha256 of the new version's manifest.json; the next version's parent digest."""


class ReplayMetrics(ApiModel):
    """Candidate and parent on one replay set (an earlier window's evaluation data)."""

    uri: Annotated[str, Field(max_length=1024)]
    """The replay set evaluated."""

    candidate: MetricValues | None = None
    """The new model on this set."""

    parent: MetricValues | None = None
    """The parent model on this set."""


class JobMetrics(ApiModel):
    """Candidate and parent evaluated on the same data, so the numbers compare."""

    metric: Metric | None = None
    """The lineage's promotion metric, the one the gate decided on."""

    candidate: MetricValues | None = None
    """The new model on the lineage's holdout set."""

    parent: MetricValues | None = None
    """The parent model on the same holdout set."""

    replay: Annotated[list[ReplayMetrics], Field(max_length=MAX_REPLAY_SETS)] | None = None
    """Both models on each replay set: the forgetting guard."""

    summary: Annotated[str, Field(max_length=256)] | None = None
    """One line for `kubectl get`, e.g. "accuracy 0.912 (parent 0.897)"."""


class TrainingSummary(ApiModel):
    """What the training run did."""

    epochs: Annotated[int, Field(ge=0)] | None = None
    """Epochs completed."""

    steps: Annotated[int, Field(ge=0)] | None = None
    """Optimizer steps completed."""

    best_epoch: Annotated[int, Field(ge=0)] | None = None
    """Epoch whose weights were kept (lowest validation loss)."""

    best_validation_loss: Annotated[float, Field(ge=0)] | None = None
    """Validation loss of the kept weights."""

    stopped_early: bool | None = None
    """Whether early stopping ended the run before maxEpochs."""

    seconds: Annotated[float, Field(ge=0)] | None = None
    """Training wall-clock time, restarts included."""

    samples_per_second: Annotated[float, Field(ge=0)] | None = None
    """Training throughput."""


class WarmStartJobStatus(ApiModel):
    """Observed state of the run, written by the operator."""

    phase: JobPhase | None = None
    """Where the run is: Pending, Queued, Training, Registering (trained and verified; the
    lineage records it), then Succeeded (version recorded and gate passed), Rejected
    (recorded, gate failed) or Failed (no version; see the conditions for the reason)."""

    parent: ResolvedParent | None = None
    """The parent the run started from."""

    output: JobOutput | None = None
    """The version the run produced."""

    job_name: Annotated[str, Field(max_length=63)] | None = None
    """Name of the batch/v1 Job that runs the trainer."""

    metrics: JobMetrics | None = None
    """Evaluation of candidate and parent."""

    training: TrainingSummary | None = None
    """Summary of the training run."""

    conditions: (
        Annotated[list[Condition], Field(max_length=MAX_CONDITIONS), ListType("map", ("type",))]
        | None
    ) = None
    """Current state by aspect: ParentResolved, Trained, GatePassed, Promoted, Complete,
    Failed, and the warning MajorityClass (the candidate predicts one label for nearly all
    of the holdout). A Failed condition's reason says why (e.g. LineageNotFound,
    ImagePullFailed)."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """metadata.generation the status reflects."""

    start_time: datetime | None = None
    """When the training Job started."""

    completion_time: datetime | None = None
    """When the run reached Succeeded, Rejected or Failed."""


class WarmStartJob(ApiModel):
    """A WarmStartJob object as read from or sent to the API server."""

    api_version: str = API_VERSION
    """warmstart.dev/v1alpha1."""

    kind: str = WARMSTARTJOB_KIND
    """WarmStartJob."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    """Standard object metadata."""

    spec: WarmStartJobSpec
    """Desired training run."""

    status: WarmStartJobStatus | None = None
    """Observed state."""
