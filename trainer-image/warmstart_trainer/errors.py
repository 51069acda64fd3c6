"""The trainer's failures and the exit code each maps to.

Exit codes let a Job's podFailurePolicy tell a failure worth retrying (1: storage hiccup,
preemption, a bug) from one that will fail the same way every time (2: bad spec or data,
3: the parent or a file was refused), so the operator can fail those jobs at once.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID_INPUT = 2
EXIT_REFUSED = 3


class TrainerError(Exception):
    """A failure with a one-line, user-facing message and an exit code."""

    exit_code = EXIT_FAILED


class InvalidInputError(TrainerError):
    """The spec, a dataset or a CLI argument is wrong: retrying cannot help."""

    exit_code = EXIT_INVALID_INPUT


class DataError(InvalidInputError):
    """A dataset is empty, malformed or holds an unknown label; the message names file and row."""


class RefusedError(TrainerError):
    """A checkpoint failed verification or holds pickle: it is never loaded."""

    exit_code = EXIT_REFUSED
