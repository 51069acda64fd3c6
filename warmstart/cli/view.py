"""A read-only view of one ModelLineage: what the tree, graph and verify commands show.

The renderers take this flat view rather than the pydantic models, so a change to the API
types is absorbed here, in ``from_object``, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from warmstart.api import ModelLineage
from warmstart.api.constants import Metric, VersionPhase
from warmstart.cli.errors import CliError, NotFoundError

# Markers, in the order they are shown next to a version.
SERVING = "serving"
ROLLING_OUT = "rolling out"
PINNED = "pinned"
PREVIOUS = "previous"
LATEST = "latest"


@dataclass(frozen=True)
class VersionView:
    name: str
    parent: str | None
    phase: str
    uri: str
    manifest_digest: str | None
    metric_value: float | None
    reason: str | None = None
    # A cold start (random weights) has no parent; this is the version it was compared with.
    compared_with: str | None = None

    @property
    def cold_start(self) -> bool:
        return self.parent is None and self.compared_with is not None


@dataclass(frozen=True)
class LineageView:
    name: str
    namespace: str
    metric: str
    mode: str
    storage_uri: str
    secret_name: str
    versions: tuple[VersionView, ...]
    base_digest: str | None = None
    serving: str | None = None
    desired: str | None = None
    previous: str | None = None
    latest: str | None = None
    pinned: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(version.name for version in self.versions)

    def version(self, name: str) -> VersionView:
        for version in self.versions:
            if version.name == name:
                return version
        known = ", ".join(self.names) or "none"
        raise NotFoundError(
            f"ModelLineage {self.namespace}/{self.name} has no version {name!r} (recorded: {known})"
        )

    def children(self, name: str) -> tuple[VersionView, ...]:
        return tuple(version for version in self.versions if version.parent == name)

    def roots(self) -> tuple[VersionView, ...]:
        """Versions drawn at the top: the base, and any whose parent is not indexed (the
        status keeps only the newest versions, so an old parent may have dropped out)."""
        names = set(self.names)
        return tuple(v for v in self.versions if v.parent is None or v.parent not in names)

    @property
    def target(self) -> str | None:
        """The version the operator is bringing serving to: the pin wins over the last
        promoted version, unless the pinned one already failed its rollout (the operator
        does not retry it until the pin changes)."""
        if self.pinned:
            pinned = next((v for v in self.versions if v.name == self.pinned), None)
            if pinned is not None and pinned.phase not in ("RolledBack", "Retired"):
                return self.pinned
        return self.desired

    def markers(self, name: str) -> tuple[str, ...]:
        found = []
        if name == self.serving:
            found.append(SERVING)
        if name == self.target and self.target != self.serving:
            found.append(ROLLING_OUT)
        if name == self.pinned:
            found.append(PINNED)
        if name == self.previous:
            found.append(PREVIOUS)
        if name == self.latest:
            found.append(LATEST)
        return tuple(found)

    @property
    def metric_heading(self) -> str:
        """``accuracy (higher is better)``: how to read the numbers shown."""
        better = "lower" if self.mode == "Min" else "higher"
        return f"{self.metric} ({better} is better)"


def from_object(obj: Mapping[str, Any], namespace: str) -> LineageView:
    """The view of a ModelLineage object as the API server returned it."""
    name = str(obj.get("metadata", {}).get("name", "?"))
    try:
        lineage = ModelLineage.model_validate(obj)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise CliError(
            f"ModelLineage {namespace}/{name} cannot be read: {where}: {first['msg']}"
        ) from None
    spec, status = lineage.spec, lineage.status
    metric = Metric(spec.promotion.metric)
    versions = tuple(
        VersionView(
            name=version.name,
            parent=version.parent or None,
            phase=str(version.phase),
            uri=version.uri,
            manifest_digest=version.manifest_digest,
            metric_value=(
                getattr(version.metrics, metric.value) if version.metrics is not None else None
            ),
            reason=version.reason,
            compared_with=version.compared_with,
        )
        for version in (status.versions or [] if status else [])
    )
    return LineageView(
        name=name,
        namespace=namespace,
        metric=metric.value,
        mode=str(spec.promotion.effective_mode()),
        storage_uri=spec.storage.uri,
        secret_name=spec.storage.secret_ref.name,
        versions=versions,
        base_digest=spec.base.digest,
        serving=status.serving_version if status else None,
        desired=status.desired_version if status else None,
        previous=status.previous_version if status else None,
        latest=status.latest_version if status else None,
        pinned=spec.pinned_version,
    )


def format_metric(metric: str, value: float | None) -> str:
    """``accuracy 0.843``; loss gets more digits because small differences matter there."""
    if value is None:
        return f"{metric} -"
    digits = 4 if metric == Metric.LOSS else 3
    return f"{metric} {value:.{digits}f}"


def is_discarded(phase: str) -> bool:
    """Versions that failed the gate or a rollout: drawn apart from the healthy ones."""
    return phase in (VersionPhase.REJECTED, VersionPhase.ROLLED_BACK)
