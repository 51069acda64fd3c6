"""What the demo prints: numbered step headers, indented detail, commands as a user would
type them, all stamped with the time since the start so slow steps are visible."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO


def elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned text columns separated by two spaces, with a rule under the header."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


@dataclass
class Console:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    started: float = field(default_factory=time.monotonic)

    def _stamp(self) -> str:
        return f"[{elapsed(time.monotonic() - self.started)}]"

    def _write(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def title(self, text: str) -> None:
        self._write(f"\n{self._stamp()} == {text}")

    def say(self, text: str) -> None:
        self._write(f"{self._stamp()}    {text}")

    def detail(self, text: str) -> None:
        """Sub-lines (log excerpts, table rows): no stamp, deeper indent."""
        self._write(f"           {text}")

    def command(self, text: str) -> None:
        """A command the demo runs, shown as the user would type it."""
        self._write(f"{self._stamp()}    $ {text}")

    def blank(self) -> None:
        self._write("")

    def raw(self, text: str) -> None:
        self._write(text)
