"""Errors the CLI reports as one line, and the exit codes they map to.

The codes follow grep and diff: 0 is yes, 1 is a definite no (the hash chain is broken),
2 is "could not answer" (bad input, no cluster, no credentials, storage unreachable), so a
script can tell tampering from an outage.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_ERROR = 2


class CliError(Exception):
    """A failure the user can act on; its message is printed as is, without a traceback."""

    exit_code = EXIT_ERROR


class NotFoundError(CliError):
    """An unknown lineage, version or Secret."""


class ClusterUnavailableError(CliError):
    """No kubeconfig, or the API server did not answer."""


class CredentialsError(CliError):
    """The storage Secret is missing, unreadable or lacks a key."""


class StorageAccessError(CliError):
    """Object storage could not be reached or refused the request."""
