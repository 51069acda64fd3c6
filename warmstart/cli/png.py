"""PNG copies of the CLI's SVG pictures (the lineage graph, learning curves), rendered in
this process by resvg (package resvg-py, a self-contained wheel): nothing to install on the
machine, unlike a converter such as rsvg-convert. Text needs a sans-serif font on the
machine (DejaVu on most Linux systems); without one, the shapes are drawn and the text not.
"""

from __future__ import annotations

import struct
from pathlib import Path

import resvg_py


def write_png(svg: str, png: Path) -> Path:
    """Render ``svg`` at its own size into ``png``; returns ``png``."""
    png.write_bytes(bytes(resvg_py.svg_to_bytes(svg_string=svg)))
    return png


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header (its IHDR chunk)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)
