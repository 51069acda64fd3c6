"""Schema facts that pydantic has no words for, carried in `Annotated[...]` metadata.

Pydantic ignores these markers; `warmstart.api.openapi` turns them into the matching
Kubernetes OpenAPI extensions. Keeping them next to the field they constrain means the model
stays the single definition of the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CelReason = Literal[
    "FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"
]


@dataclass(frozen=True)
class Cel:
    """One `x-kubernetes-validations` rule, evaluated by the API server on every write."""

    rule: str
    message: str
    field_path: str | None = None
    reason: CelReason | None = None

    def as_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry


@dataclass(frozen=True)
class ListType:
    """`x-kubernetes-list-type`: `set` makes the API server refuse duplicates, `map` merges
    items by key under server-side apply."""

    kind: Literal["atomic", "set", "map"]
    map_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Format:
    """OpenAPI `format`, e.g. `date-time`, which the API server checks for strings."""

    name: str


@dataclass(frozen=True)
class MaxProperties:
    """Bound on the number of keys in a map; keeps CEL cost estimates finite."""

    count: int


@dataclass(frozen=True)
class IntOrString:
    """A value a user may write as a number or a string (resource quantities)."""

    pattern: str | None = None
