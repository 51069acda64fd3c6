"""A layered layout of a lineage forest: depth decides the row, leaves take consecutive
columns and each parent is centred over its children (a simple tidy-tree layout).

Lineages are trees (one parent per version), so this needs none of the crossing reduction a
general layered graph layout does, and it is small enough to own instead of requiring
Graphviz on the machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    row: int
    column: float


def tidy_layout(nodes: Sequence[str], parent_of: Mapping[str, str | None]) -> dict[str, Position]:
    """Rows and (fractional) columns for ``nodes``, in their given order among siblings.

    A node whose parent is absent from ``nodes`` is a root. Nodes caught in a parent cycle,
    which only a corrupt index could hold, are laid out as roots so none goes missing.
    """
    known = set(nodes)
    children: dict[str, list[str]] = {name: [] for name in nodes}
    for name in nodes:
        parent = parent_of.get(name)
        if parent is not None and parent in known:
            children[parent].append(name)
    placed: dict[str, Position] = {}
    next_leaf = 0.0

    def place(name: str, row: int) -> float:
        nonlocal next_leaf
        placed[name] = Position(row, 0.0)  # reserve: a cycle back to here is not followed
        columns = [place(child, row + 1) for child in children[name] if child not in placed]
        if columns:
            column = (columns[0] + columns[-1]) / 2
        else:
            column, next_leaf = next_leaf, next_leaf + 1
        placed[name] = Position(row, column)
        return column

    roots = [name for name in nodes if parent_of.get(name) not in known]
    for name in [*roots, *nodes]:
        if name not in placed:
            place(name, 0)
    return placed
