"""`lineage tree` rendering and the view it is drawn from."""

from __future__ import annotations

import pytest

from tests.cli.builders import make_lineage, sample_lineage
from warmstart.cli.errors import CliError
from warmstart.cli.tree import render_tree
from warmstart.cli.view import from_object


def test_sample_lineage_renders_as_an_aligned_tree() -> None:
    assert render_tree(sample_lineage().view()) == (
        "ModelLineage team-a/reviews  metric: accuracy (higher is better)  pinned: v2\n"
        "base            Promoted    accuracy 0.712\n"
        "└── v1          Promoted    accuracy 0.801  [previous]\n"
        "    ├── v2      Promoted    accuracy 0.843  [serving, pinned]\n"
        "    │   └── v4  RolledBack  accuracy 0.861  [latest]  RolloutTimedOut\n"
        "    └── v3      Rejected    accuracy 0.790  InsufficientImprovement\n"
    )


def test_ascii_tree_uses_no_box_drawing_characters() -> None:
    text = render_tree(sample_lineage().view(), ascii_only=True)

    text.encode("ascii")
    assert "    |-- v2" in text and "    |   `-- v4" in text


def test_loss_lineage_shows_loss_with_more_digits_and_min_mode() -> None:
    view = make_lineage().metric("loss").version("base", loss=0.41234).view()

    text = render_tree(view)

    assert "metric: loss (lower is better)" in text
    assert "loss 0.4123" in text


def test_missing_metric_and_unindexed_parent_are_shown() -> None:
    view = make_lineage().version("v7", "v6").version("v8", "v7").view()

    lines = render_tree(view).splitlines()

    assert lines[1].split() == [
        "v7",
        "Promoted",
        "accuracy",
        "-",
        "(parent",
        "v6",
        "not",
        "indexed)",
    ]
    assert lines[2].startswith("└── v8")


def test_versions_in_a_parent_cycle_are_still_listed() -> None:
    view = make_lineage().version("a", "b").version("b", "a").view()

    text = render_tree(view)

    assert "a " in text and "└── b" in text


def test_rolling_out_marker_when_desired_differs_from_serving() -> None:
    view = make_lineage().version("base").version("v1", "base").serving("base").desired("v1").view()

    assert "[rolling out, latest]" in render_tree(view)


def test_a_pin_decides_what_is_rolling_out() -> None:
    # Pinned back to v1 and serving it: the newer promoted v2 is not "rolling out".
    pinned_back = (make_lineage().version("base").version("v1", "base").version("v2", "v1")
                   .serving("v1").desired("v2").pinned("v1").view())
    assert pinned_back.markers("v2") == ("latest",)
    assert pinned_back.markers("v1") == ("serving", "pinned")
    # Pinned to v1 while v2 still serves: v1 is on its way.
    assert "rolling out" in (make_lineage().version("base").version("v1", "base")
                             .version("v2", "v1").serving("v2").desired("v2").pinned("v1")
                             .view().markers("v1"))
    # A pin whose rollout failed is not retried: nothing is rolling out.
    failed_pin = (make_lineage().version("base").version("v1", "base", phase="RolledBack")
                  .serving("base").desired("base").pinned("v1").view())
    assert "rolling out" not in failed_pin.markers("v1") + failed_pin.markers("base")


def test_empty_lineage_says_so() -> None:
    text = render_tree(make_lineage().view())

    assert text.endswith("(no versions recorded yet)\n")


def test_an_object_the_api_types_refuse_is_a_one_line_error() -> None:
    obj = make_lineage().version("base").obj()
    obj["status"]["versions"][0]["phase"] = "Exploded"

    with pytest.raises(
        CliError, match=r"team-a/reviews cannot be read: status\.versions\.0\.phase"
    ):
        from_object(obj, "team-a")
