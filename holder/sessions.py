"""Holder sign-in: a public challenge, a card assertion, a 10-minute session token.

The assertion goes through pipeline steps 0-7 with a consumer of *holder* challenges
(public, bound to no client); the identity platform then names the holder by the
licensing agency's code. The session row keeps that code and the validated card chain;
the bearer token is an ES256 JWS signed by the service (``typ`` ``holder-session+jwt``)
that names the row (``sid``) and is bound to this service (``aud``), so it carries no
personal data and cannot be confused with a receipt, a credential or a status list.

A rejected sign-in with a card the identity platform knows is recorded in that
holder's access log (verifier "Holder sign-in with your card", outcome the error code),
like a rejected verification: a stolen card shows up.

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
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from core import jws
from core.db import get_session, utcnow
from core.errors import Unauthenticated
from core.signing import get_keyring
from holder import status_list as sl
from holder.credentials import HOLDER_PORTAL_ID, card_statuses, encode_chain
from holder.errors import UnknownHolder
from holder.models import HolderSession
from verification.challenges import IssuedChallenge, create_challenge
from verification.models import ChallengePurpose
from verification.pipeline import Verifier

SESSION_TYPE = "holder-session+jwt"
SESSION_LIFETIME = timedelta(minutes=10)
CLOCK_LEEWAY_SECONDS = 60
MAX_SESSION_TOKEN_CHARS = 4096
_CLAIMS = frozenset({"iss", "aud", "sid", "iat", "exp"})


#: How the holder's own portal appears in their access log (it is no API client).
HOLDER_PORTAL_SIGN_IN = Verifier(HOLDER_PORTAL_ID, "Holder sign-in with your card")


@dataclass(frozen=True)
class IssuedSession:
    session_token: str
    expires_at: datetime


def new_holder_challenge(session: Session, now: datetime | None = None) -> IssuedChallenge:
    return create_challenge(session, ChallengePurpose.HOLDER, now=now)


def sign_in(
    session: Session, assertion: Any, *, now: datetime | None = None, app: Flask | None = None
) -> IssuedSession:
    """Steps 0-7 with a holder challenge, then the holder's code; one commit.

    A rejected assertion raises the pipeline's error and leaves the nonce unused.
    """
    from identity import LICENSING_AGENCY, get_identity_platform
    from verification.errors import VerificationError
    from verification.pipeline import (
        holder_nonce_consumer,
        record_rejected_attempt,
        verify_card_assertion,
    )

    application = app or current_app
    at = now or utcnow()
    try:
        verified = verify_card_assertion(
            session, assertion, holder_nonce_consumer(), now=at, app=application
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
        session.commit()  # the nonce and the session, together
    except VerificationError as error:
        session.rollback()  # a rejection leaves the nonce unused
        if error.leaf is not None:
            # An attempt with a known card shows in its holder's log (a stolen card).
            record_rejected_attempt(session, error, HOLDER_PORTAL_SIGN_IN, at)
        raise
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
    expires, issued = claims["exp"], claims["iat"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (expires, issued)):
        return None
    current = at.timestamp()
    if expires <= current or issued > current + CLOCK_LEEWAY_SECONDS:
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
