"""One small error hierarchy; every error leaves the service as RFC 9457 problem+json.

Each class carries a stable ``code``. ``detail`` is fixed text chosen by the code that
raises, never an exception message or a piece of client input.
"""

from __future__ import annotations

import logging
from typing import ClassVar

from apiflask import APIFlask
from apiflask.exceptions import HTTPError
from flask import Response, json, request
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

log = logging.getLogger("licence_service.errors")

PROBLEM_JSON = "application/problem+json"
#: How much of an oversized body is read (and discarded) before the 413 answer, so
#: that the client, still uploading, gets to read the answer instead of a reset.
DISCARD_LIMIT = 1024 * 1024


class ServiceError(Exception):
    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    default_detail: ClassVar[str] = "The service could not complete the request."

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.default_detail
        super().__init__(self.detail)


class InvalidRequest(ServiceError):
    status, code, title = 400, "invalid_request", "Invalid request"
    default_detail = "The request is malformed."


class Unauthenticated(ServiceError):
    status, code, title = 401, "unauthenticated", "Unauthenticated"
    default_detail = "A valid bearer token is required."


class Forbidden(ServiceError):
    status, code, title = 403, "forbidden", "Forbidden"
    default_detail = "This client's role may not use this endpoint."


class NotFound(ServiceError):
    status, code, title = 404, "not_found", "Not found"
    default_detail = "No such resource."


class MethodNotAllowed(ServiceError):
    status, code, title = 405, "method_not_allowed", "Method not allowed"
    default_detail = "This method is not allowed on this resource."


class Conflict(ServiceError):
    status, code, title = 409, "conflict", "Conflict"
    default_detail = "The resource already exists."


class PayloadTooLarge(ServiceError):
    status, code, title = 413, "payload_too_large", "Payload too large"
    default_detail = "The request exceeds the size limits."


class UnsupportedMediaType(ServiceError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"
    default_detail = "The request body has the wrong content type."


class Unprocessable(ServiceError):
    status, code, title = 422, "unprocessable", "Unprocessable"
    default_detail = "The request is well-formed but cannot be processed."


class TooManyRequests(ServiceError):
    status, code, title = 429, "rate_limited", "Too many requests"
    default_detail = "Too many requests from this address; try again later."


class Unavailable(ServiceError):
    status, code, title = 503, "unavailable", "Service unavailable"
    default_detail = "A dependency of the service is unavailable."


_HTTP_STATUS_ERRORS: dict[int, type[ServiceError]] = {
    cls.status: cls
    for cls in (
        InvalidRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
        Unavailable,
    )
}


def _problem(status: int, code: str, title: str, detail: str) -> dict:
    return {"type": "about:blank", "title": title, "status": status, "code": code, "detail": detail}


def problem_body(error: ServiceError) -> dict:
    """The problem details an error is answered with, as data (kept for later reading)."""
    return _problem(error.status, error.code, error.title, error.detail)


def problem_response(
    status: int, code: str, title: str, detail: str, headers: dict | None = None, **extra
) -> Response:
    body = _problem(status, code, title, detail)
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: ServiceError) -> Response:
    headers = {"Retry-After": "60"} if error.status in (429, 503) else None
    return problem_response(error.status, error.code, error.title, error.detail, headers)


def _from_http_error(error: HTTPError) -> Response:
    """apiflask routes werkzeug errors, auth failures and validation errors here."""
    if error.status_code in (400, 422) and isinstance(error.detail, dict) and error.detail:
        # Validation error: name the fields, never echo the submitted values.
        fields = sorted(
            {
                field
                for location in error.detail.values()
                if isinstance(location, dict)
                for field in location
            }
        )
        return problem_response(
            400,
            "invalid_request",
            "Invalid request",
            "Invalid or missing fields." if fields else InvalidRequest.default_detail,
            fields=fields,
        )
    cls = _HTTP_STATUS_ERRORS.get(error.status_code)
    if cls is None:
        cls = InvalidRequest if 400 <= error.status_code < 500 else ServiceError
    headers = {k: v for k, v in (error.headers or {}).items() if k.lower() in ("allow",)}
    return problem_response(cls.status, cls.code, cls.title, cls.default_detail, headers)


def _discard_unread_body() -> None:
    # Only werkzeug's 413 comes before the body is read; the stream is bounded by
    # Content-Length (or terminated by the server for a chunked body).
    stream = get_input_stream(request.environ)
    remaining = DISCARD_LIMIT
    while remaining > 0:
        chunk = stream.read(min(64 * 1024, remaining))
        if not chunk:
            break
        remaining -= len(chunk)


def register_error_handlers(app: APIFlask) -> None:
    app.error_processor(_from_http_error)
    app.register_error_handler(ServiceError, error_response)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_error: RequestEntityTooLarge) -> Response:
        _discard_unread_body()
        return error_response(PayloadTooLarge())

    @app.errorhandler(DataError)
    def _unstorable_value(_error: DataError) -> Response:
        # A value the database refuses to store (a NUL character on PostgreSQL, a
        # number out of its range): the client's mistake, not an outage.
        log.info("value refused by the database")
        return error_response(
            InvalidRequest("A value in the request cannot be stored (e.g. a NUL character).")
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def _database_unavailable(error: Exception) -> Response:
        log.error("database error", extra={"error_class": type(error).__name__})
        return error_response(Unavailable("The database is unavailable."))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPError):
            return _from_http_error(error)
        if isinstance(error, HTTPException):
            cls = _HTTP_STATUS_ERRORS.get(error.code or 500, ServiceError)
            return error_response(cls())
        # Only the class name is logged: exception text may carry request data.
        log.error("unhandled error", extra={"error_class": type(error).__name__})
        return error_response(ServiceError())
