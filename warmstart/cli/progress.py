"""Progress of long operations, on stderr so stdout stays clean for pipes (`> tree.svg`).

On a terminal a transfer redraws one line in place; in a log (CI, `2> file`) it writes a
line when it starts and one every few seconds, so logs stay short but show it is alive.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TextIO

REDRAW_EVERY_S = 0.2
LOG_EVERY_S = 5.0


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


class Progress:
    """Writes progress to ``stream``; ``Progress(None)`` is silent (``--quiet``)."""

    def __init__(self, stream: TextIO | None, *, prefix: str = "warmstart") -> None:
        self._stream = stream
        self._prefix = prefix
        self._interactive = bool(stream is not None and stream.isatty())

    def step(self, message: str) -> None:
        self._write(f"{self._prefix}: {message}\n")

    def transfer(self, label: str, chunks: Iterable[bytes], total: int | None) -> Iterator[bytes]:
        """Pass ``chunks`` through, reporting how many bytes of ``total`` went by."""
        done = 0
        last_report = time.monotonic()
        if self._interactive:
            self._write(self._transfer_line(label, done, total, final=False))
        else:
            size = "" if total is None else f" ({human_bytes(total)})"
            self._write(f"{self._prefix}: {label}{size}\n")
        try:
            for chunk in chunks:
                done += len(chunk)
                now = time.monotonic()
                if now - last_report >= (REDRAW_EVERY_S if self._interactive else LOG_EVERY_S):
                    last_report = now
                    self._write(self._transfer_line(label, done, total, final=False))
                yield chunk
        finally:
            # Also when reading fails midway: an error message must not share the line.
            if self._interactive:
                self._write(self._transfer_line(label, done, total, final=True))

    def _transfer_line(self, label: str, done: int, total: int | None, *, final: bool) -> str:
        amount = human_bytes(done) if total is None else f"{human_bytes(done)}/{human_bytes(total)}"
        text = f"{self._prefix}: {label} {amount}"
        if self._interactive:
            # \r and clear-to-end redraw in place; the final state ends the line.
            return f"\r\x1b[K{text}" + ("\n" if final else "")
        return text + "\n"

    def _write(self, text: str) -> None:
        if self._stream is not None:
            self._stream.write(text)
            self._stream.flush()
