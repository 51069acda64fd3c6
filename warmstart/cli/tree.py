"""`lineage tree`: the version tree as indented text, one aligned row per version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from warmstart.cli.view import LineageView, VersionView, format_metric

UNICODE_BRANCHES = ("├── ", "└── ", "│   ", "    ")
ASCII_BRANCHES = ("|-- ", "`-- ", "|   ", "    ")


@dataclass(frozen=True)
class _Row:
    label: str
    version: VersionView
    note: str


def render_tree(view: LineageView, *, ascii_only: bool = False) -> str:
    header = (
        f"ModelLineage {view.namespace}/{view.name}  metric: {view.metric_heading}  "
        f"pinned: {view.pinned or '-'}"
    )
    if not view.versions:
        return f"{header}\n(no versions recorded yet)\n"
    rows = list(_rows(view, ASCII_BRANCHES if ascii_only else UNICODE_BRANCHES))
    label_width = max(len(row.label) for row in rows)
    phase_width = max(len(row.version.phase) for row in rows)
    metric_cells = [format_metric(view.metric, row.version.metric_value) for row in rows]
    metric_width = max(len(cell) for cell in metric_cells)
    lines = [header]
    for row, metric_cell in zip(rows, metric_cells, strict=True):
        line = (
            f"{row.label:<{label_width}}  {row.version.phase:<{phase_width}}  "
            f"{metric_cell:<{metric_width}}  {row.note}"
        )
        lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def _rows(view: LineageView, branches: tuple[str, str, str, str]) -> Iterator[_Row]:
    tee, last_tee, pipe, blank = branches
    seen: set[str] = set()

    def walk(
        version: VersionView, prefix: str, connector: str, child_prefix: str
    ) -> Iterator[_Row]:
        seen.add(version.name)
        yield _Row(prefix + connector + version.name, version, _note(view, version))
        children = [c for c in view.children(version.name) if c.name not in seen]
        for index, child in enumerate(children):
            last = index == len(children) - 1
            yield from walk(
                child,
                prefix + child_prefix,
                last_tee if last else tee,
                blank if last else pipe,
            )

    for root in view.roots():
        yield from walk(root, "", "", "")
    # Versions whose parents form a cycle have no root; a corrupt index must still show them.
    for version in view.versions:
        if version.name not in seen:
            yield from walk(version, "", "", "")


def _note(view: LineageView, version: VersionView) -> str:
    parts = []
    markers = view.markers(version.name)
    if markers:
        parts.append(f"[{', '.join(markers)}]")
    if version.cold_start:
        parts.append(f"(cold start, compared with {version.compared_with})")
    if version.parent is not None and version.parent not in view.names:
        parts.append(f"(parent {version.parent} not indexed)")
    if version.reason:
        parts.append(version.reason)
    return "  ".join(parts)
