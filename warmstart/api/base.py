"""The pydantic base every API model shares: camelCase on the wire, snake_case in Python."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from warmstart.api.markers import Cel
from warmstart.casing import camel_alias


class ApiModel(BaseModel):
    """Base of every spec and status type.

    Field docstrings become the CRD descriptions (`kubectl explain`), so every field has one.
    Unknown keys are ignored rather than refused: objects read from a newer API server may
    carry fields this version of the operator does not know yet.
    """

    model_config = ConfigDict(
        alias_generator=camel_alias,
        populate_by_name=True,
        use_attribute_docstrings=True,
        extra="ignore",
    )

    # Object-level CEL rules (relations between fields); field-level rules live on the
    # field's Annotated type.
    crd_rules: ClassVar[tuple[Cel, ...]] = ()

    def to_api(self) -> dict[str, Any]:
        """The object as the API server expects it: camelCase keys, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
