"""Monitoring endpoints.

Verifier (role ``verifier``; every answer covers the caller's own subscriptions only):

    PUT  /v1/monitoring/webhook   {url}            -> 200 {url, updated_at}
    GET  /v1/monitoring/events?after=&limit=        -> 200 {events: [SET...], next_cursor}
    GET  /v1/monitoring/deliveries?after=&limit=    -> 200 {deliveries, next_cursor}
    GET  /v1/monitoring/subjects?cursor=&limit=     -> 200 {subjects, next_cursor}
    POST /v1/monitoring/status    {subjects: [...]} -> 200 {statuses, not_monitored}

Holder (holder session):

    GET    /v1/holder/monitoring        -> 200 {monitoring: [...]}
    DELETE /v1/holder/monitoring/{id}   -> 204
"""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import current_app, request

from clients.auth import client_auth, current_client
from core.db import get_session
from core.errors import InvalidRequest
from core.rate_limits import rate_limited
from core.strict_json import allow_body
from holder.sessions import current_holder, holder_auth
from monitoring import service
from monitoring.schemas import (
    DeliveriesOut,
    DeliveriesQuery,
    EventsOut,
    EventsQuery,
    HolderMonitoringOut,
    RosterIn,
    RosterOut,
    SubjectsOut,
    SubjectsQuery,
    WebhookIn,
    WebhookOut,
)
from verification.outcome import rfc3339

monitoring_bp = APIBlueprint("monitoring", __name__, tag="Monitoring")
holder_monitoring_bp = APIBlueprint("holder_monitoring", __name__, tag="Holder")

#: A roster of 10,000 subjects is about 600 KB of JSON.
ROSTER_MAX_BODY = 1024 * 1024
_VERIFIER = {"roles": ["verifier"]}
_AUTH = {401: "unauthenticated", 403: "forbidden: not a verifier"}
_HOLDER_AUTH = "unauthenticated: no valid holder session token (API client tokens are refused)"


def _known_query_only(schema: type) -> None:
    # webargs drops unknown parameters silently; a misspelt one (``?afer=``) must not
    # quietly mean "from the start".
    if not set(request.args) <= set(schema().fields):
        raise InvalidRequest("Unknown query parameter; see the operation's parameters.")


def _status_json(status: service.MonitoredStatus) -> dict[str, Any]:
    return {
        "subject": status.subject,
        "monitoring_id": status.monitoring_id,
        "profession": status.profession,
        "status": status.status,
        "suspended_until": status.suspended_until.isoformat() if status.suspended_until else None,
        "since": rfc3339(status.since),
    }


@monitoring_bp.put("/v1/monitoring/webhook")
@monitoring_bp.auth_required(client_auth, **_VERIFIER)
@monitoring_bp.input(WebhookIn, arg_name="body")
@monitoring_bp.output(WebhookOut)
@monitoring_bp.doc(
    summary="Register the receiver of the caller's Security Event Tokens",
    responses={**_AUTH, 422: "invalid_webhook: not https, private target, credentials"},
)
def put_webhook(body: dict[str, Any]):
    webhook = service.set_webhook(
        get_session(), current_client().id, body["url"], current_app.config
    )
    return {"url": webhook.url, "updated_at": rfc3339(webhook.updated_at)}


@monitoring_bp.get("/v1/monitoring/events")
@monitoring_bp.auth_required(client_auth, **_VERIFIER)
@monitoring_bp.input(EventsQuery, location="query", arg_name="query")
@monitoring_bp.output(EventsOut)
@monitoring_bp.doc(
    summary="Poll the caller's events (SETs) after a cursor, oldest first",
    responses={**_AUTH, 400: "invalid_request: bad or unknown parameter"},
)
def get_events(query: dict[str, Any]):
    _known_query_only(EventsQuery)
    tokens, cursor = service.poll_events(
        current_app, get_session(), current_client().id, after=query["after"], limit=query["limit"]
    )
    return {"events": tokens, "next_cursor": cursor}


@monitoring_bp.get("/v1/monitoring/deliveries")
@monitoring_bp.auth_required(client_auth, **_VERIFIER)
@monitoring_bp.input(DeliveriesQuery, location="query", arg_name="query")
@monitoring_bp.output(DeliveriesOut)
@monitoring_bp.doc(
    summary="The log of push attempts to the caller's webhook, oldest first",
    responses={**_AUTH, 400: "invalid_request: bad or unknown parameter"},
)
def get_deliveries(query: dict[str, Any]):
    _known_query_only(DeliveriesQuery)
    rows, cursor = service.deliveries_page(
        get_session(), current_client().id, after=query["after"], limit=query["limit"]
    )
    return {
        "deliveries": [
            {
                "jti": row.jti,
                "attempt": row.attempt,
                "at": rfc3339(row.at),
                "outcome": row.outcome,
                "http_status": row.http_status,
            }
            for row in rows
        ],
        "next_cursor": cursor,
    }


@monitoring_bp.get("/v1/monitoring/subjects")
@monitoring_bp.auth_required(client_auth, **_VERIFIER)
@monitoring_bp.input(SubjectsQuery, location="query", arg_name="query")
@monitoring_bp.output(SubjectsOut)
@monitoring_bp.doc(
    summary="Every subject the caller monitors, with its current status",
    responses={**_AUTH, 400: "invalid_request: bad or unknown parameter"},
)
def get_subjects(query: dict[str, Any]):
    _known_query_only(SubjectsQuery)
    page, cursor = service.subjects_page(
        get_session(), current_client().id, cursor=query["cursor"], limit=query["limit"]
    )
    return {"subjects": [_status_json(s) for s in page], "next_cursor": cursor}


@monitoring_bp.post("/v1/monitoring/status")
@monitoring_bp.auth_required(client_auth, **_VERIFIER)
@monitoring_bp.input(RosterIn, arg_name="body")
@monitoring_bp.output(RosterOut)
@monitoring_bp.doc(
    summary="Current status of up to 10,000 of the caller's monitored subjects",
    responses={
        **_AUTH,
        400: "invalid_request: more than 10,000 subjects, or a malformed subject",
        413: "payload_too_large: over 1 MiB",
    },
)
@allow_body(ROSTER_MAX_BODY)
def post_roster_status(body: dict[str, Any]):
    found, missing = service.roster_statuses(get_session(), current_client().id, body["subjects"])
    return {"statuses": [_status_json(s) for s in found], "not_monitored": missing}


@holder_monitoring_bp.get("/v1/holder/monitoring")
@rate_limited("HOLDER_RATE_LIMIT_AUTHENTICATED")
@holder_monitoring_bp.auth_required(holder_auth)
@holder_monitoring_bp.output(HolderMonitoringOut)
@holder_monitoring_bp.doc(
    summary="Which verifiers monitor my licences (with my consent)",
    responses={401: _HOLDER_AUTH, 429: "rate_limited"},
)
def get_holder_monitoring():
    subscriptions = service.holder_subscriptions(get_session(), current_holder().holder_code)
    return {
        "monitoring": [
            {
                "id": s.id,
                "verifier": s.verifier_name,
                "profession": s.profession,
                "started_at": rfc3339(s.started_at),
            }
            for s in subscriptions
        ]
    }


@holder_monitoring_bp.delete("/v1/holder/monitoring/<string(maxlength=32):subscription_id>")
@rate_limited("HOLDER_RATE_LIMIT_AUTHENTICATED")
@holder_monitoring_bp.auth_required(holder_auth)
@holder_monitoring_bp.output({}, status_code=204)
@holder_monitoring_bp.doc(
    summary="End a verifier's monitoring of my licence (the verifier is told)",
    responses={
        401: _HOLDER_AUTH,
        404: "not_found: no such running monitoring of yours",
        429: "rate_limited",
    },
)
def delete_holder_monitoring(subscription_id: str):
    service.end_monitoring_by_holder(get_session(), current_holder().holder_code, subscription_id)
    return "", 204
