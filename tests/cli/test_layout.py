"""The layered tree layout behind the SVG graph."""

from __future__ import annotations

from warmstart.cli.layout import Position, tidy_layout


def test_parents_are_centred_over_their_children_and_rows_follow_depth() -> None:
    parents: dict[str, str | None] = {"base": None, "v1": "base", "v2": "v1", "v3": "v1"}

    placed = tidy_layout(list(parents), parents)

    assert placed == {
        "base": Position(0, 0.5),
        "v1": Position(1, 0.5),
        "v2": Position(2, 0.0),
        "v3": Position(2, 1.0),
    }


def test_separate_roots_never_share_a_column() -> None:
    parents: dict[str, str | None] = {"a": None, "a1": "a", "a2": "a", "b": None, "b1": "b"}

    placed = tidy_layout(list(parents), parents)

    cells = [(p.row, p.column) for p in placed.values()]
    assert len(set(cells)) == len(cells)
    assert placed["b"].column > placed["a2"].column


def test_parent_outside_the_nodes_makes_a_root_and_cycles_terminate() -> None:
    parents: dict[str, str | None] = {"v7": "gone", "x": "y", "y": "x"}

    placed = tidy_layout(list(parents), parents)

    assert set(placed) == {"v7", "x", "y"}
    assert placed["v7"].row == 0
    assert {placed["x"].row, placed["y"].row} == {0, 1}
