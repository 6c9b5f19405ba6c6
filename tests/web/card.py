"""The holder's side, driven from the tests through the card app's own code: it fetches
and checks the signed card request (card_app.service), signs with the card
(card_app.assertion) and posts the answer to the request's response_uri."""

from __future__ import annotations

from card_app.assertion import sign_assertion
from card_app.service import REQUEST_TYPE, Answer, Service
from core import jws
from core.config import DEFAULT_AUDIENCE


def answer_check(
    base_url: str, request_url: str, card, *, consents: tuple[str, ...] = ()
) -> Answer:
    """What ``licence-card sign`` does for a verifier's request."""
    service = Service(base_url)
    request = service.card_request(request_url, DEFAULT_AUDIENCE)
    agreed = [consent for consent in request.consent if consent in consents]
    assertion = sign_assertion(
        card.card,
        card.pin,
        nonce=request.nonce,
        audience=request.audience,
        verifier=request.verifier_id,
        consent=agreed,
    )
    return service.call("POST", request.response_uri, {"assertion": assertion})


def answer_sign_in(base_url: str, request_url: str, card) -> Answer:
    """The holder sign-in request: checked against the service's JWKS like any card
    request; the assertion names no verifier (a sign-in is for the holder's own portal)."""
    service = Service(base_url)
    answer = service.call("GET", request_url, accept="application/jwt")
    assert answer.status == 200, answer
    keys = service.jwks_keys()
    claims = jws.verify_key_id_signed(
        answer.body.strip(), typ=REQUEST_TYPE, algorithm="ES256", key_for_kid=keys.get
    ).payload
    assert claims["iss"] == DEFAULT_AUDIENCE and service.owns(claims["response_uri"])
    assertion = sign_assertion(card.card, card.pin, nonce=claims["nonce"], audience=claims["aud"])
    return service.call("POST", claims["response_uri"], {"assertion": assertion})
