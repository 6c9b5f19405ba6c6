"""Holder sign-in: a public challenge, a card assertion, a 10-minute session token.

The assertion goes through pipeline steps 0-6 and 8 with a consumer of *holder*
challenges (public, bound to no client) and the holder audience
``{SERVICE_AUDIENCE}/holder`` (so an assertion made for a verification cannot sign in,
nor the reverse); the identity platform then names the holder by the licensing agency's
code, and the sign-in is an entry in the holder's access log. The session row keeps that
code and the validated card chain; the bearer token is an ES256 JWS signed by the
service (``typ`` ``holder-session+jwt``) that names the row (``sid``) and is bound to
this service (``aud``), so it carries no personal data and cannot be confused with a
receipt, a credential or a status list.

A rejected sign-in the card signed, with a card the identity platform knows, is recorded
in that holder's access log (verifier "Holder sign-in with your card", outcome the error
code), like a rejected verification: a stolen card shows up.

``holder_auth`` authenticates holder endpoints. API client tokens are not session
tokens: they get 401 ``unauthenticated`` like any other wrong token. A session works
only while its card does: each use checks the card against the current CRLs (cached per
CRL, ``holder.credentials.card_statuses``), so a card reported lost or revoked ends its
sessions at once. ``DELETE /v1/holder/sessions`` signs out (deletes the session row).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from apiflask import HTTPTokenAuth
from flask import Flask, current_app, g
from limits import RateLimitItemPerMinute
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from core import jws, rate_limits
from core.claims import ClaimsError, check_times
from core.db import get_session, utcnow
from core.errors import Unauthenticated
from core.signing import get_keyring
from holder import status_list as sl
from holder.credentials import HOLDER_PORTAL_ID, card_statuses, encode_chain
from holder.errors import UnknownHolder
from holder.models import HolderSession
from verification.challenges import CHALLENGE_LIFETIME, IssuedChallenge, create_challenge
from verification.models import ChallengePurpose
from verification.outcome import Verifier, record_access

SESSION_TYPE = "holder-session+jwt"
SESSION_LIFETIME = timedelta(minutes=10)
MAX_SESSION_TOKEN_CHARS = 4096
_CLAIMS = frozenset({"iss", "aud", "sid", "iat", "exp"})


#: How the holder's own portal appears in their access log (it is no API client).
HOLDER_PORTAL_SIGN_IN = Verifier(HOLDER_PORTAL_ID, "Holder sign-in with your card")
#: The access-log outcome of a successful sign-in.
SIGNED_IN = "signed_in"


def holder_audience(app: Flask | None = None) -> str:
    """The ``aud`` a sign-in assertion carries: this service, for the holder purpose."""
    return f"{(app or current_app).config['SERVICE_AUDIENCE']}/holder"


@dataclass(frozen=True)
class IssuedSession:
    session_token: str
    expires_at: datetime


def count_holder_challenge() -> None:
    """429 once this address has asked ``CHALLENGE_MAX_OUTSTANDING`` holder challenges
    within one challenge lifetime (no more can be unexpired at once, used or not)."""
    cap = current_app.config["CHALLENGE_MAX_OUTSTANDING"]
    minutes = int(CHALLENGE_LIFETIME.total_seconds() // 60)
    rate_limits.hit(
        RateLimitItemPerMinute(cap, minutes),
        "CHALLENGE_MAX_OUTSTANDING",
        f"This address has {cap} unexpired sign-in challenges; use them or wait for them "
        f"to expire ({minutes} minutes).",
    )


def new_holder_challenge(session: Session, now: datetime | None = None) -> IssuedChallenge:
    return create_challenge(session, ChallengePurpose.HOLDER, now=now)


def sign_in(
    session: Session, assertion: Any, *, now: datetime | None = None, app: Flask | None = None
) -> IssuedSession:
    """Steps 0-6 and 8 with a holder challenge, then the holder's code; one commit
    (the nonce, the session and the sign-in's access-log entry).

    A rejected assertion raises the pipeline's error and leaves the nonce unused.
    """
    from identity import LICENSING_AGENCY, get_identity_platform
    from verification.pipeline import (
        AssertionRejected,
        holder_nonce_consumer,
        record_rejected_attempt,
        verify_card_assertion,
    )

    application = app or current_app
    at = now or utcnow()
    try:
        verified = verify_card_assertion(
            session,
            assertion,
            holder_nonce_consumer(),
            audience=holder_audience(application),
            # A card request for the holder's page names the portal (the card app signs
            # it as ``verifier``); a direct sign-in names none.
            verifier_id=HOLDER_PORTAL_ID,
            now=at,
            app=application,
        )
        holder_code = get_identity_platform().code_for_certificate(LICENSING_AGENCY, verified.leaf)
        if holder_code is None:
            raise UnknownHolder()
        record = HolderSession(
            id=secrets.token_hex(16),
            holder_code=holder_code,
            card_chain=encode_chain(verified.chain),
            created_at=at,
            expires_at=at + SESSION_LIFETIME,
        )
        session.add(record)
        record_access(
            session,
            holder_code=holder_code,
            verifier=HOLDER_PORTAL_SIGN_IN,
            at=at,
            profession=None,
            outcome=SIGNED_IN,
        )
        session.commit()  # the nonce, the session and the log entry, together
    except AssertionRejected as rejected:
        session.rollback()  # a rejection leaves the nonce unused
        # An attempt the card signed shows in its holder's log (a stolen card).
        record_rejected_attempt(session, rejected, HOLDER_PORTAL_SIGN_IN)
        raise rejected.error from None
    except BaseException:
        session.rollback()
        raise
    claims = {
        "iss": application.config["SERVICE_AUDIENCE"],
        "aud": application.config["SERVICE_AUDIENCE"],
        "sid": record.id,
        "iat": int(at.timestamp()),
        "exp": int(record.expires_at.timestamp()),
    }
    token = get_keyring(application).sign(claims, SESSION_TYPE)
    return IssuedSession(token, record.expires_at)


def authenticate(
    session: Session, token: str, *, now: datetime | None = None, app: Flask | None = None
) -> HolderSession | None:
    """The live session named by a valid session token, or None."""
    application = app or current_app
    at = now or utcnow()
    if not isinstance(token, str) or not token or len(token) > MAX_SESSION_TOKEN_CHARS:
        return None
    try:
        claims = get_keyring(application).verify(token, SESSION_TYPE)
    except jws.JwsError:
        return None
    audience = application.config["SERVICE_AUDIENCE"]
    if set(claims) != _CLAIMS or claims["aud"] != audience or claims["iss"] != audience:
        return None
    try:
        # Our own token, checked on our own clock: no leeway, so it ends with its row.
        check_times(
            claims,
            now=at.timestamp(),
            leeway=0,
            max_lifetime=int(SESSION_LIFETIME.total_seconds()),
        )
    except ClaimsError:
        return None
    if not isinstance(claims["sid"], str) or len(claims["sid"]) > 32:
        return None
    record = session.get(HolderSession, claims["sid"])
    if record is None or record.expires_at <= at:
        return None
    if card_statuses(session, [record.card_chain], at, application)[0] != sl.STATUS_VALID:
        raise Unauthenticated(
            "The session has ended: its card is on hold or revoked, or its revocation state "
            "is unknown. Sign in again once the card can be used."
        )
    return record


def sign_out(session: Session, record: HolderSession) -> None:
    session.delete(record)
    session.commit()


def prune_sessions(session: Session, *, older_than: timedelta = timedelta(days=1)) -> int:
    result = session.execute(
        delete(HolderSession).where(HolderSession.expires_at < utcnow() - older_than)
    )
    session.commit()
    return result.rowcount or 0


holder_auth = HTTPTokenAuth(
    scheme="Bearer",
    security_scheme_name="HolderSession",
    description="Holder session token from POST /v1/holder/sessions (10 minutes)",
)


@holder_auth.verify_token
def _verify_holder_token(token: str) -> HolderSession | None:
    session = get_session()
    record = authenticate(session, token) if token else None
    if record is None:
        # A token rejected without a lookup (an API client token, a bad signature) must
        # still get 503 rather than 401 while the database is down, as every endpoint does.
        session.execute(text("SELECT 1"))
        return None
    g.holder_session = record
    return record


def current_holder() -> HolderSession:
    return holder_auth.current_user
