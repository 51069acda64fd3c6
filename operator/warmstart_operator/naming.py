"""Deterministic names for everything the operator creates.

Never generateName or random suffixes: after a crash the operator must find what it
already created by name, so a restart can never create a second training Job. When a
name would exceed a limit, it is cut and a short hash of the full name keeps it unique.
"""

from __future__ import annotations

import hashlib
import re

DNS_LABEL_MAX = 63


def bounded(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """`name` if it fits, else a prefix + '-' + 8 hex chars of its sha256."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    prefix = name[: limit - len(digest) - 1].rstrip("-.")
    return f"{prefix}-{digest}"


def training_job(wsj_name: str) -> str:
    # Job names become a pod label value (job-name), so they obey the 63-char label limit.
    return bounded(f"{wsj_name}-train")


def spec_configmap(wsj_name: str) -> str:
    return bounded(f"{wsj_name}-trainspec", 253)


def version_name(wsj_name: str) -> str:
    """The version a WarmStartJob produces is named after it: readable, and unique in the
    namespace because the job name is."""
    return bounded(wsj_name)


def scheduled_job(lineage: str, scheduled_for_epoch: int) -> str:
    """Name of the WarmStartJob a cron tick creates; the same tick always maps to the same
    name, so a restarted operator cannot create it twice."""
    minutes = scheduled_for_epoch // 60
    return bounded(f"{lineage}-{minutes}")


_INVALID = re.compile(r"[^a-z0-9-]+")


def label_value(value: str) -> str:
    cleaned = _INVALID.sub("-", value.lower()).strip("-")
    return bounded(cleaned)
