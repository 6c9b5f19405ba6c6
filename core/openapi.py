"""OpenAPI post-processing: errors are documented as they are sent.

apiflask generates the spec from the same marshmallow schemas that validate requests;
this processor only corrects what apiflask cannot know: every 4xx/5xx response is an
RFC 9457 ``application/problem+json`` body (``Problem``), and request bodies that a
route declares are required.
"""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask

from core.errors import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "detail": {"type": "string", "description": "For humans; never echoes input."},
        "fields": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": True,
}


def _problem_responses(spec: dict[str, Any]) -> None:
    for path_item in spec.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if str(status)[0] in "45":
                    response["content"] = {
                        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    }
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True


def _drop_unused_error_schemas(spec: dict[str, Any]) -> None:
    schemas = spec.get("components", {}).get("schemas", {})
    for name in ("HTTPError", "ValidationError"):
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA


def process_spec(spec: dict[str, Any]) -> dict[str, Any]:
    _problem_responses(spec)
    _drop_unused_error_schemas(spec)
    return spec


def init_app(app: APIFlask) -> None:
    app.spec_processor(process_spec)
