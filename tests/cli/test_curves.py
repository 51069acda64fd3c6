"""`lineage curves`: the chart drawn from the curves the manifests store."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from warmstart.cli.curves import render_curves_svg, series_of, write_chart
from warmstart.cli.main import build_parser
from warmstart.cli.png import png_size
from warmstart.manifestschema import Evaluation

SVG = "{http://www.w3.org/2000/svg}"


def _curve(rate: float, losses: list[float], *, chosen: bool) -> dict[str, Any]:
    points = [{"step": 10 * (i + 1), "validationLoss": loss, "accuracy": 1 - loss / 2}
              for i, loss in enumerate(losses)]
    best = min(points, key=lambda p: p["validationLoss"])
    return {"learningRate": rate, "chosen": chosen, "bestStep": best["step"],
            "bestValidationLoss": best["validationLoss"], "points": points}


def _evaluation(*curves: dict[str, Any], majority: bool = False) -> Evaluation:
    doc: dict[str, Any] = {"curves": list(curves)}
    if majority:
        doc["majorityClass"] = {"flagged": True, "label": "positive", "share": 1.0}
    return Evaluation.model_validate(doc)


def test_two_versions_draw_a_line_each_per_panel_and_sweeps_show_every_run() -> None:
    warm = series_of("v2", _evaluation(_curve(5e-5, [0.5, 0.4, 0.45], chosen=True)),
                     cold_start=False)
    cold = series_of("v2-cold", _evaluation(_curve(5e-5, [0.7, 0.69, 0.69], chosen=False),
                                            _curve(2e-4, [0.7, 0.6, 0.55], chosen=True)),
                     cold_start=True)
    root = ET.fromstring(render_curves_svg([warm, cold], title="reviews: v2 vs v2-cold"))
    lines = root.findall(f"{SVG}polyline")
    # loss and accuracy panels: 1 warm curve + 2 cold curves each
    assert len(lines) == 6
    dashed = [line for line in lines if line.get("stroke-dasharray")]
    assert len(dashed) == 2  # the sweep's run not kept, in both panels
    # the best point of each kept run is marked, in both panels
    assert len(root.findall(f"{SVG}circle")) == 4
    text = " ".join("".join(el.itertext()) for el in root.iter(f"{SVG}text"))
    assert "v2 (warm start)" in text and "v2-cold (cold start)" in text
    assert "sweep 5e-05, 0.0002: kept 0.0002" in text


def test_a_majority_class_version_carries_a_warning_in_the_legend() -> None:
    cold = series_of("c", _evaluation(_curve(1e-4, [0.69, 0.69], chosen=True), majority=True),
                     cold_start=True)
    assert cold.note.startswith("predicts 'positive' for 100%")
    svg = render_curves_svg([cold], title="t")
    assert "WARNING: predicts &apos;positive&apos;" in svg or "WARNING: predicts 'positive'" in svg


def test_versions_without_curves_are_an_error() -> None:
    with pytest.raises(ValueError, match="no version has a learning curve"):
        render_curves_svg([series_of("old", Evaluation(), cold_start=None)], title="t")


def test_chart_is_written_as_svg_and_a_png_of_its_size(tmp_path: Path) -> None:
    svg = render_curves_svg(
        [series_of("v", _evaluation(_curve(1e-4, [0.6, 0.5], chosen=True)), cold_start=False)],
        title="t")
    written = write_chart(svg, tmp_path / "out" / "chart.png")
    assert written == [tmp_path / "out" / "chart.svg", tmp_path / "out" / "chart.png"]
    root = ET.parse(written[0]).getroot()
    assert root.tag == f"{SVG}svg"
    assert png_size(written[1].read_bytes()) == (int(root.get("width", "0")),
                                                 int(root.get("height", "0")))


def test_the_command_line_takes_a_lineage_and_versions() -> None:
    args = build_parser("warmstart").parse_args(
        ["lineage", "curves", "reviews", "v2", "v2-cold", "-o", "c.svg", "-n", "team-a"])
    assert (args.action, args.name, args.versions, args.output) == (
        "curves", "reviews", ["v2", "v2-cold"], Path("c.svg"))
