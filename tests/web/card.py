"""The holder's side, driven from the tests through the card app's own code: it fetches
and checks the signed card request (card_app.service), signs with the card
(card_app.assertion) and posts the answer to the request's response_uri."""

from __future__ import annotations

from card_app.assertion import sign_assertion
from card_app.service import Answer, Service
from core.config import DEFAULT_AUDIENCE


def answer_check(
    base_url: str, request_url: str, card, *, consents: tuple[str, ...] = ()
) -> Answer:
    """What ``licence-card sign`` does for a card request: a verifier's, or the holder's
    own sign-in (which names no profession)."""
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
