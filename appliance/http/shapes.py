"""Small builders for the JSON Schemas of what routes answer (declared next to each route, in the
OpenAPI 3.0 flavour: `nullable` rather than type lists).

`obj(a=..., b=...)` requires every listed property (they are always present, possibly null) and allows
others; `optional=` lists properties that only some answers carry.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}
# An instant as the API writes it: ISO 8601 UTC, "2026-01-31T08:00:00Z".
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
# Any JSON value (kept loose where the value's form is not part of the contract yet).
ANY: Schema = {}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def obj(optional: dict[str, Schema] | None = None, **required: Schema) -> Schema:
    return {"type": "object", "required": list(required), "properties": {**required, **(optional or {})}}


def listing(key: str, items: Schema) -> Schema:
    """`{key: [items]}`, the form of the API's list answers."""
    return obj(**{key: array(items)})


ROLE = enum("student", "teacher", "admin")
USER = obj(id=INTEGER, username=STRING, role=ROLE, is_minor=BOOLEAN, created_at=TIMESTAMP)
# The caller, with the legal texts still to accept.
ME = obj(**USER["properties"], pending_legal=array(obj(kind=enum("terms", "privacy"), version=STRING)))
# A file of the caller's: what uploads answer and listings hold.
FILE = obj(
    optional={"deduplicated": BOOLEAN},
    id=STRING,
    owner_id=INTEGER,
    name=STRING,
    kind=STRING,
    media_type=STRING,
    size=INTEGER,
    created_at=TIMESTAMP,
    expires_at=nullable(TIMESTAMP),
    kept_for_submission=BOOLEAN,
)
JOB_STATUS = STRING
# What queuing a run, a submission or a check answers (202).
QUEUED = obj(id=INTEGER, status=JOB_STATUS, deduplicated=BOOLEAN, position=nullable(INTEGER))
