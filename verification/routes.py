"""HTTP: challenges and their card requests, verifications (by the verifier, or by the
card app answering a challenge directly), the card authority's CRL feed, the JWKS."""

from __future__ import annotations

import json
import re
from typing import Any

from apiflask import APIBlueprint
from flask import Response, current_app, request

from clients.auth import client_auth, current_client
from clients.models import ApiClient
from clients.service import presentation_audience
from core.config import public_base_url
from core.db import get_session, utcnow
from core.errors import NotFound, UnsupportedMediaType
from core.rate_limits import rate_limited
from core.signing import get_keyring
from verification import schemas
from verification.challenges import (
    MONITORING,
    ChallengePurpose,
    ChallengeState,
    challenge_state,
    create_challenge,
    find_verifier_challenge,
)
from verification.history import (
    FHIR_JSON,
    fhir_verification_result,
    find_verification,
    list_verifications,
)
from verification.outcome import Verifier, restore_answer
from verification.pipeline import run_verifier_flow
from verification.revocation import MAX_CRL_BYTES, import_crl

bp = APIBlueprint("verification", __name__, tag="Verification")
CRL_MEDIA_TYPE = "application/pkix-crl"
CARD_REQUEST_TYPE = "card-request+jwt"
JWT_MEDIA_TYPE = "application/jwt"
CHALLENGE_ID = "<string(maxlength=32):challenge_id>"
_VERIFICATION_ID = re.compile(r"[0-9a-f]{32}")


def raw_request_body(content_type: str, description: str):
    """Documents a non-JSON request body (apiflask's ``input`` knows JSON and forms only).

    Place it directly above the view function: apiflask reads ``view._spec`` and the auth
    wrapper copies it (``functools.wraps``).
    """

    def decorate(view):
        spec = view.__dict__.setdefault("_spec", {})
        spec["body"] = {"type": "string", "format": "binary", "description": description}
        spec["content_type"] = content_type
        return view

    return decorate


_VERIFY_ERRORS = {
    400: "invalid_request: body not JSON, missing fields, not a compact JWS",
    401: "unauthenticated, invalid_assertion (also: the assertion names another verifier), "
    "untrusted_certificate or invalid_nonce",
    403: "forbidden (not a verifier), card_suspended or card_revoked",
    413: "payload_too_large: body over 64 KiB, JWS header over 16 KiB, over 4 x5c entries",
    503: "revocation_unavailable: no valid, unexpired CRL for the card's issuer "
    "(the detail names the CA and what to do)",
}
_RATE_LIMITED = "rate_limited: too many requests from this address"
_NOT_FOUND = "not_found: unknown, expired or already answered challenge"
_UNKNOWN = "not_found: no such challenge"


def _challenge_uris(challenge_id: str) -> dict[str, str]:
    base = public_base_url(current_app.config)
    return {
        "request_uri": f"{base}/r/{challenge_id}",
        "status_uri": f"{base}/v1/challenges/{challenge_id}",
        "response_uri": f"{base}/v1/challenges/{challenge_id}/response",
    }


@bp.post("/v1/challenges")
@bp.auth_required(client_auth, roles=["verifier"])
@bp.input(schemas.ChallengeIn, arg_name="body")
@bp.output(schemas.ChallengeOut, status_code=201)
@bp.doc(
    summary="Issue a single-use challenge for one profession",
    description="The nonce carries 256 random bits, lives 5 minutes, and can be used only "
    "by the calling verifier, for the asked profession. The holder's card app answers a "
    "verification challenge from `request_uri` (cross-device flow); the verifier reads the "
    "answer at `status_uri`. A `presentation` challenge is for `POST /v1/presentations`.",
    responses={
        400: "invalid_request",
        401: "unauthenticated",
        403: "forbidden (not a verifier; kind presentation: no registered audience)",
        429: "rate_limited: CHALLENGE_MAX_OUTSTANDING unexpired, unused challenges",
    },
)
def post_challenge(body):
    client = current_client()
    session = get_session()
    purpose, audience = ChallengePurpose.VERIFIER, current_app.config["SERVICE_AUDIENCE"]
    if body["kind"] == "presentation":
        purpose, audience = ChallengePurpose.PRESENTATION, presentation_audience(session, client.id)
    issued = create_challenge(
        session,
        purpose,
        client_id=client.id,
        profession=body["profession"],
        # Consent is asked only by a card request, which a presentation has none of.
        monitoring=body["monitoring"] and purpose is ChallengePurpose.VERIFIER,
        max_outstanding=current_app.config["CHALLENGE_MAX_OUTSTANDING"],
    )
    answer = {
        "challenge_id": issued.challenge_id,
        "nonce": issued.nonce,
        "audience": audience,
        "profession": issued.profession,
        "expires_at": issued.expires_at,
    }
    if purpose is ChallengePurpose.VERIFIER:  # the card app answers only these
        uris = _challenge_uris(issued.challenge_id)
        answer.update(request_uri=uris["request_uri"], status_uri=uris["status_uri"])
    return answer


@bp.post("/v1/verifications")
@bp.auth_required(client_auth, roles=["verifier"])
@bp.input(schemas.VerificationIn, arg_name="body")
@bp.output(schemas.VerificationOut, status_code=200)
@bp.doc(
    summary="Verify a card assertion: is this person licensed for the challenge's profession?",
    description="Runs the numbered verification pipeline. Rejections never describe the "
    "holder, and a nonce is consumed only by a fully verified assertion.",
    responses=_VERIFY_ERRORS,
)
def post_verification(body):
    client = current_client()
    return run_verifier_flow(
        get_session(), body["assertion"], Verifier(client.id, client.name), now=utcnow()
    )


def _challenge_and_client(challenge_id: str, *, open_only: bool) -> tuple[Any, ApiClient]:
    """A verifier challenge (with ``open_only``, one still waiting for its answer) and
    its client, which must be active."""
    session = get_session()
    challenge = find_verifier_challenge(session, challenge_id)
    if challenge is None or (
        open_only
        and challenge_state(challenge, utcnow())
        in (ChallengeState.COMPLETED, ChallengeState.EXPIRED)
    ):
        raise NotFound("No open challenge has this id: ask the verifier for a new one.")
    client = session.get(ApiClient, challenge.client_id)
    if client is None or not client.active:
        raise NotFound("No open challenge has this id: ask the verifier for a new one.")
    return challenge, client


@bp.get(f"/r/{CHALLENGE_ID}")
@rate_limited("CARD_RATE_LIMIT_REQUESTS")
@bp.doc(
    summary="The signed card request of a challenge, for the holder's card app (public)",
    description="ES256 JWS, typ card-request+jwt, kid in /.well-known/jwks.json: who asks "
    "(the verifier's registered name), for which profession, with which consent, and where "
    "to post the card's assertion.",
    responses={
        200: {
            "description": "Card request",
            "content": {JWT_MEDIA_TYPE: {"schema": {"type": "string"}}},
        },
        404: _NOT_FOUND,
        429: _RATE_LIMITED,
    },
)
def get_card_request(challenge_id: str):
    challenge, client = _challenge_and_client(challenge_id, open_only=True)
    now = utcnow()
    claims = {
        "iss": current_app.config["SERVICE_AUDIENCE"],
        "challenge_id": challenge.id,
        "nonce": challenge.nonce,
        "aud": current_app.config["SERVICE_AUDIENCE"],
        "verifier": {"id": client.id, "name": client.name},
        "profession": challenge.profession,
        "consent": [MONITORING] if challenge.monitoring_requested else [],
        "response_uri": _challenge_uris(challenge.id)["response_uri"],
        "iat": int(now.timestamp()),
        "exp": int(challenge.expires_at.timestamp()),
    }
    token = get_keyring().sign(claims, CARD_REQUEST_TYPE)
    return Response(
        token, status=200, mimetype=JWT_MEDIA_TYPE, headers={"Cache-Control": "no-store"}
    )


@bp.post(f"/v1/challenges/{CHALLENGE_ID}/response")
@rate_limited("CARD_RATE_LIMIT_RESPONSES")
@bp.input(schemas.VerificationIn, arg_name="body")
@bp.output(schemas.CardResponseOut, status_code=200)
@bp.doc(
    summary="The card app answers a challenge with the card's assertion (no client token)",
    description="Runs the same pipeline as POST /v1/verifications for the challenge's "
    "verifier; the card app learns only the outcome and who asked. The verifier reads the "
    "result at the challenge's status_uri.",
    responses={**_VERIFY_ERRORS, 404: _UNKNOWN, 429: _RATE_LIMITED},
)
def post_card_response(challenge_id: str, body):
    # Answered or expired challenges go through the pipeline too: invalid_nonce, as on
    # POST /v1/verifications.
    challenge, client = _challenge_and_client(challenge_id, open_only=False)
    verifier = Verifier(client.id, client.name)
    result = run_verifier_flow(
        get_session(), body["assertion"], verifier, challenge_id=challenge.id, now=utcnow()
    )
    return {"outcome": result.outcome, "verifier": {"id": client.id, "name": client.name}}


@bp.get(f"/v1/challenges/{CHALLENGE_ID}")
@bp.auth_required(client_auth, roles=["verifier"])
@bp.output(schemas.ChallengeStateOut)
@bp.doc(
    summary="The state of this verifier's challenge and, once answered, its result",
    responses={
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found: no such challenge of this verifier",
    },
)
def get_challenge(challenge_id: str):
    session, client = get_session(), current_client()
    challenge = find_verifier_challenge(session, challenge_id, client_id=client.id)
    if challenge is None:
        raise NotFound("This verifier has no challenge with this id.")
    state = challenge_state(challenge, utcnow())
    verification = None
    if state is ChallengeState.COMPLETED and challenge.verification is not None:
        verification = restore_answer(
            session, challenge.verification, Verifier(client.id, client.name), current_app
        )
    return {
        "state": state.value,
        "verification": verification,
        "error": challenge.rejection if state is ChallengeState.REJECTED else None,
    }


@bp.get("/v1/verifications")
@bp.auth_required(client_auth, roles=["verifier"])
@bp.input(schemas.VerificationListQuery, location="query", arg_name="query")
@bp.output(schemas.VerificationListOut)
@bp.doc(
    summary="This verifier's own verifications, oldest first (cursor-paginated)",
    responses={
        400: "invalid_request: bad cursor or limit",
        401: "unauthenticated",
        403: "forbidden",
    },
)
def get_verifications(query):
    client = current_client()
    records, next_cursor = list_verifications(
        get_session(),
        Verifier(client.id, client.name),
        current_app,
        after=query["after"],
        limit=query["limit"],
    )
    return {"verifications": [r.as_json() for r in records], "next_cursor": next_cursor}


@bp.get("/v1/verifications/<string(maxlength=64):verification_id>")
@bp.auth_required(client_auth, roles=["verifier"])
@bp.output(schemas.VerificationRecordOut)
@bp.doc(
    summary="One of this verifier's verifications; as an HL7 FHIR R5 VerificationResult "
    "with Accept: application/fhir+json",
    responses={
        200: {
            "description": "The verification (JSON), or a FHIR VerificationResult",
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/VerificationRecordOut"}
                },
                FHIR_JSON: {
                    "example": {
                        "resourceType": "VerificationResult",
                        "status": "validated",
                        "validationType": {"coding": [{"code": "primary"}]},
                    }
                },
            },
        },
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found: no verification of this verifier with this id",
    },
)
def get_verification(verification_id: str):
    client = current_client()
    if not _VERIFICATION_ID.fullmatch(verification_id):  # never a hostile value to the database
        raise NotFound("This verifier has no verification with this id.")
    record = find_verification(
        get_session(), verification_id, Verifier(client.id, client.name), current_app
    )
    if record is None:
        raise NotFound("This verifier has no verification with this id.")
    wanted = request.accept_mimetypes.best_match(["application/json", FHIR_JSON])
    if wanted == FHIR_JSON:
        return Response(
            json.dumps(fhir_verification_result(record, current_app), ensure_ascii=False),
            mimetype=FHIR_JSON,
        )
    return record.as_json()


@bp.put("/v1/card-authority/crl")
@bp.auth_required(client_auth, roles=["card_authority"])
@bp.output({}, status_code=204)
@bp.doc(
    summary="Feed a full CRL (DER, application/pkix-crl) signed by a CA of the trust bundle",
    responses={
        401: "unauthenticated",
        403: "forbidden",
        413: "payload_too_large",
        415: "unsupported_media_type: the body must be application/pkix-crl",
        422: "invalid_crl: signature, issuer, cRLSign, delta, stale or lower CRLNumber",
    },
)
@raw_request_body(CRL_MEDIA_TYPE, "A full CRL, DER encoded.")
def put_crl():
    if request.mimetype != CRL_MEDIA_TYPE:
        raise UnsupportedMediaType("The body must be a DER CRL (application/pkix-crl).")
    request.max_content_length = MAX_CRL_BYTES  # CRLs may exceed the 64 KiB API limit
    import_crl(get_session(), request.get_data(cache=False), actor=current_client().id)
    return "", 204


@bp.get("/.well-known/jwks.json")
@bp.output(schemas.JwksOut)
@bp.doc(summary="The service's public signing keys (receipts, credentials, status lists)")
def get_jwks():
    return get_keyring().jwks(), 200, {"Cache-Control": "public, max-age=300"}
