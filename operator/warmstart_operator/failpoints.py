"""Named crash points for fault-injection tests (as etcd's gofail or TiKV's fail-rs).

`crash_point("after-job-created")` ends the process at once, like SIGKILL, when the
environment variable WARMSTART_FAILPOINTS lists that name. The crash-safety tests use it to
kill the operator exactly between two side effects, the places where a naive controller
would create a second Job or register a version twice. Unset (always, in production),
it costs one dict lookup.
"""

from __future__ import annotations

import os

ENV = "WARMSTART_FAILPOINTS"

AFTER_PARENT_RESOLVED = "after-parent-resolved"
AFTER_JOB_CREATED = "after-job-created"
AFTER_VERSION_REGISTERED = "after-version-registered"
AFTER_DEPLOYMENT_APPLIED = "after-deployment-applied"


def crash_point(name: str) -> None:
    armed = os.environ.get(ENV)
    if armed and name in armed.split(","):
        os._exit(137)
