"""Holder endpoints: sign-in, access log, credentials; status lists; online presentations.

    POST /v1/holder/challenges      (public)            -> 201 {nonce, audience, expires_at}
    POST /v1/holder/sessions        (public) {assertion} -> 201 {session_token, expires_at}
    DELETE /v1/holder/sessions      (holder session)    -> 204 (signed out)
    GET  /v1/holder/access-log      (holder session)    -> 200 {entries, next_cursor}
    POST /v1/holder/credentials     (holder session) {profession} -> 201 {credential}
    GET  /v1/status-lists/{id}      (public)            -> 200 application/statuslist+jwt
    POST /v1/presentations          (verifier) {presentation, nonce, audience} -> 200
                                    (nonce from POST /v1/challenges, kind presentation)

Every endpoint here except the verifier's (authenticated by client token) is rate
limited per client address (``core.rate_limits``). Settings and their defaults:
``core/config.py`` (``DEFAULTS``).
"""

from __future__ import annotations

from typing import Any

from apiflask import APIBlueprint
from flask import Response, request

from clients.auth import client_auth, current_client
from core.db import get_session
from core.rate_limits import rate_limited
from holder import credentials as creds
from holder import status_list as sl
from holder.access_log import access_log
from holder.presentations import check_presentation
from holder.schemas import (
    AccessLogOut,
    AccessLogQuery,
    CredentialIn,
    CredentialOut,
    HolderChallengeOut,
    PresentationIn,
    SessionIn,
    SessionOut,
)
from holder.sessions import (
    count_holder_challenge,
    current_holder,
    holder_audience,
    holder_auth,
    new_holder_challenge,
    sign_in,
    sign_out,
)
from verification.outcome import Verifier, rfc3339
from verification.schemas import VerificationOut

holder_bp = APIBlueprint("holder", __name__, tag="Holder")


_RATE_LIMITED = "rate_limited: too many requests from this address"
_HOLDER_AUTH = (
    "unauthenticated: no valid holder session token (API client tokens are refused), or "
    "the session's card is now on hold or revoked"
)


# --- routes ----------------------------------------------------------------------------


@holder_bp.post("/v1/holder/challenges")
@rate_limited("HOLDER_RATE_LIMIT_CHALLENGES")
@holder_bp.output(HolderChallengeOut, status_code=201)
@holder_bp.doc(
    summary="A sign-in challenge for a licence holder (no client token)",
    responses={429: _RATE_LIMITED},
)
def create_holder_challenge():
    count_holder_challenge()
    issued = new_holder_challenge(get_session())
    return {
        "nonce": issued.nonce,
        "audience": holder_audience(),
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


@holder_bp.delete("/v1/holder/sessions")
@rate_limited("HOLDER_RATE_LIMIT_AUTHENTICATED")
@holder_bp.auth_required(holder_auth)
@holder_bp.output({}, status_code=204)
@holder_bp.doc(
    summary="Sign out: the session token stops working",
    responses={401: _HOLDER_AUTH, 429: _RATE_LIMITED},
)
def delete_holder_session():
    sign_out(get_session(), current_holder())
    return "", 204


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
    summary="A Token Status List (statuslist+jwt), rebuilt at most once per STATUS_LIST_TTL",
    description="Served with an ETag: a request with If-None-Match naming it gets 304.",
    responses={
        200: {
            "description": "Status List Token",
            "content": {sl.MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        304: "Not modified: the If-None-Match ETag is current",
        404: "not_found: no such status list",
        429: _RATE_LIMITED,
    },
)
def get_status_list(list_id: str):
    published = creds.published_status_list(get_session(), list_id)
    response = Response(published.token, status=200, mimetype=sl.MEDIA_TYPE)
    response.set_etag(published.etag)
    response.headers["Cache-Control"] = "no-cache"  # revalidate: cheap with the ETag
    return response.make_conditional(request)


@holder_bp.post("/v1/presentations")
@holder_bp.auth_required(client_auth, roles=["verifier"])
@holder_bp.input(PresentationIn, arg_name="body")
@holder_bp.output(VerificationOut)
@holder_bp.doc(
    summary="Check a holder's SD-JWT VC presentation online: live status, like a verification",
    responses={
        400: "invalid_request: missing fields, not an SD-JWT",
        401: "unauthenticated or invalid_presentation (signature, key binding, nonce not "
        "issued to this client or used, audience not this client's, expiry, disclosures)",
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
    return result
