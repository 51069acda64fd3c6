"""`lineage graph --format mermaid|dot`: the lineage as text for other tools to draw.

Node ids are positional (``v0``, ``v1``...) rather than version names, so no version name can
collide with a keyword or the edge syntax of either language.
"""

from __future__ import annotations

from warmstart.cli.palette import (
    EDGE_COLOUR,
    MISSING_PARENT_STYLE,
    NodeStyle,
    missing_parents,
    node_lines,
    node_style,
    title,
)
from warmstart.cli.view import LineageView, is_discarded


def _node_ids(view: LineageView) -> dict[str, str]:
    names = [*view.names, *missing_parents(view)]
    return {name: f"v{index}" for index, name in enumerate(names)}


# --- mermaid ---------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    # Mermaid's entity codes; '#' first so the codes themselves are not re-escaped.
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return text


def _mermaid_class(style: NodeStyle) -> str:
    parts = [
        f"fill:{style.fill}",
        f"stroke:{style.stroke}",
        f"color:{style.text}",
        f"stroke-width:{style.stroke_width:g}px",
    ]
    if style.dashed:
        parts.append("stroke-dasharray:5 5")
    return f"    classDef {style.css_class} {','.join(parts)}"


def render_mermaid(view: LineageView) -> str:
    ids = _node_ids(view)
    lines = [f"%% {_mermaid_text(title(view))}", "flowchart TD"]
    styles: dict[str, NodeStyle] = {}
    members: dict[str, list[str]] = {}
    for version in view.versions:
        label = "<br/>".join(_mermaid_text(line) for line in node_lines(view, version))
        lines.append(f'    {ids[version.name]}["{label}"]')
        style = node_style(view, version)
        styles[style.css_class] = style
        members.setdefault(style.css_class, []).append(ids[version.name])
    for parent in missing_parents(view):
        lines.append(f'    {ids[parent]}["{_mermaid_text(parent)}<br/>not indexed"]')
        styles[MISSING_PARENT_STYLE.css_class] = MISSING_PARENT_STYLE
        members.setdefault(MISSING_PARENT_STYLE.css_class, []).append(ids[parent])
    for version in view.versions:
        if version.parent is not None:
            arrow = "-.->" if is_discarded(version.phase) else "-->"
            lines.append(f"    {ids[version.parent]} {arrow} {ids[version.name]}")
        elif version.cold_start and version.compared_with in ids:
            # Not a parent: a dotted, arrowless link to the version it was compared with.
            lines.append(f"    {ids[version.compared_with]} -. compared with .- "
                         f"{ids[version.name]}")
    for css_class, style in styles.items():
        lines.append(_mermaid_class(style))
        lines.append(f"    class {','.join(members[css_class])} {css_class}")
    return "\n".join(lines) + "\n"


# --- dot -------------------------------------------------------------------------------------


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_label(lines: tuple[str, ...]) -> str:
    # "\n" inside a DOT string is a centred line break; escape each line before joining.
    return '"' + "\\n".join(_dot_string(line)[1:-1] for line in lines) + '"'


def _dot_node_attributes(style: NodeStyle) -> str:
    node_style = "rounded,filled,dashed" if style.dashed else "rounded,filled"
    return (
        f'style="{node_style}", fillcolor="{style.fill}", color="{style.stroke}", '
        f'fontcolor="{style.text}", penwidth={style.stroke_width:g}'
    )


def render_dot(view: LineageView) -> str:
    ids = _node_ids(view)
    lines = [
        f"digraph {_dot_string(view.name)} {{",
        f"    graph [rankdir=TB, labelloc=t, fontname=Helvetica, "
        f"label={_dot_string(title(view))}];",
        "    node [shape=box, fontname=Helvetica, fontsize=11];",
        f'    edge [color="{EDGE_COLOUR}"];',
    ]
    for version in view.versions:
        attributes = _dot_node_attributes(node_style(view, version))
        tooltip = _dot_string(f"{version.uri} {version.manifest_digest or ''}".strip())
        lines.append(
            f"    {ids[version.name]} [label={_dot_label(node_lines(view, version))}, "
            f"tooltip={tooltip}, {attributes}];"
        )
    for parent in missing_parents(view):
        attributes = _dot_node_attributes(MISSING_PARENT_STYLE)
        label = _dot_label((parent, "not indexed"))
        lines.append(f"    {ids[parent]} [label={label}, {attributes}];")
    for version in view.versions:
        if version.parent is not None:
            edge_style = " [style=dashed]" if is_discarded(version.phase) else ""
            lines.append(f"    {ids[version.parent]} -> {ids[version.name]}{edge_style};")
        elif version.cold_start and version.compared_with in ids:
            lines.append(f"    {ids[version.compared_with]} -> {ids[version.name]} "
                         '[style=dotted, arrowhead=none, label="compared with"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
