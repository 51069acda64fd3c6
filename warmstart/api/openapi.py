"""Translate the pydantic API models into a structural OpenAPI v3 schema for a CRD.

Pydantic's own JSON Schema is not usable as is: it uses $ref and anyOf (forbidden or limited
in structural schemas) and JSON Schema 2020 bounds (`exclusiveMinimum: 0`) where Kubernetes
speaks OpenAPI 3.0 (`minimum: 0, exclusiveMinimum: true`). So this module walks the models
itself and inlines every type. Anything it does not understand is an error, never silently
dropped: a constraint that reaches pydantic but not the CRD would be a contract the API
server does not enforce.
"""

from __future__ import annotations

import datetime
import enum
import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from warmstart.api.base import ApiModel
from warmstart.api.markers import Cel, Format, IntOrString, ListType, MaxProperties

Schema = dict[str, Any]


class SchemaError(TypeError):
    """The models use something this generator cannot express in a CRD."""


def object_schema(model: type[ApiModel], description: str | None = None) -> Schema:
    """Schema of a model: an object whose properties are the fields, by camelCase alias."""
    properties: Schema = {}
    required: list[str] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        properties[key] = _field_schema(model, name, field)
        if field.is_required():
            required.append(key)
    schema: Schema = {"type": "object"}
    text = description or _class_description(model)
    if text:
        schema["description"] = text
    schema["properties"] = properties
    if required:
        schema["required"] = required
    if model.crd_rules:
        schema["x-kubernetes-validations"] = [rule.as_schema() for rule in model.crd_rules]
    return _ordered(schema)


def _class_description(model: type[BaseModel]) -> str:
    return _normalise(model.__doc__ or "")


def _normalise(text: str) -> str:
    """Docstrings wrap at the source's line width; descriptions should flow as paragraphs."""
    paragraphs = [" ".join(p.split()) for p in text.strip().split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p)


def _field_schema(model: type[BaseModel], name: str, field: FieldInfo) -> Schema:
    if not field.description:
        raise SchemaError(f"{model.__name__}.{name} has no docstring: it is the CRD description")
    assert field.annotation is not None
    schema = _type_schema(field.annotation, list(field.metadata), field.description)
    description = _normalise(field.description)
    default = _default_value(field)
    if default is not None:
        schema["default"] = default
        if not isinstance(default, dict):
            # kubectl explain does not print `default`; the description is where people look.
            description += f" Defaults to {_plain(default)}."
    schema["description"] = description
    return _ordered(schema)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if value != "" else '""'


def _default_value(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return None
    else:
        value = field.default
    if value is None:
        return None
    if isinstance(value, BaseModel):
        # Only what the default sets explicitly; nested defaults are applied by the API
        # server's own walk, as they would be for a user-written `{}`.
        return value.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, list | dict) and not value:
        raise SchemaError("empty containers as defaults: use None, absence means empty")
    return value


def _type_schema(annotation: Any, metadata: list[Any], description: str | None = None) -> Schema:
    annotation, metadata = _unwrap(annotation, metadata)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    int_or_string = next((m for m in metadata if isinstance(m, IntOrString)), None)

    schema: Schema
    if int_or_string is not None:
        schema = _int_or_string_schema(annotation, int_or_string)
    elif annotation is bool:
        schema = {"type": "boolean"}
    elif annotation is int:
        schema = {"type": "integer"}
    elif annotation is float:
        schema = {"type": "number"}
    elif annotation is str:
        schema = {"type": "string"}
    elif annotation is datetime.datetime:
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        schema = {"type": "string", "enum": [member.value for member in annotation]}
    elif origin is typing.Literal:
        schema = {"type": "string", "enum": list(args)}
    elif origin is list:
        schema = {"type": "array", "items": _type_schema(args[0], [])}
    elif origin is dict:
        if args[0] is not str:
            raise SchemaError(f"map keys must be strings: {annotation}")
        schema = {"type": "object", "additionalProperties": _type_schema(args[1], [])}
    elif isinstance(annotation, type) and issubclass(annotation, ApiModel):
        schema = object_schema(annotation, description)
    else:
        raise SchemaError(f"no OpenAPI type for {annotation!r}")

    for marker in metadata:
        if marker is not int_or_string:
            _apply_marker(schema, marker)
    return _ordered(schema)


def _unwrap(annotation: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip Annotated and `| None`, collecting the metadata of every layer."""
    while True:
        if typing.get_origin(annotation) is typing.Annotated:
            inner, *extra = typing.get_args(annotation)
            annotation, metadata = inner, [*metadata, *_flatten_field_infos(extra)]
            continue
        if typing.get_origin(annotation) in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation, metadata


def _flatten_field_infos(extra: list[Any]) -> list[Any]:
    """`Field(...)` inside a nested Annotated arrives as a FieldInfo holding the constraints."""
    flat: list[Any] = []
    for item in extra:
        flat.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return flat


def _int_or_string_schema(annotation: Any, marker: IntOrString) -> Schema:
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        raise SchemaError(f"IntOrString marks a union of int and str, not {annotation!r}")
    schema: Schema = {
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    }
    if marker.pattern is not None:
        schema["pattern"] = marker.pattern
    return schema


_LENGTH_KEYS = {
    "string": ("minLength", "maxLength"),
    "array": ("minItems", "maxItems"),
    "object": ("minProperties", "maxProperties"),
}


def _apply_marker(schema: Schema, marker: Any) -> None:
    kind = schema.get("type", "")
    if isinstance(marker, annotated_types.Ge):
        schema["minimum"] = marker.ge
    elif isinstance(marker, annotated_types.Gt):
        schema["minimum"] = marker.gt
        schema["exclusiveMinimum"] = True
    elif isinstance(marker, annotated_types.Le):
        schema["maximum"] = marker.le
    elif isinstance(marker, annotated_types.Lt):
        schema["maximum"] = marker.lt
        schema["exclusiveMaximum"] = True
    elif isinstance(marker, annotated_types.MinLen):
        schema[_LENGTH_KEYS[kind][0]] = marker.min_length
    elif isinstance(marker, annotated_types.MaxLen):
        schema[_LENGTH_KEYS[kind][1]] = marker.max_length
    elif isinstance(marker, MaxProperties):
        schema["maxProperties"] = marker.count
    elif isinstance(marker, Format):
        schema["format"] = marker.name
    elif isinstance(marker, ListType):
        schema["x-kubernetes-list-type"] = marker.kind
        if marker.map_keys:
            schema["x-kubernetes-list-map-keys"] = list(marker.map_keys)
    elif isinstance(marker, Cel):
        schema.setdefault("x-kubernetes-validations", []).append(marker.as_schema())
    elif _is_pattern_only(marker):
        schema["pattern"] = marker.pattern
    else:
        raise SchemaError(f"no OpenAPI form for constraint {marker!r}")


def _is_pattern_only(marker: Any) -> bool:
    """Pydantic keeps `Field(pattern=...)` in an internal class; recognise it by its
    attributes, and refuse it when it carries anything besides the pattern."""
    settings = {k: v for k, v in getattr(marker, "__dict__", {}).items() if v is not None}
    return set(settings) == {"pattern"}


# Keys first that a reader scans for, then bounds, then the nested structure.
_KEY_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "anyOf",
    "x-kubernetes-int-or-string",
    "pattern",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "items",
    "additionalProperties",
    "properties",
    "required",
    "x-kubernetes-validations",
)


def _ordered(schema: Schema) -> Schema:
    unknown = set(schema) - set(_KEY_ORDER)
    if unknown:
        raise SchemaError(f"schema keys without a place in the order: {sorted(unknown)}")
    return {key: schema[key] for key in _KEY_ORDER if key in schema}
