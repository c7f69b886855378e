"""Request bodies checked against small declarative schemas that also feed the OpenAPI document.

Unknown fields are refused rather than ignored, so a typo in a script fails loudly instead of
silently dropping data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from appliance.errors import Invalid

_SQLITE_MIN, _SQLITE_MAX = -(2**63), 2**63 - 1  # SQLite's INTEGER range
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class F:
    """One field: JSON type ('string', 'integer', 'number', 'boolean', 'array', 'object')."""

    type: str
    required: bool = True
    max_length: int | None = None  # strings: characters; arrays: items
    min_length: int = 0
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None
    nullable: bool = False
    items: F | None = None
    properties: dict[str, F] | None = None
    description: str = ""


@dataclass(frozen=True)
class Schema:
    fields: dict[str, F] = field(default_factory=dict)

    def parse(self, data: Any) -> dict[str, Any]:
        refuse_lone_surrogates(data)
        return _parse_object(data, self.fields, "")

    def json_schema(self) -> dict[str, Any]:
        return _object_schema(self.fields)


def refuse_lone_surrogates(data: Any) -> None:
    """Refuse decoded JSON holding a lone UTF-16 surrogate (`"\\ud800"`) in any string or name.

    JSON's escapes can spell one, but it is no Unicode text: UTF-8 cannot encode it, so hashing,
    storing or answering with it would fail. Checked before anything else looks at the body.
    """
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:  # no recursion: the nesting is only as deep as the JSON parser allowed
        value, path = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                where = f"field {path!r}" if path else "the body"
                raise Invalid(
                    "invalid_text",
                    f"{where} holds a lone UTF-16 surrogate (an escape such as \\ud800), which is not text",
                    field=path or None,
                )
        elif isinstance(value, dict):
            for name, item in value.items():
                if _SURROGATE.search(name):
                    raise Invalid(
                        "invalid_text", "a field name holds a lone UTF-16 surrogate (an escape such as \\ud800)"
                    )
                stack.append((item, f"{path}.{name}" if path else name))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{index}]") for index, item in enumerate(value))


def _parse_object(data: Any, fields: dict[str, F], prefix: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        where = prefix.removesuffix(".")  # a nested object's prefix is its path and a dot
        message = f"field {where!r} must be a JSON object" if where else "the body must be a JSON object"
        raise Invalid("invalid_type", message, field=where or None)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        name = prefix + unknown[0]
        raise Invalid("unknown_field", f"unknown field {name!r}", field=name)
    result: dict[str, Any] = {}
    for name, spec in fields.items():
        path = prefix + name
        if name not in data:
            if spec.required:
                raise Invalid("missing_field", f"field {path!r} is required", field=path)
            continue
        result[name] = _parse_value(data[name], spec, path)
    return result


def _parse_value(value: Any, spec: F, path: str) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise Invalid("invalid_type", f"field {path!r} must not be null", field=path)
    if spec.type == "string":
        if not isinstance(value, str):
            raise Invalid("invalid_type", f"field {path!r} must be a string", field=path)
        if spec.max_length is not None and len(value) > spec.max_length:
            raise Invalid("too_long", f"field {path!r} is longer than {spec.max_length} characters", field=path)
        if len(value) < spec.min_length:
            raise Invalid(
                "too_short" if spec.min_length > 1 else "empty",
                f"field {path!r} needs at least {spec.min_length} characters",
                field=path,
            )
        if "\x00" in value:
            raise Invalid("invalid_value", f"field {path!r} must not contain NUL characters", field=path)
        if spec.enum is not None and value not in spec.enum:
            raise Invalid("invalid_value", f"field {path!r} must be one of {', '.join(spec.enum)}", field=path)
        return value
    if spec.type in ("integer", "number"):
        ok = isinstance(value, int) if spec.type == "integer" else isinstance(value, int | float)
        if isinstance(value, bool) or not ok:
            raise Invalid(
                "invalid_type",
                f"field {path!r} must be a{'n integer' if spec.type == 'integer' else ' number'}",
                field=path,
            )
        if not _SQLITE_MIN <= value <= _SQLITE_MAX or (isinstance(value, float) and not math.isfinite(value)):
            # Beyond what SQLite stores (an OverflowError deep in a query) or JSON can write back.
            raise Invalid("out_of_range", f"field {path!r} is too large", field=path)
        if spec.minimum is not None and value < spec.minimum:
            raise Invalid("out_of_range", f"field {path!r} must be at least {spec.minimum:g}", field=path)
        if spec.maximum is not None and value > spec.maximum:
            raise Invalid("out_of_range", f"field {path!r} must be at most {spec.maximum:g}", field=path)
        return value
    if spec.type == "boolean":
        if not isinstance(value, bool):
            raise Invalid("invalid_type", f"field {path!r} must be true or false", field=path)
        return value
    if spec.type == "array":
        if not isinstance(value, list):
            raise Invalid("invalid_type", f"field {path!r} must be an array", field=path)
        if spec.max_length is not None and len(value) > spec.max_length:
            raise Invalid("too_many", f"field {path!r} has more than {spec.max_length} items", field=path)
        assert spec.items is not None
        return [_parse_value(item, spec.items, f"{path}[{i}]") for i, item in enumerate(value)]
    if spec.type == "object":
        assert spec.properties is not None
        return _parse_object(value, spec.properties, path + ".")
    raise AssertionError(f"unknown schema type {spec.type}")


def _field_schema(spec: F) -> dict[str, Any]:
    out: dict[str, Any] = {"type": spec.type}
    if spec.nullable:
        out["nullable"] = True
    if spec.enum:
        out["enum"] = list(spec.enum)
    if spec.type == "string" and spec.max_length is not None:
        out["maxLength"] = spec.max_length
    if spec.type == "array":
        assert spec.items is not None
        out["items"] = _field_schema(spec.items)
        if spec.max_length is not None:
            out["maxItems"] = spec.max_length
    if spec.type == "object" and spec.properties is not None:
        out.update(_object_schema(spec.properties))
    if spec.minimum is not None:
        out["minimum"] = spec.minimum
    if spec.maximum is not None:
        out["maximum"] = spec.maximum
    if spec.description:
        out["description"] = spec.description
    return out


def _object_schema(fields: dict[str, F]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name, spec in fields.items() if spec.required],
        "properties": {name: _field_schema(spec) for name, spec in fields.items()},
    }
