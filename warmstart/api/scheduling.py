"""Where and with what the trainer pod runs: resources, node placement, tolerations.

Every key and value here is copied into the pod spec of the training Job, so each is held to
the shape the pod API accepts: a bad key is refused at admission, naming the field, instead
of failing the Job create later.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from warmstart.api.base import ApiModel
from warmstart.api.constants import TaintEffect, TolerationOperator
from warmstart.api.fields import DnsSubdomain, LabelValue, Quantity
from warmstart.api.markers import Cel, MaxProperties
from warmstart.api.podfields import LabelSelectorMap, QualifiedName

ResourceList = Annotated[
    dict[str, Quantity],
    MaxProperties(16),
    Cel(
        'self.all(key, key.matches("^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*'
        '[a-z0-9])?)*/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$"))',
        "keys must be resource names such as cpu, memory or nvidia.com/gpu",
    ),
]


class Toleration(ApiModel):
    """A pod toleration, as in core/v1 Toleration."""

    crd_rules = (
        Cel(
            '!has(self.operator) || self.operator != "Exists" || !has(self.value) '
            '|| self.value == ""',
            "value must be empty when operator is Exists",
            field_path=".value",
        ),
    )

    key: QualifiedName | None = None
    """Taint key to tolerate; empty with operator Exists tolerates every taint."""

    operator: TolerationOperator = TolerationOperator.EQUAL
    """Exists tolerates any value of the key; Equal only value."""

    value: LabelValue | None = None
    """Taint value to tolerate when operator is Equal."""

    effect: TaintEffect | None = None
    """Taint effect to tolerate; empty tolerates every effect."""

    toleration_seconds: Annotated[int, Field(ge=0)] | None = None
    """For NoExecute: how long the pod stays bound after the taint appears."""


class Resources(ApiModel):
    """What the trainer pod asks the scheduler for."""

    gpus: Annotated[int, Field(ge=0, le=64)] = 0
    """NVIDIA GPUs (nvidia.com/gpu) for the trainer; 0 trains on CPU. Other accelerators go
    in limits."""

    requests: ResourceList | None = None
    """Resource requests of the trainer container, e.g. cpu: "2", memory: 8Gi."""

    limits: ResourceList | None = None
    """Resource limits of the trainer container."""

    node_selector: LabelSelectorMap | None = None
    """Node labels the trainer pod must be scheduled on."""

    tolerations: Annotated[list[Toleration], Field(max_length=32)] | None = None
    """Taints the trainer pod tolerates (e.g. on a GPU node pool)."""

    priority_class_name: DnsSubdomain | None = None
    """PriorityClass of the trainer pod."""
