"""The operator's fixtures the real-node story uses, shared rather than copied (a conftest
only sees its own folder's)."""

from tests.operator.conftest import crds  # noqa: F401
