"""`promote` and `rollback` decisions and the patch they send."""

from __future__ import annotations

import pytest

from tests.cli.builders import sample_lineage
from warmstart.cli.errors import CliError, NotFoundError
from warmstart.cli.pinning import pin_patch, promotion_target, rollback_target


def test_promotion_target_is_the_named_recorded_version() -> None:
    assert promotion_target(sample_lineage().view(), "v1").name == "v1"


def test_a_rejected_version_cannot_be_promoted() -> None:
    with pytest.raises(CliError, match=r"promotion gate rejected it \(InsufficientImprovement\)"):
        promotion_target(sample_lineage().view(), "v3")


def test_a_retired_version_cannot_be_promoted() -> None:
    view = sample_lineage().version("v5", "v2", phase="Retired").view()

    with pytest.raises(CliError, match="Retired"):
        promotion_target(view, "v5")


def test_an_unknown_version_lists_the_recorded_ones() -> None:
    with pytest.raises(NotFoundError, match=r"no version 'v9' \(recorded: base, v1, v2, v3, v4\)"):
        promotion_target(sample_lineage().view(), "v9")


def test_rollback_targets_the_previous_version() -> None:
    assert rollback_target(sample_lineage().view()).name == "v1"


def test_rollback_without_a_previous_version_is_refused() -> None:
    view = sample_lineage().view()
    without_previous = type(view)(**{**view.__dict__, "previous": None})

    with pytest.raises(NotFoundError, match="no previousVersion"):
        rollback_target(without_previous)


def test_pin_patch_sets_only_pinned_version_guarded_by_resource_version() -> None:
    assert pin_patch("v1", "42") == {
        "spec": {"pinnedVersion": "v1"},
        "metadata": {"resourceVersion": "42"},
    }
    assert pin_patch("v1", None) == {"spec": {"pinnedVersion": "v1"}}
