"""`promote` and `rollback`: decide which version to pin and build the spec patch.

Both only set spec.pinnedVersion; the operator does the rollout. That keeps the CLI a
convenience: a GitOps user makes the same change by committing the field.
"""

from __future__ import annotations

from typing import Any

from warmstart.api.constants import VersionPhase
from warmstart.cli.errors import CliError, NotFoundError
from warmstart.cli.view import LineageView, VersionView


def promotion_target(view: LineageView, name: str) -> VersionView:
    version = view.version(name)
    if version.phase == VersionPhase.REJECTED:
        reason = f" ({version.reason})" if version.reason else ""
        raise CliError(f"refusing to promote {name}: the promotion gate rejected it{reason}")
    if version.phase == VersionPhase.RETIRED:
        raise CliError(f"refusing to promote {name}: it is Retired and retention deleted its files")
    return version


def rollback_target(view: LineageView) -> VersionView:
    if view.previous is None:
        raise NotFoundError(
            f"ModelLineage {view.namespace}/{view.name} has no previousVersion to roll back to"
        )
    return promotion_target(view, view.previous)


def pin_patch(version: str, resource_version: str | None) -> dict[str, Any]:
    """A JSON merge patch setting spec.pinnedVersion.

    With ``resource_version`` the API server applies it only if the object is unchanged
    since it was read, so the checks made on that read still hold when it is written.
    """
    patch: dict[str, Any] = {"spec": {"pinnedVersion": version}}
    if resource_version:
        patch["metadata"] = {"resourceVersion": resource_version}
    return patch
