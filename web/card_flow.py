"""The pages' side of the cross-device card flow, in one place: the pages call these
functions, which call the verification and holder services (never their HTTP API).

HR check: a verifier challenge of the staff's organisation; the QR code carries its
``request_uri``; the card app answers the service directly; the page reads the
challenge's state as ``GET /v1/challenges/{id}`` would give it.

Holder sign-in (no contract shape yet; the smallest one): a holder challenge with a
sign-in id; ``/me/r/{id}`` serves its signed card request (``typ`` ``card-request+jwt``,
``aud`` the holder audience, ``verifier`` the holder portal, no profession); the card app
posts the assertion to ``/me/sign-in/{id}/response``; the holder session it yields is
kept for the browser that started the sign-in only (a cookie secret's hash), which takes
it once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import Unauthenticated
from core.signing import get_keyring
from holder import sessions as holder_sessions
from holder.credentials import HOLDER_PORTAL_ID
from holder.models import HolderSession
from verification import challenges
from verification.outcome import Verifier, restore_answer
from web.browser import token_hash
from web.links import absolute_url
from web.models import HolderSignIn
from web.sealing import get_sealer

CARD_REQUEST_TYPE = "card-request+jwt"


@dataclass(frozen=True)
class StartedCheck:
    challenge_id: str
    request_uri: str
    expires_at: datetime


def start_check(
    session: Session, *, client_id: str, profession: str, monitoring: bool
) -> StartedCheck:
    issued = challenges.create_challenge(
        session,
        challenges.ChallengePurpose.VERIFIER,
        client_id=client_id,
        profession=profession,
        monitoring=monitoring,
    )
    return StartedCheck(
        issued.challenge_id, absolute_url(f"/r/{issued.challenge_id}"), issued.expires_at
    )


def request_uri(challenge_id: str) -> str:
    return absolute_url(f"/r/{challenge_id}")


def check_state(
    session: Session, *, client_id: str, client_name: str, challenge_id: str
) -> dict[str, Any]:
    """``{"state", "verification", "error"}`` as ``GET /v1/challenges/{id}`` answers."""
    challenge = challenges.find_verifier_challenge(session, challenge_id, client_id=client_id)
    if challenge is None:
        return {"state": "expired", "verification": None, "error": None}
    state = challenges.challenge_state(challenge, utcnow()).value
    verification = None
    if state == "completed" and challenge.verification is not None:
        # The challenge keeps no pairwise code nor receipt: both are made anew.
        verification = restore_answer(
            session, challenge.verification, Verifier(client_id, client_name), current_app
        )
    return {
        "state": state,
        "verification": verification,
        "error": challenge.rejection if state == "rejected" else None,
    }


# --- holder sign-in -------------------------------------------------------------------


def start_sign_in(session: Session, browser_secret: str) -> HolderSignIn:
    issued = holder_sessions.new_holder_challenge(session)
    sign_in = HolderSignIn(
        id=secrets.token_hex(16),
        nonce=issued.nonce,
        browser_hash=token_hash(browser_secret),
        created_at=utcnow(),
        expires_at=issued.expires_at,
    )
    session.add(sign_in)
    session.commit()
    return sign_in


def sign_in_request_uri(sign_in_id: str) -> str:
    return absolute_url(f"/me/r/{sign_in_id}")


def find_sign_in(session: Session, sign_in_id: str) -> HolderSignIn | None:
    if len(sign_in_id) > 32 or not sign_in_id.isalnum() or not sign_in_id.isascii():
        return None
    return session.get(HolderSignIn, sign_in_id)


def open_sign_in(session: Session, sign_in_id: str) -> HolderSignIn | None:
    """A sign-in not yet answered and not expired."""
    sign_in = find_sign_in(session, sign_in_id)
    if sign_in is None or sign_in.expires_at <= utcnow():
        return None
    if sign_in.holder_session_token is not None or sign_in.claimed_at is not None:
        return None
    return sign_in


def sign_in_card_request(sign_in: HolderSignIn, portal_name: str) -> str:
    """The signed card request of a holder sign-in (what its QR code leads to)."""
    config = current_app.config
    claims = {
        "iss": config["SERVICE_AUDIENCE"],
        "challenge_id": sign_in.id,
        "nonce": sign_in.nonce,
        "aud": holder_sessions.holder_audience(),
        "verifier": {"id": HOLDER_PORTAL_ID, "name": portal_name},
        "consent": [],
        "response_uri": absolute_url(f"/me/sign-in/{sign_in.id}/response"),
        "iat": int(utcnow().timestamp()),
        "exp": int(sign_in.expires_at.timestamp()),
    }
    return get_keyring().sign(claims, CARD_REQUEST_TYPE)


def answer_sign_in(session: Session, sign_in: HolderSignIn, assertion: Any) -> None:
    """The card app's answer: a holder session for the waiting browser, or the error
    (raised to the card app, and remembered for the browser)."""
    from verification.errors import VerificationError

    try:
        issued = holder_sessions.sign_in(session, assertion)
    except VerificationError as error:
        sign_in = session.merge(sign_in)
        sign_in.rejection = error.code
        session.commit()
        raise
    sign_in = session.merge(sign_in)
    sign_in.holder_session_token = get_sealer().seal(issued.session_token)
    session.commit()


def take_sign_in(session: Session, sign_in_id: str, browser_secret: str) -> str | None:
    """The holder session token of a completed sign-in (sealed, as the browser session
    keeps it), once, for the browser that started it; None otherwise."""
    sign_in = find_sign_in(session, sign_in_id)
    if (
        sign_in is None
        or sign_in.holder_session_token is None
        or sign_in.claimed_at is not None
        or not secrets.compare_digest(sign_in.browser_hash, token_hash(browser_secret))
    ):
        return None
    sign_in.claimed_at = utcnow()
    sealed, sign_in.holder_session_token = sign_in.holder_session_token, None
    session.commit()
    return sealed


def holder_for(session: Session, session_token: str) -> HolderSession | None:
    """The live holder session of ``session_token`` (sealed, as kept for a browser);
    None once it has ended (expired, signed out, or its card put on hold)."""
    try:
        return holder_sessions.authenticate(session, get_sealer().unseal(session_token))
    except Unauthenticated:
        return None
