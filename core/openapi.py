"""The API description (``/openapi.json``) and its documentation page (``/docs``).

apiflask generates the spec from the same marshmallow schemas that validate requests;
this processor adds what apiflask cannot know, so that every operation documents what
it really answers:

- every 4xx/5xx response is an RFC 9457 ``application/problem+json`` body (``Problem``,
  whose ``code`` is an enum of every error code the service has);
- statuses that come from shared machinery: 401/403 where a bearer token is required,
  400/413/415 where a JSON body is taken, 503 where a database is used (every operation
  that can fail for a client's reason);
- an ``operationId`` (``<method>_<blueprint>_<view>``) and an example for every request
  and response body (built from the schema where the route gives none).

``/docs`` is Swagger UI served from ``core/static/swagger-ui`` (swagger-ui-dist, pinned
in its ``package.json``): the page works offline and loads nothing from elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apiflask import APIBlueprint, APIFlask

from core.errors import (
    PROBLEM_JSON,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    Unprocessable,
    UnsupportedMediaType,
)

SWAGGER_UI = Path(__file__).resolve().parent / "static" / "swagger-ui"
ASSETS_PATH = "/docs/assets"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "detail": {"type": "string", "description": "What to do next; never echoes input."},
        "fields": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": True,
}

#: Statuses that shared machinery answers, by what the operation has.
_WITH_TOKEN = {401: "Missing or invalid bearer token", 403: "This client's role may not"}
_WITH_JSON_BODY = {
    400: "The body is not valid JSON or misses fields",
    413: "The body is over the size limit",
    415: "The body is not sent as application/json",
}
_WITH_DATABASE = {503: "A dependency (database, rate limit store) is unavailable"}
_GENERIC = {
    cls.status: cls
    for cls in (
        InvalidRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
        Unavailable,
    )
}

_STRING_EXAMPLES = {
    "date-time": "2026-04-01T09:30:00Z",
    "date": "2026-04-01",
    "uuid": "3f2b8c1e-6a4d-4f7b-9e21-0c5d8a7b6e90",
    "uri": "https://licences.example/v1/status-lists/1",
    "email": "hr@hospital.example",
}


def error_classes() -> list[type[ServiceError]]:
    """Every ``ServiceError`` subclass loaded (each domain's errors, once imported)."""
    found, pending = [], [ServiceError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _problem_example(status: int, description: str) -> dict[str, Any]:
    """The first error the response's description names, else the status's generic one."""
    candidates = [c for c in error_classes() if c.status == status]
    named = [c for c in candidates if c.code in description]
    named.sort(key=lambda c: description.find(c.code))
    cls = named[0] if named else _GENERIC.get(status, ServiceError)
    return {
        "type": "about:blank",
        "title": cls.title,
        "status": status,
        "code": cls.code,
        "detail": cls.default_detail,
    }


def _example(schema: dict[str, Any], schemas: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value for a JSON schema (the schema's own example first)."""
    if "$ref" in schema:
        schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    if "allOf" in schema or "oneOf" in schema or "anyOf" in schema:
        choices = schema.get("allOf") or schema.get("oneOf") or schema.get("anyOf")
        return _example(choices[0], schemas, depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        if depth > 5:
            return {}
        return {
            name: _example(sub, schemas, depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [_example(schema.get("items", {}), schemas, depth + 1)] if depth <= 5 else []
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return _STRING_EXAMPLES.get(schema.get("format", ""), "string")


def _add_examples(content: dict[str, Any], schemas: dict[str, Any]) -> None:
    for media in content.values():
        if "example" not in media and "examples" not in media and "schema" in media:
            media["example"] = _example(media["schema"], schemas)


def _document_operation(
    method: str, operation: dict[str, Any], spec: dict[str, Any], schemas: dict[str, Any]
) -> None:
    responses = operation.setdefault("responses", {})
    extra: dict[int, str] = {}
    if operation.get("security"):
        extra.update(_WITH_TOKEN)
    body = operation.get("requestBody")
    if body is not None:
        body["required"] = True
        if "application/json" in body.get("content", {}):
            extra.update(_WITH_JSON_BODY)
    if any(str(status)[0] in "45" for status in responses) or extra:
        extra.update(_WITH_DATABASE)
    for status, description in extra.items():
        responses.setdefault(str(status), {"description": description})
    for status, response in responses.items():
        if str(status)[0] in "45":
            response["content"] = {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": _problem_example(int(status), response.get("description", "")),
                }
            }
        elif "content" in response:
            _add_examples(response["content"], schemas)
    if body is not None:
        _add_examples(body.get("content", {}), schemas)
    operation.setdefault("operationId", f"{method}_{operation.get('summary', 'operation')}")


def process_spec(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPError", "ValidationError"):
        schemas.pop(name, None)
    problem = {**PROBLEM_SCHEMA, "properties": dict(PROBLEM_SCHEMA["properties"])}
    problem["properties"]["code"] = {
        **PROBLEM_SCHEMA["properties"]["code"],
        "enum": sorted({cls.code for cls in error_classes()}),
    }
    schemas["Problem"] = problem
    for path_item in spec.get("paths", {}).values():
        for method, operation in path_item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _document_operation(method, operation, spec, schemas)
    return spec


def init_app(app: APIFlask) -> None:
    app.config.update(
        VALIDATION_ERROR_STATUS_CODE=400,
        SPEC_FORMAT="json",
        AUTO_OPERATION_ID=True,
        INFO={
            "description": "Verifies doctor and nurse licences with My Number card "
            "assertions, without revealing any number."
        },
        SWAGGER_UI_CSS=f"{ASSETS_PATH}/swagger-ui.css",
        SWAGGER_UI_BUNDLE_JS=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        SWAGGER_UI_STANDALONE_PRESET_JS=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        DOCS_FAVICON=f"{ASSETS_PATH}/favicon-32x32.png",
        # Swagger UI would otherwise ask an online validator for a badge.
        SWAGGER_UI_CONFIG={"validatorUrl": None},
    )
    app.register_blueprint(
        APIBlueprint(
            "swagger_ui",
            __name__,
            static_folder=str(SWAGGER_UI),
            static_url_path=ASSETS_PATH,
            enable_openapi=False,
        )
    )
    app.spec_processor(process_spec)
