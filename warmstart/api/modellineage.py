"""ModelLineage: one model family, its recorded versions and what it serves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from warmstart.api.base import ApiModel
from warmstart.api.common import LocalObjectReference, MetricValues
from warmstart.api.conditions import MAX_CONDITIONS, Condition
from warmstart.api.constants import (
    API_VERSION,
    DEFAULT_MODEL_DIGEST_ENV,
    DEFAULT_MODEL_URI_ENV,
    MODELLINEAGE_KIND,
    ConcurrencyPolicy,
    Metric,
    MetricMode,
    PromotionPolicy,
    Task,
    VersionPhase,
)
from warmstart.api.fields import (
    S3URI,
    Digest,
    DnsLabel,
    S3KeyURI,
    VersionName,
)
from warmstart.api.markers import Cel, ListType
from warmstart.api.podfields import ClassLabel, ServingEnvName
from warmstart.api.signing import HistoryHead, Signing
from warmstart.api.warmstartjob import MAX_REPLAY_SETS, WarmStartJobTemplate

MAX_LABELS = 1000
MAX_STATUS_VERSIONS = 100


class Storage(ApiModel):
    """Where every version of this lineage lives, and the credentials to reach it."""

    uri: S3URI
    """s3://bucket/prefix/ under which each version is a folder <uri>/<version>/ with its
    files and a manifest.json. A prefix belongs to one lineage of the namespace: a lineage
    whose prefix equals or contains another's (or lies inside it) is Degraded
    (StoragePrefixClaimed) unless it is the older of the two."""

    secret_ref: LocalObjectReference
    """Secret in the lineage's namespace with keys AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, optionally AWS_ENDPOINT_URL (S3-compatible servers) and
    AWS_REGION. The trainer and the model server receive it as environment."""


class BaseCheckpoint(ApiModel):
    """The root of the lineage: version 0, which the first warm start starts from."""

    uri: S3KeyURI
    """Folder holding the base checkpoint (config.json, model.safetensors, tokenizer files)."""

    digest: Digest | None = None
    """sha256 of the base's manifest.json, as sha256:<64 hex>; when set, the operator
    refuses a base whose manifest does not match."""


class Evaluation(ApiModel):
    """The data every candidate and its parent are scored on."""

    crd_rules = (
        Cel(
            "!has(self.replayURIs) || !(self.holdoutURI in self.replayURIs)",
            "replayURIs must not repeat holdoutURI",
            field_path=".replayURIs",
        ),
    )

    holdout_uri: S3KeyURI
    """Fixed evaluation set (JSON lines) the promotion gate compares candidate and serving
    version on. Keep it fixed: results on different holdouts do not compare."""

    replay_uris: (
        Annotated[list[S3KeyURI], Field(max_length=MAX_REPLAY_SETS), ListType("set")] | None
    ) = None
    """Evaluation sets of earlier data windows: a candidate that forgets them by more than
    promotion.maxReplayRegression is rejected."""


def _within_fraction_range(field: str) -> Cel:
    return Cel(
        f'!has(self.{field}) || self.metric == "loss" || self.{field} <= 1.0',
        f"{field} must be within [0, 1] when metric is accuracy or f1",
        field_path=f".{field}",
    )


class Promotion(ApiModel):
    """The gate a candidate must pass to become the serving version."""

    crd_rules = (
        _within_fraction_range("minValue"),
        _within_fraction_range("minImprovement"),
        _within_fraction_range("maxReplayRegression"),
        Cel(
            '!has(self.mode) || (self.metric == "loss") == (self.mode == "Min")',
            "mode must be Max for accuracy and f1 and Min for loss",
            field_path=".mode",
        ),
    )

    metric: Metric = Metric.ACCURACY
    """Metric on the holdout set that decides: accuracy, f1 or loss."""

    mode: MetricMode | None = None
    """Whether higher (Max) or lower (Min) is better; unset: Max for accuracy and f1, Min
    for loss."""

    min_value: Annotated[float, Field(ge=0)] | None = None
    """Absolute bar: the candidate's metric must be at least this (Max) or at most this
    (Min). accuracy and f1 are in [0, 1]."""

    min_improvement: Annotated[float, Field(ge=0)] = 0.0
    """The candidate must beat the serving version on the same holdout by at least this."""

    max_replay_regression: Annotated[float, Field(ge=0)] | None = None
    """Largest allowed worsening of the metric on any replay set, compared with the parent;
    unset: replay results are reported but do not gate."""

    policy: PromotionPolicy = PromotionPolicy.MANUAL
    """Auto: a candidate that passes is rolled out. Manual: it stays a Candidate until a
    person promotes it (or sets pinnedVersion)."""

    def effective_mode(self) -> MetricMode:
        if self.mode is not None:
            return self.mode
        return MetricMode.MIN if self.metric == Metric.LOSS else MetricMode.MAX


class Serving(ApiModel):
    """The Deployment that serves this lineage; the operator updates only its model fields."""

    crd_rules = (
        Cel(
            "self.modelURIEnv != self.modelDigestEnv",
            "modelURIEnv and modelDigestEnv must name different variables",
            field_path=".modelDigestEnv",
        ),
    )

    deployment_ref: LocalObjectReference
    """Deployment in the lineage's namespace running the model server. It must opt in by
    carrying the label warmstart.dev/lineage=<this lineage's name>; the operator touches no
    other Deployment, and a Deployment serves at most one lineage."""

    container: DnsLabel
    """Container of that Deployment whose environment receives the model URI and digest."""

    progress_deadline_seconds: Annotated[int, Field(ge=30, le=86400)] = 600
    """A rollout not available within this time is rolled back to the previous version."""

    model_uri_env: ServingEnvName = DEFAULT_MODEL_URI_ENV
    """Environment variable set to the serving version's URI. It must not shadow the
    process environment: PATH, HOME, TMPDIR, PORT, POD_IP, proxy and CA-bundle variables
    and names beginning with LD_, LC_, PYTHON, KUBERNETES_, AWS_, SSL_, HF_, TORCH, CUDA_,
    XDG_ and the like, or WARMSTART_ other than WARMSTART_MODEL_, are refused."""

    model_digest_env: ServingEnvName = DEFAULT_MODEL_DIGEST_ENV
    """Environment variable set to the serving version's manifestDigest; the server
    verifies the model against it before reporting ready. Same naming rule as
    modelURIEnv."""


CRON_RULE = (
    'self.matches("^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|'
    '[0-9A-Za-z*,/#-]+( +[0-9A-Za-z*,/#-]+){4})$")'
)


class Retraining(ApiModel):
    """Scheduled warm starts: a CronJob-like trigger creating WarmStartJobs from a template."""

    schedule: Annotated[
        str,
        Field(min_length=1, max_length=128),
        Cel(
            CRON_RULE,
            "must be a cron expression with 5 fields (minute hour day-of-month month "
            "day-of-week) or one of @hourly, @daily, @midnight, @weekly, @monthly, @yearly, "
            "@annually",
        ),
    ]
    """When to retrain, in cron syntax, e.g. "0 3 * * 1" for Mondays at 03:00."""

    time_zone: (
        Annotated[
            str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
        ]
        | None
    ) = None
    """IANA time zone of the schedule, e.g. Europe/Berlin; unset: UTC. A zone the
    operator's time-zone database does not know makes the lineage Degraded
    (InvalidSchedule) and no run is scheduled."""

    template: WarmStartJobTemplate
    """Spec of each scheduled WarmStartJob (lineageRef is this lineage). Point dataset at
    the location your pipeline refreshes; each version's manifest records the digest of
    the data it actually trained on."""

    concurrency_policy: ConcurrencyPolicy = ConcurrencyPolicy.FORBID
    """When a scheduled run is due while the previous one is unfinished: Forbid skips the
    new run, Replace stops the old one."""

    suspend: bool = False
    """Pause the schedule; runs already created continue."""

    successful_jobs_history_limit: Annotated[int, Field(ge=0, le=100)] = 5
    """Finished scheduled WarmStartJobs to keep; their versions stay recorded regardless."""

    failed_jobs_history_limit: Annotated[int, Field(ge=0, le=100)] = 3
    """Failed scheduled WarmStartJobs to keep for inspection."""


class Retention(ApiModel):
    """How much of the record to keep in object storage."""

    keep_versions: Annotated[int, Field(ge=1, le=MAX_STATUS_VERSIONS)] = 10
    """Newest versions whose files are kept; older ones are deleted and marked Retired. The
    serving, previous and pinned versions and the base are always kept."""


_IMMUTABLE_SPEC_RULES = (
    Cel(
        "self.task == oldSelf.task",
        "task is immutable: every version of a lineage has the same kind of model",
        field_path=".task",
    ),
    Cel(
        "self.labels == oldSelf.labels",
        "labels are immutable: every version shares the classifier head; create a new lineage",
        field_path=".labels",
    ),
    Cel(
        "self.storage.uri == oldSelf.storage.uri",
        "storage.uri is immutable: the recorded versions live there",
        field_path=".storage.uri",
    ),
    Cel(
        "self.base == oldSelf.base",
        "base is immutable: it is version 0 of every recorded version's ancestry",
        field_path=".base",
    ),
)


class ModelLineageSpec(ApiModel):
    """Desired state of a model family. task, labels, storage.uri and base cannot change
    once the lineage exists: every recorded version depends on them."""

    crd_rules = _IMMUTABLE_SPEC_RULES

    task: Task = Task.SEQUENCE_CLASSIFICATION
    """What the models do; only sequence-classification so far."""

    labels: Annotated[list[ClassLabel], Field(min_length=2, max_length=MAX_LABELS), ListType("set")]
    """Class names in the order of the model's outputs; at least two, each unique."""

    storage: Storage
    """Object storage holding the versions."""

    base: BaseCheckpoint
    """Root checkpoint of the family."""

    evaluation: Evaluation
    """Data the promotion gate scores candidates on."""

    promotion: Promotion = Field(default_factory=Promotion)
    """Gate and policy for serving a new version."""

    serving: Serving | None = None
    """Deployment to roll forward and back; unset: the lineage only records versions."""

    retraining: Retraining | None = None
    """Scheduled retraining; unset: jobs are created by hand or by a pipeline."""

    retention: Retention = Field(default_factory=Retention)
    """How many versions keep their files."""

    pinned_version: VersionName | None = None
    """Serve exactly this version, overriding promotion (a GitOps rollback or freeze)."""

    signing: Signing | None = None
    """Sign every version and refuse versions whose signature does not verify; unset:
    versions are checked by their hash chain only."""


class LineageVersion(ApiModel):
    """One recorded version, indexed from its manifest in object storage."""

    name: Annotated[str, Field(min_length=1, max_length=63)]
    """Version name, also its folder under storage.uri."""

    parent: Annotated[str, Field(max_length=63)] | None = None
    """Version this one was warm-started from; unset for the base and for a cold start."""

    compared_with: Annotated[str, Field(max_length=63)] | None = None
    """For a cold start (trained from random weights): the version it was evaluated
    against. It took that version's architecture, not its weights, so it is no child."""

    uri: Annotated[str, Field(max_length=1024)]
    """Where the version's files live."""

    manifest_digest: Annotated[str, Field(max_length=71)] | None = None
    """sha256 of its manifest.json; the hash chain link its children record."""

    dataset_digest: Annotated[str, Field(max_length=71)] | None = None
    """sha256 of the training data it was trained on."""

    metrics: MetricValues | None = None
    """Its evaluation on the lineage's holdout set."""

    phase: VersionPhase
    """Candidate, Promoted, Rejected, RolledBack or Retired."""

    reason: Annotated[str, Field(max_length=1024)] | None = None
    """Why it is in this phase (e.g. InsufficientImprovement, RolloutTimedOut)."""

    job_name: Annotated[str, Field(max_length=253)] | None = None
    """WarmStartJob that produced it."""

    created_at: datetime | None = None
    """When its manifest was written."""


class ModelLineageStatus(ApiModel):
    """Observed state of the family, written by the operator: an index of the record in
    object storage, rebuilt from it when lost."""

    serving_version: Annotated[str, Field(max_length=63)] | None = None
    """Version the serving Deployment runs and reports available."""

    desired_version: Annotated[str, Field(max_length=63)] | None = None
    """Version being rolled out (pinnedVersion or the newest promoted one); equals
    servingVersion once the rollout is available."""

    previous_version: Annotated[str, Field(max_length=63)] | None = None
    """Version served before servingVersion: the rollback target."""

    latest_version: Annotated[str, Field(max_length=63)] | None = None
    """Newest recorded version, promoted or not."""

    version_count: Annotated[int, Field(ge=0)] | None = None
    """Number of recorded versions, retired ones included."""

    versions: (
        Annotated[
            list[LineageVersion],
            Field(max_length=MAX_STATUS_VERSIONS),
            ListType("map", ("name",)),
        ]
        | None
    ) = None
    """The newest recorded versions (at most 100), oldest first."""

    last_schedule_time: datetime | None = None
    """When retraining last created a WarmStartJob."""

    last_scheduled_job: Annotated[str, Field(max_length=253)] | None = None
    """Name of that WarmStartJob."""

    conditions: (
        Annotated[list[Condition], Field(max_length=MAX_CONDITIONS), ListType("map", ("type",))]
        | None
    ) = None
    """Ready (the desired version serves), Progressing (a rollout is under way), Degraded
    (a rollout was rolled back or storage is unusable)."""

    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """metadata.generation the status reflects."""

    history_head: HistoryHead | None = None
    """Newest entry of the serving history (what served when) in object storage."""


class ModelLineage(ApiModel):
    """A ModelLineage object as read from or sent to the API server."""

    api_version: str = API_VERSION
    """warmstart.dev/v1alpha1."""

    kind: str = MODELLINEAGE_KIND
    """ModelLineage."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    """Standard object metadata."""

    spec: ModelLineageSpec
    """Desired state."""

    status: ModelLineageStatus | None = None
    """Observed state."""
