"""``POST /v1/presentations``: a platform hands us a holder's SD-JWT VC presentation
(with the nonce and audience its key-binding JWT must carry) and gets the live status.

The presentation is bound to the caller: its audience must be one registered to the
calling client (``clients create --audience``), and its nonce one this service issued to
that client for the credential's profession (``POST /v1/challenges`` with ``kind``
``presentation``), unused and unexpired. The nonce is consumed in the transaction that
writes the access record, so a presentation is accepted once, by one verifier.

Same checks as an offline verifier (``holder.sd_jwt``), then the licence's status
now and the card's revocation state now, answered like a verification: the outcome, the
calling verifier's own pairwise code for the holder, only the claims the holder chose
to disclose (an undisclosed name stays hidden here too), a signed receipt, and an
access record in the holder's log. A presentation whose issuer signature verified but
that is otherwise rejected (no key binding: a forwarded credential; wrong nonce or
audience: a replay) is recorded in the holder's log as a rejected attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy.orm import Session

from clients.service import client_audiences
from core.db import utcnow
from holder import credentials as creds
from holder import sd_jwt
from holder.errors import InvalidPresentation
from holder.models import HolderCredential
from verification.challenges import consume_nonce
from verification.errors import VerificationError
from verification.models import ChallengePurpose
from verification.outcome import (
    LicenceFacts,
    VerificationResult,
    Verifier,
    conclude,
    record_access,
    record_rejection,
)


def _record_rejection(
    session: Session, credential: HolderCredential, verifier: Verifier, at: datetime, code: str
) -> None:
    record_rejection(
        session,
        holder_code=credential.holder_code,
        verifier=verifier,
        at=at,
        profession=credential.profession,
        code=code,
    )


def _consume_nonce(
    session: Session, nonce: str, credential: HolderCredential, verifier: Verifier, at: datetime
) -> None:
    """Consumes the caller's presentation challenge for the credential's profession (not
    committed); a nonce not issued to the caller, used, expired or for another profession
    is refused (a replay, or a presentation made for another verifier)."""
    challenge = consume_nonce(
        session, nonce, ChallengePurpose.PRESENTATION, client_id=verifier.client_id, now=at
    )
    if challenge is None or challenge.profession != credential.profession:
        session.rollback()
        _record_rejection(session, credential, verifier, at, InvalidPresentation.code)
        raise InvalidPresentation(creds.PRESENTATION_DETAILS["nonce_not_issued"])


def check_presentation(
    session: Session,
    *,
    presentation: Any,
    nonce: Any,
    audience: Any,
    verifier: Verifier,
    now: datetime | None = None,
    app: Flask | None = None,
) -> VerificationResult:
    from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
    from verification.revocation import check_chain

    application = app or current_app
    at = now or utcnow()
    creds.check_request_fields(nonce, audience)
    try:
        verified = creds.verify_presentation(
            presentation, nonce=nonce, audience=audience, now=at, app=application
        )
    except sd_jwt.SdJwtError as error:
        if error.issuer_claims is not None:
            credential = creds.find_credential(session, error.issuer_claims)
            if credential is not None:
                _record_rejection(session, credential, verifier, at, InvalidPresentation.code)
        raise creds.presentation_error(error) from None

    credential = creds.find_credential(session, verified.issuer_claims)
    if credential is None:
        raise InvalidPresentation(creds.PRESENTATION_DETAILS["unknown_credential"])
    chain = creds.decode_chain(credential.card_chain)
    if sd_jwt.rsa_public_jwk(chain[0].public_key()) != verified.issuer_claims["cnf"]["jwk"]:
        raise InvalidPresentation(creds.PRESENTATION_DETAILS["claims"])
    if audience not in client_audiences(session, verifier.client_id):
        _record_rejection(session, credential, verifier, at, InvalidPresentation.code)
        raise InvalidPresentation(creds.PRESENTATION_DETAILS["audience_not_registered"])
    try:
        crl_this_update = check_chain(session, chain, at, application)
    except VerificationError as error:
        session.rollback()
        _record_rejection(session, credential, verifier, at, error.code)
        raise

    state = creds.licence_states(session, [credential.licence_id]).get(credential.licence_id)
    subject = (
        get_identity_platform().translate(
            credential.holder_code, LICENSING_AGENCY, verifier_agency(verifier.client_id)
        )
        if state is not None
        else None
    )
    # Only what the holder disclosed in this presentation; nothing else is revealed.
    result = conclude(
        application,
        verifier=verifier,
        profession=credential.profession,
        licence=LicenceFacts(
            state.status,
            verified.disclosed.get("name"),
            verified.disclosed.get("registered_year"),
            state.suspended_until,
            state.changed_at,
        )
        if state is not None
        else None,
        subject=subject,
        at=at,
        crl_this_update=crl_this_update,
    )
    record_access(
        session,
        holder_code=credential.holder_code,
        verifier=verifier,
        at=at,
        profession=credential.profession,
        outcome=result.outcome,
        verification_id=result.verification_id,
    )
    _consume_nonce(session, nonce, credential, verifier, at)
    session.commit()  # the nonce and the access record, together
    return result
