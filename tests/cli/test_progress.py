"""Progress reporting on stderr."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from warmstart.cli.progress import Progress, human_bytes


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_log_a_transfer_writes_one_line_with_its_size() -> None:
    stream = io.StringIO()

    data = b"".join(Progress(stream, prefix="ws").transfer("hashing w", [b"ab", b"cde"], 5))

    assert data == b"abcde"
    assert stream.getvalue() == "ws: hashing w (5 B)\n"


def test_on_a_terminal_a_transfer_redraws_and_ends_with_the_total() -> None:
    stream = _Terminal()

    list(Progress(stream, prefix="ws").transfer("hashing w", [b"ab", b"cde"], 5))

    assert stream.getvalue().startswith("\r\x1b[Kws: hashing w 0 B/5 B")
    assert stream.getvalue().endswith("\r\x1b[Kws: hashing w 5 B/5 B\n")


def test_on_a_terminal_a_failed_transfer_still_ends_its_line() -> None:
    stream = _Terminal()

    def failing() -> Iterator[bytes]:
        yield b"ab"
        raise OSError("connection reset")

    with pytest.raises(OSError):
        list(Progress(stream, prefix="ws").transfer("hashing w", failing(), 5))

    assert stream.getvalue().endswith("ws: hashing w 2 B/5 B\n")


def test_quiet_progress_writes_nothing_but_passes_data_through() -> None:
    progress = Progress(None)

    progress.step("hidden")
    assert b"".join(progress.transfer("x", [b"1", b"2"], None)) == b"12"


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (999, 1000, 90_900_000, 5e12)] == [
        "999 B",
        "1.0 kB",
        "90.9 MB",
        "5000.0 GB",
    ]
