"""The monitoring domain's errors (problem+json with a stable ``code``, fixed detail)."""

from __future__ import annotations

from core.errors import InvalidRequest, NotFound, ServiceError


class InvalidWebhook(ServiceError):
    status, code, title = 422, "invalid_webhook", "Webhook not acceptable"
    default_detail = (
        "The webhook URL must be https:// with a public host name or address, without "
        "credentials or a fragment."
    )


class SubscriptionNotFound(NotFound):
    default_detail = "No running monitoring with this id is yours; list them first."


class TooManySubjects(InvalidRequest):
    default_detail = "At most 10,000 subjects per call; split the roster into several calls."


class InvalidCursor(InvalidRequest):
    default_detail = "The cursor is not valid; start again without it."
