"""The one error the demo stops on: its message says what failed and where to look."""

from __future__ import annotations


class DemoError(Exception):
    """A step of the demo failed; the message is printed as is, without a traceback."""
