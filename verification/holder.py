"""Holder endpoints: sign-in, access log, credentials; status lists; online presentations.

    POST /v1/holder/challenges      (public)            -> 201 {nonce, audience, expires_at}
    POST /v1/holder/sessions        (public) {assertion} -> 201 {session_token, expires_at}
    GET  /v1/holder/access-log      (holder session)    -> 200 {entries, next_cursor}
    POST /v1/holder/credentials     (holder session) {profession} -> 201 {credential}
    GET  /v1/status-lists/{id}      (public)            -> 200 application/statuslist+jwt
    POST /v1/presentations          (verifier) {presentation, nonce, audience} -> 200

Rate limits per client address (``request.remote_addr``; behind reverse proxies set
``TRUSTED_PROXIES`` so that it is the client's address, see ``core.proxies``) on every
endpoint here except the verifier's, which is authenticated by client token. Limits are
``limits`` strings from the config or the environment (``HOLDER_RATE_LIMIT_CHALLENGES``,
``_SESSIONS``, ``_AUTHENTICATED``, ``_STATUS_LISTS``, e.g. ``"10 per minute"``), counted
with a moving window in ``RATE_LIMIT_STORAGE_URI``: ``memory://`` by default, per process
(with N workers an address gets up to N times the limit), or ``redis://host:port/db``,
shared by every worker and instance. An unreachable store answers 503 ``unavailable``.

Other settings (config or environment): ``PUBLIC_BASE_URL`` (absolute base of the status
list URIs in credentials, default ``http://127.0.0.1:8000``), ``STATUS_LIST_TTL``
(seconds, default 60), ``HOLDER_CREDENTIAL_LIFETIME`` (seconds, at most 24 hours).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from apiflask import APIBlueprint, Schema
from apiflask.fields import Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from flask import Flask, Response, current_app, request
from limits import parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from clients.auth import client_auth, current_client
from core.cli import ServiceGroup
from core.db import get_session
from core.errors import TooManyRequests, Unavailable
from licensing.professions import PROFESSION_CODES
from verification import credentials as creds
from verification import status_list as sl
from verification.holder_access_log import MAX_PAGE_SIZE, access_log
from verification.holder_presentations import check_presentation
from verification.holder_sessions import (
    current_holder,
    holder_auth,
    new_holder_challenge,
    prune_sessions,
    sign_in,
)
from verification.pipeline import Verifier, rfc3339

RATE_LIMIT_DEFAULTS = {
    "HOLDER_RATE_LIMIT_CHALLENGES": "30 per minute",
    "HOLDER_RATE_LIMIT_SESSIONS": "10 per minute",
    "HOLDER_RATE_LIMIT_AUTHENTICATED": "120 per minute",
    "HOLDER_RATE_LIMIT_STATUS_LISTS": "600 per minute",
}
_LIMITER_KEY = "holder_rate_limiter"

holder_bp = APIBlueprint("holder", __name__, tag="Holder")


# --- rate limiting ----------------------------------------------------------------------


def make_limiter(storage_uri: str | None) -> MovingWindowRateLimiter:
    """The limiter over ``storage_uri`` (default ``memory://``); a malformed URI or a
    missing storage driver fails here, at start-up, not on the first request."""
    storage = storage_from_string(storage_uri or "memory://", wrap_exceptions=True)
    return MovingWindowRateLimiter(storage)


def rate_limited(config_key: str) -> Callable:
    """Counts the request against ``config_key``'s limit for the client's address first."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            value = current_app.config.get(config_key) or RATE_LIMIT_DEFAULTS[config_key]
            address = request.remote_addr or "unknown"
            limiter: MovingWindowRateLimiter = current_app.extensions[_LIMITER_KEY]
            try:
                allowed = limiter.hit(parse(value), config_key, address)
            except StorageError:
                # Fail closed: without its counts the limit cannot be enforced.
                raise Unavailable("The rate limit store is unavailable.") from None
            if not allowed:
                raise TooManyRequests()
            return view(*args, **kwargs)

        return limited

    return decorate


# --- schemas ---------------------------------------------------------------------------


class HolderChallengeOut(Schema):
    nonce = String(required=True)
    audience = String(required=True)
    expires_at = String(required=True, metadata={"format": "date-time"})


class SessionIn(Schema):
    assertion = String(required=True, validate=Length(min=1, max=64 * 1024))


class SessionOut(Schema):
    session_token = String(required=True)
    expires_at = String(required=True, metadata={"format": "date-time"})


class AccessLogQuery(Schema):
    limit = Integer(load_default=50, validate=Range(min=1, max=MAX_PAGE_SIZE))
    cursor = String(load_default=None, validate=Length(min=1, max=200))


class AccessLogEntry(Schema):
    verifier = String(required=True)
    at = String(required=True, metadata={"format": "date-time"})
    profession = String(required=True, allow_none=True)
    outcome = String(required=True)


class AccessLogOut(Schema):
    entries = List(Nested(AccessLogEntry), required=True)
    next_cursor = String(required=True, allow_none=True)


class CredentialIn(Schema):
    profession = String(required=True, validate=OneOf(PROFESSION_CODES))


class CredentialOut(Schema):
    credential = String(required=True)


class PresentationIn(Schema):
    presentation = String(required=True, validate=Length(min=1, max=64 * 1024))
    nonce = String(required=True, validate=Length(min=1, max=creds.MAX_NONCE_CHARS))
    audience = String(required=True, validate=Length(min=1, max=creds.MAX_AUDIENCE_CHARS))


class PresentationHolder(Schema):
    name = String(required=True, allow_none=True)
    subject = String(required=True)


class PresentationLicence(Schema):
    status = String(required=True)
    registered_year = Integer(required=True, allow_none=True)
    suspended_until = String(required=True, allow_none=True, metadata={"format": "date"})


class PresentationOut(Schema):
    verification_id = String(required=True)
    outcome = String(required=True)
    profession = String(required=True)
    holder = Nested(PresentationHolder, required=True, allow_none=True)
    licence = Nested(PresentationLicence, required=True, allow_none=True)
    checked_at = String(required=True, metadata={"format": "date-time"})
    receipt = String(required=True)


_RATE_LIMITED = "rate_limited: too many requests from this address"
_HOLDER_AUTH = "unauthenticated: no valid holder session token (API client tokens are refused)"


# --- routes ----------------------------------------------------------------------------


@holder_bp.post("/v1/holder/challenges")
@rate_limited("HOLDER_RATE_LIMIT_CHALLENGES")
@holder_bp.output(HolderChallengeOut, status_code=201)
@holder_bp.doc(
    summary="A sign-in challenge for a licence holder (no client token)",
    responses={429: _RATE_LIMITED},
)
def create_holder_challenge():
    issued = new_holder_challenge(get_session())
    return {
        "nonce": issued.nonce,
        "audience": current_app.config["SERVICE_AUDIENCE"],
        "expires_at": rfc3339(issued.expires_at),
    }


@holder_bp.post("/v1/holder/sessions")
@rate_limited("HOLDER_RATE_LIMIT_SESSIONS")
@holder_bp.input(SessionIn, arg_name="body")
@holder_bp.output(SessionOut, status_code=201)
@holder_bp.doc(
    summary="Sign in with a card assertion over a holder challenge (10-minute session)",
    responses={
        400: "invalid_request: body not JSON, missing fields, not a compact JWS",
        401: "invalid_assertion, untrusted_certificate or invalid_nonce",
        403: "card_suspended, card_revoked or unknown_holder (the card is not registered)",
        413: "payload_too_large",
        429: _RATE_LIMITED,
        503: "revocation_unavailable",
    },
)
def create_holder_session(body: dict[str, Any]):
    issued = sign_in(get_session(), body["assertion"])
    return {"session_token": issued.session_token, "expires_at": rfc3339(issued.expires_at)}


@holder_bp.get("/v1/holder/access-log")
@rate_limited("HOLDER_RATE_LIMIT_AUTHENTICATED")
@holder_bp.auth_required(holder_auth)
@holder_bp.input(AccessLogQuery, location="query", arg_name="query")
@holder_bp.output(AccessLogOut)
@holder_bp.doc(
    summary="Who checked my licence, newest first (including rejected attempts with my card)",
    responses={400: "invalid_request: bad limit or cursor", 401: _HOLDER_AUTH, 429: _RATE_LIMITED},
)
def get_access_log(query: dict[str, Any]):
    page = access_log(
        get_session(), current_holder().holder_code, limit=query["limit"], cursor=query["cursor"]
    )
    return {
        "entries": [
            {
                "verifier": record.verifier_name,
                "at": rfc3339(record.at),
                "profession": record.profession,
                "outcome": record.outcome,
            }
            for record in page.entries
        ],
        "next_cursor": page.next_cursor,
    }


@holder_bp.post("/v1/holder/credentials")
@rate_limited("HOLDER_RATE_LIMIT_AUTHENTICATED")
@holder_bp.auth_required(holder_auth)
@holder_bp.input(CredentialIn, arg_name="body")
@holder_bp.output(CredentialOut, status_code=201)
@holder_bp.doc(
    summary="A portable SD-JWT VC for my active licence, bound to my card",
    responses={
        400: "invalid_request: unknown profession",
        401: _HOLDER_AUTH,
        403: "card_suspended or card_revoked: the signed-in card",
        404: "not_licensed: no licence for this profession",
        409: "licence_not_active: the licence is suspended or revoked",
        429: _RATE_LIMITED,
        503: "revocation_unavailable",
    },
)
def create_credential(body: dict[str, Any]):
    holder = current_holder()
    issued = creds.issue_credential(
        get_session(),
        holder_code=holder.holder_code,
        card_chain=holder.card_chain,
        profession=body["profession"],
    )
    return {"credential": issued.credential}


@holder_bp.get("/v1/status-lists/<string(maxlength=32):list_id>")
@rate_limited("HOLDER_RATE_LIMIT_STATUS_LISTS")
@holder_bp.doc(
    summary="A Token Status List (statuslist+jwt), as of this request",
    responses={
        200: {
            "description": "Status List Token",
            "content": {sl.MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        404: "not_found: no such status list",
        429: _RATE_LIMITED,
    },
)
def get_status_list(list_id: str):
    token = creds.build_status_list(get_session(), list_id)
    response = Response(token, status=200, mimetype=sl.MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-cache"
    return response


@holder_bp.post("/v1/presentations")
@holder_bp.auth_required(client_auth, roles=["verifier"])
@holder_bp.input(PresentationIn, arg_name="body")
@holder_bp.output(PresentationOut)
@holder_bp.doc(
    summary="Check a holder's SD-JWT VC presentation online: live status, like a verification",
    responses={
        400: "invalid_request: missing fields, not an SD-JWT",
        401: "unauthenticated or invalid_presentation (signature, key binding, nonce, "
        "audience, expiry, disclosures)",
        403: "forbidden (not a verifier), card_suspended or card_revoked",
        503: "revocation_unavailable",
    },
)
def check_presentation_route(body: dict[str, Any]):
    client = current_client()
    result = check_presentation(
        get_session(),
        presentation=body["presentation"],
        nonce=body["nonce"],
        audience=body["audience"],
        verifier=Verifier(client.id, client.name),
    )
    return result.as_json()


holder_cli = ServiceGroup("holder", help="Holder sessions and credentials.")


@holder_cli.command("prune")
def prune_command() -> None:
    """Delete sessions and credential records that expired more than a day ago."""
    session = get_session()
    sessions = prune_sessions(session)
    credentials = creds.prune_credentials(session)
    click.echo(f"removed {sessions} sessions and {credentials} credential records")


def init_app(app: Flask) -> None:
    """Registers the holder blueprint (``verification.init_app`` calls this)."""
    app.extensions[_LIMITER_KEY] = make_limiter(app.config.get("RATE_LIMIT_STORAGE_URI"))
    app.register_blueprint(holder_bp)
    app.cli.add_command(holder_cli)
