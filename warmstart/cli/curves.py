"""`lineage curves`: validation loss and accuracy against training steps, for two or more
versions on one chart, drawn as SVG text from the curves their manifests store.

Two panels side by side (loss left, accuracy right) sharing the step axis; one colour per
version, the chosen run of a sweep drawn solid and the other runs dashed and thin, so a
reader sees what the sweep tried. No plotting library: the same hand-written SVG as
`lineage graph --format svg`, with a PNG beside it (``png.write_png``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from warmstart.cli.png import write_png
from warmstart.manifestschema import Curve, Evaluation

FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
# Primer colours distinguishable for common colour-vision types; dashes carry the rest.
COLOURS = ("#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00")
PANEL_WIDTH, PANEL_HEIGHT = 360, 240
MARGIN_LEFT, MARGIN_TOP, GAP, MARGIN_BOTTOM = 56, 44, 72, 40
TICKS = 5


@dataclass(frozen=True)
class Series:
    """One version's curves: ``label`` names it in the legend (e.g. "v2 (warm)")."""

    label: str
    curves: tuple[Curve, ...]
    note: str = ""  # e.g. "predicts one class"


def series_of(label: str, evaluation: Evaluation, *, cold_start: bool | None) -> Series:
    kind = " (cold start)" if cold_start else " (warm start)" if cold_start is False else ""
    majority = evaluation.majority_class
    note = ""
    if majority is not None and majority.flagged:
        note = f"predicts {majority.label!r} for {100 * (majority.share or 1):.0f}% of holdout"
    return Series(label + kind, tuple(evaluation.curves), note)


def _ticks(low: float, high: float) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
               default=raw)
    start = math.floor(low / step + 1e-9) * step
    return [start + i * step for i in range(math.ceil((high - start) / step) + 1)]


def _fmt(value: float, ticks: Sequence[float]) -> str:
    """``value`` with as many decimals as the axis' tick step needs, the same on every tick."""
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = 0
    while decimals < 6 and abs(step * 10**decimals - round(step * 10**decimals)) > 1e-9:
        decimals += 1
    return f"{value:.{decimals}f}"


def render_curves_svg(series: Sequence[Series], *, title: str) -> str:
    """The chart; raises ValueError when no series has a curve to draw."""
    points = [p for s in series for c in s.curves for p in c.points]
    if not points:
        raise ValueError("no version has a learning curve recorded (older trainers kept none)")
    max_step = max(p.step for p in points)
    panels = (
        ("validation loss", [p.validation_loss for p in points], "validation_loss"),
        ("validation accuracy", [p.accuracy for p in points if p.accuracy is not None],
         "accuracy"),
    )
    legend_rows = len(series)
    width = MARGIN_LEFT + 2 * PANEL_WIDTH + GAP + 24
    height = MARGIN_TOP + PANEL_HEIGHT + MARGIN_BOTTOM + 22 * legend_rows + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{MARGIN_LEFT}" y="24" font-size="15" font-weight="bold">'
        f"{escape(title)}</text>",
    ]
    x_ticks = _ticks(0, max_step)
    for index, (name, values, attr) in enumerate(panels):
        left = MARGIN_LEFT + index * (PANEL_WIDTH + GAP)
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        y_ticks = _ticks(low, high)
        y_low, y_high = y_ticks[0], y_ticks[-1]
        x_high = x_ticks[-1] or 1

        def sx(step: float, left: float = left, x_high: float = x_high) -> float:
            return left + PANEL_WIDTH * step / x_high

        def sy(value: float, y_low: float = y_low, y_high: float = y_high) -> float:
            span = (y_high - y_low) or 1.0
            return MARGIN_TOP + PANEL_HEIGHT * (1 - (value - y_low) / span)

        out.append(f'<rect x="{left}" y="{MARGIN_TOP}" width="{PANEL_WIDTH}" '
                   f'height="{PANEL_HEIGHT}" fill="none" stroke="#d0d7de"/>')
        for tick in y_ticks:
            y = sy(tick)
            out.append(f'<line x1="{left}" x2="{left + PANEL_WIDTH}" y1="{y:.1f}" y2="{y:.1f}" '
                       'stroke="#eaeef2"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
                       f'fill="#57606a">{_fmt(tick, y_ticks)}</text>')
        for tick in x_ticks:
            x = sx(tick)
            out.append(f'<text x="{x:.1f}" y="{MARGIN_TOP + PANEL_HEIGHT + 16}" '
                       f'text-anchor="middle" fill="#57606a">{_fmt(tick, x_ticks)}</text>')
        out.append(f'<text x="{left + PANEL_WIDTH / 2}" y="{MARGIN_TOP - 8}" '
                   f'text-anchor="middle" font-weight="bold">{name}</text>')
        out.append(f'<text x="{left + PANEL_WIDTH / 2}" '
                   f'y="{MARGIN_TOP + PANEL_HEIGHT + 32}" text-anchor="middle" '
                   'fill="#57606a">training step</text>')
        for colour_index, one in enumerate(series):
            colour = COLOURS[colour_index % len(COLOURS)]
            for curve in one.curves:
                xy = [(sx(p.step), sy(v)) for p in curve.points
                      if (v := getattr(p, attr)) is not None]
                if not xy:
                    continue
                chosen = curve.chosen is not False
                style = ('stroke-width="2.5"' if chosen
                         else 'stroke-width="1.2" stroke-dasharray="5 4" opacity="0.7"')
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
                rate = f"learning rate {curve.learning_rate:g}" if curve.learning_rate else ""
                out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" {style}>'
                           f"<title>{escape(one.label)} {rate}</title></polyline>")
                if chosen and curve.best_step is not None:
                    best = [p for p in curve.points if p.step == curve.best_step]
                    value = getattr(best[0], attr) if best else None
                    if value is not None:
                        out.append(f'<circle cx="{sx(curve.best_step):.1f}" '
                                   f'cy="{sy(value):.1f}" r="4" fill="{colour}"/>')
    top = MARGIN_TOP + PANEL_HEIGHT + MARGIN_BOTTOM + 8
    for index, one in enumerate(series):
        colour = COLOURS[index % len(COLOURS)]
        y = top + 22 * index
        rates = [c.learning_rate for c in one.curves if c.learning_rate]
        kept = [c.learning_rate for c in one.curves if c.chosen and c.learning_rate]
        detail = ""
        if len(rates) > 1 and kept:
            detail = f"  sweep {', '.join(f'{r:g}' for r in rates)}: kept {kept[0]:g} (solid)"
        elif kept:
            detail = f"  learning rate {kept[0]:g}"
        warning = f"  WARNING: {one.note}" if one.note else ""
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + 24}" y1="{y}" y2="{y}" '
                   f'stroke="{colour}" stroke-width="2.5"/>')
        # Spaces kept as written: renderers may drop the ones between text and the tspan.
        out.append(f'<text x="{MARGIN_LEFT + 32}" y="{y + 4}" xml:space="preserve">'
                   f'{escape(one.label + detail)}'
                   f'<tspan fill="#cf222e">{escape(warning)}</tspan></text>')
    out.append(f'<text x="{width - 12}" y="{top + 22 * legend_rows - 4}" text-anchor="end" '
               'fill="#57606a">dot: best validation loss (the weights kept)</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_chart(svg: str, out: Path) -> list[Path]:
    """Write ``out`` as SVG (any suffix but .png) and a PNG beside it; returns both paths."""
    svg_path = out.with_suffix(".svg") if out.suffix.lower() == ".png" else out
    svg_path.parent.mkdir(parents=True, exist_ok=True)
    svg_path.write_text(svg, encoding="utf-8")
    return [svg_path, write_png(svg, svg_path.with_suffix(".png"))]
