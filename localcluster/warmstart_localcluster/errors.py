"""Errors of the local control plane, each with a message that says what to do."""


class ClusterError(RuntimeError):
    """The cluster could not be brought up or used."""
