"""`lineage graph --format svg`: the lineage drawn as SVG text, with no Graphviz needed.

Text widths are estimated from character counts (no font metrics on a bare machine), with a
generous per-character width so labels stay inside their boxes in common sans-serif fonts.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from warmstart.cli.layout import Position, tidy_layout
from warmstart.cli.palette import (
    EDGE_COLOUR,
    LEGEND,
    MISSING_PARENT_STYLE,
    NodeStyle,
    missing_parents,
    node_lines,
    node_style,
    title,
)
from warmstart.cli.view import LineageView, is_discarded

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
FONT_SIZE = 12
CHAR_WIDTH = 0.62 * FONT_SIZE  # wider than the average glyph: over-estimating is harmless
LINE_HEIGHT = 16
PADDING = 10
COLUMN_GAP = 28
ROW_GAP = 44
MARGIN = 20
TITLE_HEIGHT = 34
LEGEND_HEIGHT = 36
SWATCH = 14


@dataclass(frozen=True)
class _Node:
    name: str
    lines: tuple[str, ...]
    style: NodeStyle
    tooltip: str


def text_width(text: str, font_size: float = FONT_SIZE) -> float:
    return len(text) * CHAR_WIDTH * font_size / FONT_SIZE


def render_svg(view: LineageView) -> str:
    nodes = _nodes(view)
    parent_of = {v.name: v.parent for v in view.versions}
    positions = tidy_layout([node.name for node in nodes], parent_of)
    line_count = max((len(node.lines) for node in nodes), default=1)
    box_width = max((text_width(line) for n in nodes for line in n.lines), default=60)
    box_width += 2 * PADDING
    box_height = line_count * LINE_HEIGHT + 2 * PADDING
    columns = max((p.column for p in positions.values()), default=0) + 1
    rows = max((p.row for p in positions.values()), default=0) + 1
    heading = title(view)
    legend_width = sum(_legend_entry_width(name) for name, _ in LEGEND)
    graph_width = columns * box_width + (columns - 1) * COLUMN_GAP
    width = max(graph_width, text_width(heading, 14), legend_width) + 2 * MARGIN
    # A narrow lineage sits in the middle of a canvas widened by its title or legend.
    graph_left = MARGIN + (width - 2 * MARGIN - graph_width) / 2
    graph_top = MARGIN + TITLE_HEIGHT
    graph_height = rows * box_height + (rows - 1) * ROW_GAP if nodes else LINE_HEIGHT
    height = graph_top + graph_height + LEGEND_HEIGHT + 2 * MARGIN

    def box_origin(position: Position) -> tuple[float, float]:
        x = graph_left + position.column * (box_width + COLUMN_GAP)
        return x, graph_top + position.row * (box_height + ROW_GAP)

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family={quoteattr(FONT)} '
        f'font-size="{FONT_SIZE}">',
        f"<title>{escape(heading)}</title>",
        "<defs>",
        f'<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" '
        f'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{EDGE_COLOUR}"/></marker>',
        "</defs>",
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="{MARGIN + 18}" font-size="14" font-weight="bold" '
        f'fill="#1f2328">{escape(heading)}</text>',
    ]
    if not nodes:
        out.append(
            f'<text x="{MARGIN}" y="{graph_top + 12}" fill="#57606a">'
            "no versions recorded yet</text>"
        )
    for version in view.versions:
        if version.parent is None or version.parent not in positions:
            continue
        px, py = box_origin(positions[version.parent])
        cx, cy = box_origin(positions[version.name])
        start = (px + box_width / 2, py + box_height)
        end = (cx + box_width / 2, cy)
        middle = (start[1] + end[1]) / 2
        dash = ' stroke-dasharray="6 4"' if is_discarded(version.phase) else ""
        out.append(
            f'<path class="edge" data-from={quoteattr(version.parent)} '
            f'data-to={quoteattr(version.name)} d="M{start[0]:.1f},{start[1]:.1f} '
            f"C{start[0]:.1f},{middle:.1f} {end[0]:.1f},{middle:.1f} "
            f'{end[0]:.1f},{end[1] - 1:.1f}" fill="none" stroke="{EDGE_COLOUR}" '
            f'stroke-width="1.5"{dash} marker-end="url(#arrow)"/>'
        )
    for node in nodes:
        x, y = box_origin(positions[node.name])
        out.append(_node_svg(node, x, y, box_width, box_height))
    out.extend(_legend_svg(MARGIN, graph_top + graph_height + MARGIN + 8))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _nodes(view: LineageView) -> list[_Node]:
    nodes = [
        _Node(
            version.name,
            node_lines(view, version),
            node_style(view, version),
            f"{version.uri}\n{version.manifest_digest or 'no manifest digest'}",
        )
        for version in view.versions
    ]
    nodes.extend(
        _Node(name, (name, "not indexed"), MISSING_PARENT_STYLE, "parent outside the status")
        for name in missing_parents(view)
    )
    return nodes


def _stroke(style: NodeStyle) -> str:
    dash = ' stroke-dasharray="6 4"' if style.dashed else ""
    return f'stroke="{style.stroke}" stroke-width="{style.stroke_width:g}"{dash}'


def _node_svg(node: _Node, x: float, y: float, width: float, height: float) -> str:
    parts = [
        f'<g class="node {node.style.css_class}" data-version={quoteattr(node.name)}>',
        f"<title>{escape(node.tooltip)}</title>",
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" rx="8" '
        f'fill="{node.style.fill}" {_stroke(node.style)}/>',
    ]
    centre = x + width / 2
    for index, line in enumerate(node.lines):
        baseline = y + PADDING + (index + 1) * LINE_HEIGHT - 4
        weight = ' font-weight="bold"' if index == 0 else ""
        parts.append(
            f'<text x="{centre:.1f}" y="{baseline:.1f}" text-anchor="middle" '
            f'fill="{node.style.text}"{weight}>{escape(line)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _legend_entry_width(name: str) -> float:
    return SWATCH + 6 + text_width(name) + 18


def _legend_svg(x: float, y: float) -> list[str]:
    parts = ['<g class="legend">']
    for name, style in LEGEND:
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{SWATCH}" height="{SWATCH}" rx="3" '
            f'fill="{style.fill}" {_stroke(style)}/>'
        )
        parts.append(
            f'<text x="{x + SWATCH + 6:.1f}" y="{y + SWATCH - 2:.1f}" fill="#1f2328">'
            f"{escape(name)}</text>"
        )
        x += _legend_entry_width(name)
    parts.append("</g>")
    return parts
