"""`lineage graph`: mermaid, dot and svg renderings of the same lineage."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cli.builders import make_lineage, sample_lineage
from warmstart.cli.png import png_size, write_png
from warmstart.cli.svg import render_svg, text_width
from warmstart.cli.textgraph import render_dot, render_mermaid
from warmstart.cli.view import LineageView

SVG = "{http://www.w3.org/2000/svg}"


def _with_oddities() -> LineageView:
    """The sample, plus a version whose parent dropped out of the index and a name and
    reason holding every character the three formats must escape."""
    return (
        sample_lineage()
        .version("v9", "gone", phase="Candidate", accuracy=0.5)
        .version('q"<&>#;\\', "v9", phase="Rejected", reason='say "no" <now>')
        .view()
    )


# --- mermaid ---------------------------------------------------------------------------------


def test_mermaid_has_a_node_per_version_with_its_metric_and_an_edge_per_parent() -> None:
    text = render_mermaid(sample_lineage().view())

    assert text.splitlines()[1] == "flowchart TD"
    assert '    v2["v2<br/>accuracy 0.843<br/>Promoted · serving, pinned"]' in text
    edges = re.findall(r"^    (v\d) (-->|-\.->) (v\d)$", text, re.MULTILINE)
    assert edges == [
        ("v0", "-->", "v1"),
        ("v1", "-->", "v2"),
        ("v1", "-.->", "v3"),
        ("v2", "-.->", "v4"),
    ]


def test_mermaid_highlights_serving_and_styles_discarded_versions_apart() -> None:
    text = render_mermaid(sample_lineage().view())

    assert "    class v2 serving" in text
    assert "    class v3 rejected" in text and "    class v4 rolledback" in text
    assert re.search(r"classDef serving .*stroke-width:3\.5px", text)
    assert re.search(r"classDef rejected .*stroke-dasharray", text)


def test_mermaid_escapes_label_text_and_draws_unindexed_parents() -> None:
    text = render_mermaid(_with_oddities())

    assert 'v7["gone<br/>not indexed"]' in text
    assert "q#quot;#lt;&#gt;#35;;\\" in text
    # Every label is one quoted string: no raw quote inside.
    for line in text.splitlines():
        if '["' in line:
            assert line.count('"') == 2, line


# --- dot -------------------------------------------------------------------------------------


def test_dot_nodes_edges_and_styles() -> None:
    text = render_dot(sample_lineage().view())

    assert text.startswith('digraph "reviews" {')
    assert 'v2 [label="v2\\naccuracy 0.843\\nPromoted · serving, pinned"' in text
    assert re.search(r'v2 \[.*fillcolor="#dafbe1".*penwidth=3\.5\];', text)
    assert re.search(r'v3 \[.*style="rounded,filled,dashed"', text)
    assert "    v1 -> v3 [style=dashed];" in text and "    v0 -> v1;" in text


def test_dot_escapes_quotes_and_backslashes() -> None:
    text = render_dot(_with_oddities())

    assert 'label="q\\"<&>#;\\\\\\naccuracy -\\nRejected · latest"' in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_dot_output(tmp_path: Path) -> None:
    result = subprocess.run(
        ["dot", "-Tsvg"],
        input=render_dot(_with_oddities()),
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.count('class="node"') == 8


# --- svg -------------------------------------------------------------------------------------


def _boxes(root: ET.Element) -> dict[str, tuple[ET.Element, ET.Element]]:
    found = {}
    for group in root.iter(f"{SVG}g"):
        if "node" in group.get("class", "").split():
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            found[group.get("data-version", "")] = (group, rect)
    return found


def test_svg_is_well_formed_with_a_box_per_version_and_an_edge_per_parent() -> None:
    root = ET.fromstring(render_svg(sample_lineage().view()))

    boxes = _boxes(root)
    assert sorted(boxes) == ["base", "v1", "v2", "v3", "v4"]
    edges = [
        (p.get("data-from"), p.get("data-to"))
        for p in root.iter(f"{SVG}path")
        if p.get("class") == "edge"
    ]
    assert edges == [("base", "v1"), ("v1", "v2"), ("v1", "v3"), ("v2", "v4")]
    texts = ["".join(t.itertext()) for t in boxes["v2"][0].iter(f"{SVG}text")]
    assert texts == ["v2", "accuracy 0.843", "Promoted · serving, pinned"]


def test_svg_highlights_serving_and_dashes_discarded_versions() -> None:
    boxes = _boxes(ET.fromstring(render_svg(sample_lineage().view())))

    serving = boxes["v2"][1]
    assert "serving" in boxes["v2"][0].get("class", "")
    assert float(serving.get("stroke-width", "0")) > float(boxes["v1"][1].get("stroke-width", "0"))
    assert boxes["v3"][1].get("stroke-dasharray") and boxes["v4"][1].get("stroke-dasharray")
    assert boxes["v1"][1].get("stroke-dasharray") is None


def test_svg_boxes_do_not_overlap_and_children_sit_below_parents() -> None:
    view = _with_oddities()
    boxes = {
        name: _rect(rect) for name, (_, rect) in _boxes(ET.fromstring(render_svg(view))).items()
    }

    names = sorted(boxes)
    for index, a in enumerate(names):
        for b in names[index + 1 :]:
            assert not _overlap(boxes[a], boxes[b]), (a, b)
    for version in view.versions:
        if version.parent is not None:
            assert boxes[version.name][1] > boxes[version.parent][1] + boxes[version.parent][3]


def test_svg_boxes_are_wide_enough_for_their_text() -> None:
    root = ET.fromstring(render_svg(_with_oddities()))

    for group, rect in _boxes(root).values():
        for text in group.iter(f"{SVG}text"):
            assert text_width("".join(text.itertext())) <= float(rect.get("width", "0"))


def test_svg_of_an_empty_lineage_says_so() -> None:
    svg = render_svg(make_lineage().view())

    assert "no versions recorded yet" in svg
    ET.fromstring(svg)


def test_the_svg_renders_as_a_png_that_is_not_blank(tmp_path: Path) -> None:
    svg = render_svg(_with_oddities())
    root = ET.fromstring(svg)

    data = write_png(svg, tmp_path / "lineage.png").read_bytes()

    assert png_size(data) == (round(float(root.get("width", "0"))),
                              round(float(root.get("height", "0"))))
    # Boxes, edges and text drawn: a blank canvas compresses to far less.
    assert len(data) > 5000


def _rect(rect: ET.Element) -> tuple[float, float, float, float]:
    x, y, width, height = (float(rect.get(key, "0")) for key in ("x", "y", "width", "height"))
    return x, y, width, height


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
