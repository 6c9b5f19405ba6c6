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

import logging
import secrets
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
from verification.models import AccessRecord, ChallengePurpose
from verification.pipeline import OUTCOME_BY_STATUS, VerificationResult, Verifier, sign_receipt

log = logging.getLogger("licence_service.holder")


def _record(
    session: Session,
    credential: HolderCredential,
    verifier: Verifier,
    at: datetime,
    outcome: str,
    verification_id: str | None = None,
) -> None:
    session.add(
        AccessRecord(
            id=secrets.token_hex(16),
            holder_code=credential.holder_code,
            verifier_client_id=verifier.client_id,
            verifier_name=verifier.name,
            at=at,
            profession=credential.profession,
            outcome=outcome,
            verification_id=verification_id,
        )
    )


def _record_rejection(
    session: Session, credential: HolderCredential, verifier: Verifier, at: datetime, code: str
) -> None:
    """Best effort, in its own transaction; never changes the response."""
    try:
        _record(session, credential, verifier, at, code)
        session.commit()
    except Exception as failure:  # noqa: BLE001 - the rejection itself must still be returned
        session.rollback()
        log.warning(
            "could not record a rejected presentation",
            extra={"error_class": type(failure).__name__},
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
        check_chain(session, chain, at, application)
    except VerificationError as error:
        session.rollback()
        _record_rejection(session, credential, verifier, at, error.code)
        raise

    state = creds.licence_states(session, [credential.licence_id]).get(credential.licence_id)
    outcome = OUTCOME_BY_STATUS.get(state.status, "not_licensed") if state else "not_licensed"
    holder: dict[str, Any] | None = None
    licence: dict[str, Any] | None = None
    subject: str | None = None
    if outcome != "not_licensed":
        subject = get_identity_platform().translate(
            credential.holder_code, LICENSING_AGENCY, verifier_agency(verifier.client_id)
        )
        # Only what the holder disclosed in this presentation; nothing else is revealed.
        holder = {"name": verified.disclosed.get("name"), "subject": subject}
        licence = {
            "status": state.status,
            "registered_year": verified.disclosed.get("registered_year"),
            "suspended_until": state.suspended_until.isoformat() if state.suspended_until else None,
        }
    verification_id, receipt = sign_receipt(
        application,
        verifier=verifier,
        profession=credential.profession,
        outcome=outcome,
        subject=subject,
        at=at,
    )
    _record(session, credential, verifier, at, outcome, verification_id)
    _consume_nonce(session, nonce, credential, verifier, at)
    session.commit()  # the nonce and the access record, together
    return VerificationResult(
        verification_id, outcome, credential.profession, holder, licence, at, receipt
    )
