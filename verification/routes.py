"""HTTP: challenges, verifications, the card authority's CRL feed, the JWKS."""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app, jsonify, request

from clients.auth import client_auth, current_client
from clients.service import presentation_audience
from core.db import get_session, utcnow
from core.errors import UnsupportedMediaType
from core.signing import get_keyring
from verification import schemas
from verification.challenges import ChallengePurpose, create_challenge
from verification.pipeline import Verifier, rfc3339, run_verifier_flow
from verification.revocation import MAX_CRL_BYTES, import_crl

bp = APIBlueprint("verification", __name__, tag="Verification")
CRL_MEDIA_TYPE = "application/pkix-crl"


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
    401: "unauthenticated, invalid_assertion, untrusted_certificate or invalid_nonce",
    403: "forbidden (not a verifier), card_suspended or card_revoked",
    413: "payload_too_large: body over 64 KiB, JWS header over 16 KiB, over 4 x5c entries",
    503: "revocation_unavailable: no valid, unexpired CRL for the card's issuer",
}


@bp.post("/v1/challenges")
@bp.auth_required(client_auth, roles=["verifier"])
@bp.input(schemas.ChallengeIn, arg_name="body")
@bp.output(schemas.ChallengeOut, status_code=201)
@bp.doc(
    summary="Issue a single-use challenge for one profession",
    description="The nonce carries 256 random bits, lives 5 minutes, and can be used only "
    "by the calling verifier, for the asked profession.",
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
        max_outstanding=int(current_app.config["CHALLENGE_MAX_OUTSTANDING"]),
    )
    return {
        "challenge_id": issued.challenge_id,
        "nonce": issued.nonce,
        "audience": audience,
        "profession": issued.profession,
        "expires_at": rfc3339(issued.expires_at),
    }


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
    result = run_verifier_flow(
        get_session(), body["assertion"], Verifier(client.id, client.name), now=utcnow()
    )
    # A Response skips apiflask's marshmallow dump (hot path): ``as_json`` builds the
    # contract's body, which tests compare with the documented schema's dump.
    return jsonify(result.as_json())


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
