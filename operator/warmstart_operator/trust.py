"""The trust boundary: the operator never acts on what a manifest's author could not do.

The operator is a deputy with rights its users lack (patch on every Deployment it serves,
create on Jobs with any image and service account). Each function here decides, from plain
data, whether one action stays within what the author of a ModelLineage or WarmStartJob was
handed, and returns a Refusal (a condition reason and a message that says how to fix it) or
None. Nothing here calls the API server; the reconcilers pass in what they read.

- A serving Deployment is touched only if it opts in: it carries the label
  ``warmstart.dev/lineage: <lineage name>``. The label holds one name, so a Deployment serves
  at most one lineage, and the Deployment's owner (not the lineage's author) decides.
- A storage prefix belongs to one lineage of a namespace. Of lineages whose prefixes are
  equal or nested, the first by (creationTimestamp, name) owns it; the others are refused.
  creationTimestamp is set by the API server and never changes, and the name breaks ties
  within its one-second resolution, so every reconcile of every lineage agrees on "first".
- A trainer image and service account are allowed only within the operator's
  configuration (the Helm chart's allowedImages and allowedServiceAccounts), checked again
  here so a cluster without the chart's ValidatingAdmissionPolicy is still safe.
- The serving env names the operator sets cannot shadow the process environment (also a CEL
  rule of the CRD; repeated for objects stored under an older CRD).
- A schedule and time zone are checked before use, so an unknown zone is a condition with
  a reason, never an exception in every reconcile.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import ValidationError

from warmstart.api.podfields import IMAGE_REFERENCE_PATTERN, RESERVED_ENV_REGEX

LINEAGE_LABEL = "warmstart.dev/lineage"
DEFAULT_SERVICE_ACCOUNT = "default"
# An allowed-image entry ending in one of these is a prefix; any other entry is one image.
PREFIX_BOUNDARIES = ("/", ":", "@")

_IMAGE_REFERENCE = re.compile(IMAGE_REFERENCE_PATTERN)
_RESERVED_ENV = re.compile(RESERVED_ENV_REGEX)
_WARMSTART_ENV = re.compile("(?i)^WARMSTART_")


class TrustReason:
    """Condition reasons of refusals (CamelCase, for tools and alerts to match on)."""

    DEPLOYMENT_NOT_OPTED_IN = "DeploymentNotOptedIn"
    DEPLOYMENT_OF_ANOTHER_LINEAGE = "DeploymentOfAnotherLineage"
    STORAGE_PREFIX_CLAIMED = "StoragePrefixClaimed"
    IMAGE_NOT_ALLOWED = "ImageNotAllowed"
    SERVICE_ACCOUNT_NOT_ALLOWED = "ServiceAccountNotAllowed"
    RESERVED_ENV_NAME = "ReservedEnvName"
    INVALID_SCHEDULE = "InvalidSchedule"


# A lineage Degraded for one of these reasons recovers as soon as the refusal is gone.
LINEAGE_REFUSALS = frozenset({
    TrustReason.DEPLOYMENT_NOT_OPTED_IN,
    TrustReason.DEPLOYMENT_OF_ANOTHER_LINEAGE,
    TrustReason.STORAGE_PREFIX_CLAIMED,
    TrustReason.RESERVED_ENV_NAME,
    TrustReason.INVALID_SCHEDULE,
})


@dataclass(frozen=True)
class Refusal:
    reason: str
    message: str


# -- serving Deployment -------------------------------------------------------------------
def deployment_opt_in(deployment: str, labels: Mapping[str, str] | None, lineage: str,
                      namespace: str) -> Refusal | None:
    """None when the Deployment's labels hand it to `lineage`."""
    claimed_by = (labels or {}).get(LINEAGE_LABEL)
    if claimed_by == lineage:
        return None
    if claimed_by:
        return Refusal(TrustReason.DEPLOYMENT_OF_ANOTHER_LINEAGE,
                       f'Deployment "{deployment}" belongs to lineage "{claimed_by}" (label '
                       f"{LINEAGE_LABEL}={claimed_by}); a Deployment serves one lineage, so "
                       "this lineage leaves it alone")
    return Refusal(TrustReason.DEPLOYMENT_NOT_OPTED_IN,
                   f'Deployment "{deployment}" has not opted in: the operator changes only a '
                   f"Deployment labelled {LINEAGE_LABEL}={lineage}. Add it with: kubectl "
                   f"label deployment {deployment} {LINEAGE_LABEL}={lineage} -n {namespace}")


def reserved_env_name(name: str) -> bool:
    if _RESERVED_ENV.search(name):
        return True
    return bool(_WARMSTART_ENV.search(name)) and not name.startswith("WARMSTART_MODEL_")


def serving_env_names(uri_env: str, digest_env: str) -> Refusal | None:
    for field, name in (("modelURIEnv", uri_env), ("modelDigestEnv", digest_env)):
        if reserved_env_name(name):
            return Refusal(TrustReason.RESERVED_ENV_NAME,
                           f"spec.serving.{field} {name!r} would shadow the process "
                           "environment of the serving container; choose a name of your own "
                           "such as WARMSTART_MODEL_URI or MODEL_URI")
    return None


# -- storage prefixes ---------------------------------------------------------------------
@dataclass(frozen=True)
class Claimant:
    """A lineage as far as storage ownership goes."""

    name: str
    created: str  # metadata.creationTimestamp, RFC 3339
    storage_uri: str

    @staticmethod
    def of(lineage: Mapping[str, Any]) -> Claimant | None:
        """From a ModelLineage object as the API returns it; None if it names no storage."""
        meta = lineage.get("metadata") or {}
        uri = ((lineage.get("spec") or {}).get("storage") or {}).get("uri")
        if not isinstance(uri, str) or not uri or meta.get("deletionTimestamp"):
            return None
        return Claimant(str(meta.get("name", "")), str(meta.get("creationTimestamp") or ""),
                        uri)

    def order(self) -> tuple[dt.datetime, str]:
        return (_timestamp(self.created), self.name)


# Reads the operator's index of lineages by namespace (a @kopf.index in the operator, the
# fake cluster's objects in tests): the storage claimants of one namespace, without a LIST.
ClaimantsIn = Callable[[str], list[Claimant]]


def _timestamp(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.max.replace(tzinfo=dt.UTC)  # unknown age: last in line
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _as_prefix(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def prefixes_overlap(a: str, b: str) -> bool:
    """Equal, or one inside the other (s3://b/m/ and s3://b/m/reviews/ overlap;
    s3://b/m/ and s3://b/models/ do not)."""
    first, second = _as_prefix(a), _as_prefix(b)
    return first.startswith(second) or second.startswith(first)


def storage_claim(me: Claimant, lineages: Iterable[Claimant | None]) -> Refusal | None:
    """None when no lineage that comes first shares or nests `me`'s storage prefix."""
    rivals = sorted((other for other in lineages
                     if other is not None and other.name != me.name
                     and prefixes_overlap(me.storage_uri, other.storage_uri)
                     and other.order() < me.order()), key=Claimant.order)
    if not rivals:
        return None
    first = rivals[0]
    return Refusal(TrustReason.STORAGE_PREFIX_CLAIMED,
                   f"spec.storage.uri {me.storage_uri} overlaps {first.storage_uri} of lineage "
                   f'"{first.name}", which was created first: a storage prefix belongs to one '
                   "lineage, so this one reads and writes nothing there. Give it a prefix of "
                   "its own (storage.uri is immutable: re-create the lineage)")


# -- trainer pods -------------------------------------------------------------------------
def image_allowed(image: str, allowed: Sequence[str]) -> bool:
    if not _IMAGE_REFERENCE.fullmatch(image):
        return False
    for entry in allowed:
        if entry.endswith(PREFIX_BOUNDARIES):
            if image.startswith(entry):
                return True
        elif image == entry:
            return True
    return False


def trainer_image(image: str | None, default_image: str, allowed: Sequence[str]
                  ) -> Refusal | None:
    """None when `image` is unset (the operator's own trainer image) or allowed."""
    if image is None or image == default_image or image_allowed(image, allowed):
        return None
    choices = ", ".join([default_image, *allowed])
    return Refusal(TrustReason.IMAGE_NOT_ALLOWED,
                   f"spec.image {image!r} is not allowed by the operator's installation "
                   f"(allowed: {choices}; an entry ending in /, : or @ is a prefix). Leave "
                   "spec.image unset, or ask the cluster admin to add it to the Helm value "
                   "operator.trainer.allowedImages")


def service_account(name: str | None, allowed: Sequence[str]) -> Refusal | None:
    """None when unset, the namespace's default account, or allowed."""
    if name is None or name == DEFAULT_SERVICE_ACCOUNT or name in allowed:
        return None
    choices = ", ".join([DEFAULT_SERVICE_ACCOUNT, *allowed])
    return Refusal(TrustReason.SERVICE_ACCOUNT_NOT_ALLOWED,
                   f"spec.serviceAccountName {name!r} is not allowed by the operator's "
                   f"installation (allowed: {choices}). Leave it unset, or ask the cluster "
                   "admin to add it to the Helm value operator.trainer.allowedServiceAccounts")


def trainer_pod(image: str | None, account: str | None, default_image: str,
                allowed_images: Sequence[str], allowed_accounts: Sequence[str]
                ) -> Refusal | None:
    return (trainer_image(image, default_image, allowed_images)
            or service_account(account, allowed_accounts))


# -- schedules ----------------------------------------------------------------------------
def time_zone(name: str | None) -> dt.tzinfo | None:
    """The zone, UTC when unset, None when the operator's time-zone database lacks it."""
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory of the database (e.g. "America") rather than a zone file.
        return None


def schedule(expression: str, zone: str | None, at: dt.datetime) -> Refusal | None:
    """None when `expression` in `zone` has a run before and after `at`."""
    tz = time_zone(zone)
    if tz is None:
        return Refusal(TrustReason.INVALID_SCHEDULE,
                       f"spec.retraining.timeZone {zone!r} is not a time zone the operator "
                       "knows (an IANA name such as Europe/Berlin or Etc/UTC); no run is "
                       "scheduled until it is fixed")
    try:
        cron = croniter(expression, at.astimezone(tz))
        cron.get_prev(dt.datetime)
        cron.get_next(dt.datetime)
    except Exception:  # croniter's errors are no stable API; every one means "no"
        return Refusal(TrustReason.INVALID_SCHEDULE,
                       f"spec.retraining.schedule {expression!r} never fires or has a value "
                       "out of range (e.g. minute 99, or February 31); no run is scheduled "
                       "until it is fixed")
    return None


# -- objects stored under an older CRD ----------------------------------------------------
def first_error(exc: ValidationError) -> str:
    """The first problem of an object that the current models refuse, with its field path
    (an object stored before a CRD rule was added reaches the operator unchecked)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}"
