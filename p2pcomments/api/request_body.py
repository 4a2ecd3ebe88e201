"""Reading a request against an endpoint's allowlists: its JSON body's fields, its query.

Rules:

1. An empty body is an empty object; anything else must be UTF-8 (400 ``bad-encoding``, naming
   the first offending byte: RFC 8259 allows no other encoding) holding one JSON object (400
   ``bad-json``).
2. Only the endpoint's listed fields are accepted: any other key is refused (422
   ``unknown-field``), so a misspelt ``bdoy`` is an error, not an ignored field.
3. A required field must be present (422 ``missing-field``); every field is a string, or null
   where the field is nullable (422 ``bad-field``). Absent optional fields take their default.
4. A query may hold only the endpoint's listed parameters, each at most once (400
   ``unknown-parameter``, ``repeated-parameter``): ``?ulr=…`` is an error, not a filter ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from p2pcomments.api.actions import Field
from p2pcomments.api.errors import BadRequest, UnprocessableRequest

__all__ = ["parse_fields", "parse_query"]


def parse_fields(raw: bytes, fields: Sequence[Field]) -> dict[str, str | None]:
    """The body's fields by name, checked against ``fields`` (rules 1-3)."""
    if not raw.strip():
        document: object = {}
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadRequest(
                f"the request body is not UTF-8: byte {raw[error.start]:#04x} at offset"
                f" {error.start} ({error.reason}); JSON must be sent as UTF-8",
                reason="bad-encoding",
            ) from None
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise BadRequest("the request body is not valid JSON", reason="bad-json") from None
    if not isinstance(document, dict):
        raise BadRequest("the request body must be a JSON object", reason="bad-json")
    allowed = {field.name: field for field in fields}
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        expected = ", ".join(allowed) or "no fields"
        raise UnprocessableRequest(
            f"unknown field {', '.join(map(repr, unknown))}: this endpoint accepts {expected}",
            reason="unknown-field",
        )
    values: dict[str, str | None] = {}
    for name, field in allowed.items():
        if name not in document:
            if field.required:
                raise UnprocessableRequest(f"missing field {name!r}", reason="missing-field")
            values[name] = field.default
            continue
        value = document[name]
        if value is None and field.nullable:
            values[name] = None
        elif isinstance(value, str):
            values[name] = value
        else:
            kind = "a string or null" if field.nullable else "a string"
            raise UnprocessableRequest(f"field {name!r} must be {kind}", reason="bad-field")
    return values


def parse_query(
    items: Sequence[tuple[str, str]], parameters: Sequence[Field]
) -> dict[str, str | list[str] | None]:
    """The query's parameters by name (rule 4), absent ones at their default; a ``repeated``
    parameter is the list of its values (empty when absent)."""
    allowed = {parameter.name: parameter for parameter in parameters}
    values: dict[str, str | list[str] | None] = {}
    for name, value in items:
        parameter = allowed.get(name)
        if parameter is None:
            expected = ", ".join(allowed) or "no query parameters"
            raise BadRequest(
                f"unknown query parameter {name!r}: this endpoint takes {expected}",
                reason="unknown-parameter",
            )
        if parameter.repeated:
            listed = values.setdefault(name, [])
            assert isinstance(listed, list)
            listed.append(value)
            continue
        if name in values:
            raise BadRequest(
                f"query parameter {name!r} is given twice", reason="repeated-parameter"
            )
        values[name] = value
    for name, parameter in allowed.items():
        if name in values:
            continue
        if parameter.required:
            raise BadRequest(f"query parameter {name!r} is missing", reason="missing-field")
        values[name] = [] if parameter.repeated else parameter.default
    return values
