"""The training spec's base model, field types and error translation.

Every check raises ``SpecError`` (a ``ValueError``, so pydantic records it with its location);
``spec_error`` turns the first error of a ``ValidationError`` back into one ``SpecError``
whose field is the JSON path the user wrote (``training.learningRates[1]: must be > 0``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    model_validator,
)
from pydantic_core import ErrorDetails

from warmstart.casing import camel_alias

_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_URI_RE = re.compile(r"^(s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.*|file:///.+)$")
_DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")

# parse_spec validates with this context: the document on the wire is camelCase only, while
# Python code (the operator) constructs the models by their snake_case field names.
WIRE = {"wire": True}


class SpecError(ValueError):
    """An invalid training spec. ``field`` is the JSON path of the offending field."""

    def __init__(self, field_path: str, reason: str) -> None:
        super().__init__(f"{field_path}: {reason}" if field_path else reason)
        self.field = field_path
        self.reason = reason

    def under(self, prefix: str) -> SpecError:
        """The same error, with the field path seen from an enclosing object."""
        if not prefix:
            return self
        if not self.field:
            return SpecError(prefix, self.reason)
        joiner = "" if self.field.startswith("[") else "."
        return SpecError(f"{prefix}{joiner}{self.field}", self.reason)


def check_uri(field_path: str, value: str, *, prefix: bool) -> None:
    if not _URI_RE.match(value):
        raise SpecError(field_path, f"{value!r} is not an s3://bucket/key or file:/// URI")
    if prefix is False and value.endswith("/"):
        raise SpecError(field_path, f"{value!r} names a prefix, not an object")


def check_dataset_uri(field_path: str, value: str) -> None:
    check_uri(field_path, value, prefix=False)
    if not value.lower().endswith(_DATA_SUFFIXES):
        raise SpecError(field_path, f"{value!r}: want a file ending in {', '.join(_DATA_SUFFIXES)}")


def check_name(field_path: str, value: str) -> None:
    if len(value) > 63 or not _NAME_RE.match(value):
        raise SpecError(field_path, f"{value!r} is not a lowercase name (a-z, 0-9, '-', '.')")


def check_positive(field_path: str, value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise SpecError(field_path, f"must be > 0, got {value}")


def check_rate(field_path: str, value: float) -> None:
    check_positive(field_path, value)
    if value > 1:
        raise SpecError(field_path, f"must be <= 1, got {value}")


# --- field types ---------------------------------------------------------------------------


def rule(holds: Callable[[Any], bool], want: str) -> AfterValidator:
    """A check of one value: ``SpecError("<want>, got <value>")`` unless ``holds(value)``."""

    def check(value: Any) -> Any:
        if not holds(value):
            raise SpecError("", f"{want}, got {value}")
        return value

    return AfterValidator(check)


def checked(check: Callable[[str, Any], None]) -> AfterValidator:
    """A value check written as ``check(field_path, value)`` (the path comes from pydantic)."""

    def run(value: Any) -> Any:
        check("", value)
        return value

    return AfterValidator(run)


def _list_of(kind: str, item: type | tuple[type, ...]) -> WrapValidator:
    # The whole list is named when one item has the wrong type ("must be a list of numbers"),
    # and only lists are lists: pydantic's lax tuple would also take sets and generators.
    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(value, list | tuple) or not all(
            isinstance(entry, item) and not isinstance(entry, bool) for entry in value
        ):
            raise SpecError("", f"must be a list of {kind}")
        return handler(value)

    return WrapValidator(check)


Text = Annotated[StrictStr, Field(min_length=1)]
Name = Annotated[Text, checked(check_name)]
Prefix = Annotated[Text, checked(lambda path, value: check_uri(path, value, prefix=True))]
DataURI = Annotated[Text, checked(check_dataset_uri)]
Integer = StrictInt
Number = StrictFloat  # takes JSON integers too, as floats
Flag = StrictBool
Rate = Annotated[StrictFloat, checked(check_rate)]
Rates = Annotated[tuple[Rate, ...], _list_of("numbers", (int, float))]
Strings = Annotated[tuple[StrictStr, ...], _list_of("strings", str)]
DataURIs = Annotated[tuple[Annotated[StrictStr, checked(check_dataset_uri)], ...],
                     _list_of("strings", str)]


class SpecModel(BaseModel):
    """Base of the spec's objects: the API models' camelCase style (``warmstart.api.base``),
    but frozen and strict about keys: a typo in a spec is an error, not a default."""

    model_config = ConfigDict(
        alias_generator=camel_alias, populate_by_name=True, frozen=True, extra="forbid"
    )

    def __init__(self, **data: Any) -> None:
        # Constructing a spec in Python (the operator) fails the same way parsing one does.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise spec_error(exc) from None

    # Pydantic hands validation to an overridden __init__ (losing parse_spec's context and
    # wrapping every nested error); this flag tells it this one only translates errors.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any, info: ValidationInfo) -> Any:
        """``null`` means "not set" (the default, or "is required"); on the wire only the
        camelCase names are fields."""
        if not isinstance(data, dict):
            return data
        if info.context == WIRE:
            names = {field.alias or name for name, field in cls.model_fields.items()}
            unknown = sorted(str(key) for key in data if key not in names)
            if unknown:
                raise SpecError(_key(unknown[0]), "unknown field")
        return {key: value for key, value in data.items() if value is not None}


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    """A key as the error names it: quoted when it is empty or holds odd characters, so the
    message stays one line and the path stays readable."""
    return key if _PLAIN_KEY.match(key) else json.dumps(key)


# --- errors --------------------------------------------------------------------------------

_OBJECT_TYPES = {"model_type", "model_attributes_type", "dict_type"}
_TYPE_REASONS = {
    "int_type": "must be an integer, got {input!r}",
    "float_type": "must be a number, got {input!r}",
    "bool_type": "must be true or false, got {input!r}",
    "string_type": "must be a non-empty string",
    "string_too_short": "must be a non-empty string",
}


def spec_error(exc: ValidationError) -> SpecError:
    """The first error of ``exc`` as a ``SpecError`` naming the field by its JSON path."""
    first = exc.errors(include_url=False)[0]
    loc = first["loc"]
    if first["type"] != "extra_forbidden":
        # Models built in Python are validated by field name; the user reads camelCase.
        loc = tuple(camel_alias(part) if isinstance(part, str) else part for part in loc)
    path = _json_path(loc)
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, SpecError):
        return cause.under(path) if path else cause
    return SpecError(path, _reason(first))


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in _OBJECT_TYPES:
        return "expected a JSON object"
    if kind in _TYPE_REASONS:
        return _TYPE_REASONS[kind].format(input=error.get("input"))
    return str(error["msg"])


def _json_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
