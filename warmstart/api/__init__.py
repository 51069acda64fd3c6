"""The warmstart API: typed WarmStartJob and ModelLineage models, the single definition
from which crds/*.yaml are generated (see `warmstart.api.crdgen`)."""

from warmstart.api.conditions import (
    Condition,
    JobConditionType,
    JobReason,
    LineageConditionType,
    LineageReason,
    find_condition,
    set_condition,
)
from warmstart.api.constants import API_VERSION, GROUP, VERSION
from warmstart.api.modellineage import ModelLineage, ModelLineageSpec, ModelLineageStatus
from warmstart.api.warmstartjob import (
    WarmStartJob,
    WarmStartJobSpec,
    WarmStartJobStatus,
    WarmStartJobTemplate,
)

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Condition",
    "JobConditionType",
    "JobReason",
    "LineageConditionType",
    "LineageReason",
    "ModelLineage",
    "ModelLineageSpec",
    "ModelLineageStatus",
    "WarmStartJob",
    "WarmStartJobSpec",
    "WarmStartJobStatus",
    "WarmStartJobTemplate",
    "find_condition",
    "set_condition",
]
