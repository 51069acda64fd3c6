"""How each version is drawn, shared by the mermaid, dot and svg renderers so the three
pictures agree: the serving version stands out, discarded versions look discarded."""

from __future__ import annotations

from dataclasses import dataclass

from warmstart.api.constants import VersionPhase
from warmstart.cli.view import LineageView, VersionView, format_metric

# GitHub Primer colours: readable in light themes and for the common colour-vision types,
# because the distinction is also carried by line style and width, not by hue alone.
EDGE_COLOUR = "#57606a"


@dataclass(frozen=True)
class NodeStyle:
    css_class: str
    fill: str
    stroke: str
    text: str
    stroke_width: float = 1.5
    dashed: bool = False


SERVING_STYLE = NodeStyle("serving", "#dafbe1", "#1a7f37", "#0b3d16", stroke_width=3.5)
PHASE_STYLES = {
    VersionPhase.PROMOTED: NodeStyle("promoted", "#ffffff", "#57606a", "#1f2328"),
    VersionPhase.CANDIDATE: NodeStyle("candidate", "#ddf4ff", "#0969da", "#0a3069"),
    VersionPhase.REJECTED: NodeStyle("rejected", "#ffebe9", "#cf222e", "#82071e", dashed=True),
    VersionPhase.ROLLED_BACK: NodeStyle("rolledback", "#fff1e5", "#bc4c00", "#762c00", dashed=True),
    VersionPhase.RETIRED: NodeStyle("retired", "#f6f8fa", "#8c959f", "#57606a"),
}
UNKNOWN_PHASE_STYLE = PHASE_STYLES[VersionPhase.PROMOTED]
# A parent named by a version but no longer in the (bounded) status index.
MISSING_PARENT_STYLE = NodeStyle("missing", "#ffffff", "#8c959f", "#57606a", dashed=True)

LEGEND = (
    ("serving", SERVING_STYLE),
    ("promoted", PHASE_STYLES[VersionPhase.PROMOTED]),
    ("candidate", PHASE_STYLES[VersionPhase.CANDIDATE]),
    ("rejected", PHASE_STYLES[VersionPhase.REJECTED]),
    ("rolled back", PHASE_STYLES[VersionPhase.ROLLED_BACK]),
    ("retired", PHASE_STYLES[VersionPhase.RETIRED]),
)


def node_style(view: LineageView, version: VersionView) -> NodeStyle:
    if version.name == view.serving:
        return SERVING_STYLE
    try:
        return PHASE_STYLES[VersionPhase(version.phase)]
    except ValueError:  # a phase added to the API after this CLI was built
        return UNKNOWN_PHASE_STYLE


def node_lines(view: LineageView, version: VersionView) -> tuple[str, ...]:
    """The text of a node: name, metric value, phase and markers."""
    status = version.phase
    markers = view.markers(version.name)
    if markers:
        status += " · " + ", ".join(markers)
    lines: tuple[str, ...] = (
        version.name, format_metric(view.metric, version.metric_value), status)
    if version.cold_start:
        lines += (f"cold start · vs {version.compared_with}",)
    return lines


def missing_parents(view: LineageView) -> tuple[str, ...]:
    names = set(view.names)
    found = {v.parent for v in view.versions if v.parent is not None and v.parent not in names}
    return tuple(sorted(found))


def title(view: LineageView) -> str:
    return f"ModelLineage {view.namespace}/{view.name}: {view.metric_heading}"
