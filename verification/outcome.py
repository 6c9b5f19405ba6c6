"""Outcomes, receipts and access records: the last step of every flow that answers like
a verification (the verifier flow, the cross-device flow, online presentations).

``conclude`` turns what a flow found (the licence for the asked profession, the
verifier's pairwise code) into the answer and its signed receipt; ``record_access`` is
the one writer of access records (the holder's log), ``record_rejection`` its best-effort
variant for a rejected attempt. The response body is ``verification.schemas.VerificationOut``.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.signing import get_keyring
from verification.models import AccessRecord

log = logging.getLogger("licence_service.verification")

RECEIPT_TYPE = "verification-receipt+jwt"
OUTCOME_BY_STATUS = {
    "active": "licensed",
    "suspended": "suspended",
    "revoked": "revoked",
    "deceased": "deceased",
}
NOT_LICENSED = "not_licensed"


@dataclass(frozen=True)
class Verifier:
    """The calling API client, as the access record shows it to the holder."""

    client_id: str
    name: str


@dataclass(frozen=True)
class LicenceFacts:
    """What a flow knows of the licence for the asked profession. ``name`` and
    ``registered_year`` are None when the holder did not disclose them (presentations)."""

    status: str
    name: str | None
    registered_year: int | None
    suspended_until: date | None
    #: When the register last changed for this licence.
    changed_at: datetime


@dataclass(frozen=True)
class VerificationResult:
    """The answer of a verification (``VerificationOut`` dumps it)."""

    verification_id: str
    outcome: str
    profession: str
    holder: dict[str, Any] | None
    licence: dict[str, Any] | None
    checked_at: datetime
    receipt: str
    #: ``{"register": ..., "revocation": ...}`` (RFC 3339 or None): how fresh the answer is.
    as_of: dict[str, str | None]
    #: The consents the card signed that the challenge asked for (e.g. ``monitoring``):
    #: where monitoring starts from. Never part of the response body.
    consented_to: tuple[str, ...] = field(default=())


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def sign_receipt(
    app: Flask,
    *,
    verifier: Verifier,
    profession: str,
    outcome: str,
    subject: str | None,
    at: datetime,
    verification_id: str | None = None,
) -> tuple[str, str]:
    """The verification id (new unless given) and its receipt: an ES256 JWS the verifier
    keeps as evidence (``sub`` only when a holder was identified)."""
    verification_id = verification_id or secrets.token_hex(16)
    claims: dict[str, Any] = {
        "iss": app.config["SERVICE_AUDIENCE"],
        "verification_id": verification_id,
        "verifier": verifier.client_id,
        "profession": profession,
        "outcome": outcome,
        "iat": int(at.timestamp()),
    }
    if subject is not None:
        claims["sub"] = subject
    return verification_id, get_keyring(app).sign(claims, RECEIPT_TYPE)


def conclude(
    app: Flask,
    *,
    verifier: Verifier,
    profession: str,
    licence: LicenceFacts | None,
    subject: str | None,
    at: datetime,
    crl_this_update: datetime,
    consented_to: Iterable[str] = (),
) -> VerificationResult:
    """The outcome for the asked profession only, the verifier's pairwise ``subject``
    (only when a licence is found: never for ``not_licensed``) and the signed receipt.
    ``crl_this_update`` is the thisUpdate of the CRL the card was checked against."""
    outcome = OUTCOME_BY_STATUS.get(licence.status, NOT_LICENSED) if licence else NOT_LICENSED
    holder: dict[str, Any] | None = None
    licence_view: dict[str, Any] | None = None
    if licence is None or outcome == NOT_LICENSED:
        subject = None
    else:
        holder = {"name": licence.name, "subject": subject}
        licence_view = {
            "status": licence.status,
            "registered_year": licence.registered_year,
            "suspended_until": licence.suspended_until.isoformat()
            if licence.suspended_until
            else None,
        }
    verification_id, receipt = sign_receipt(
        app, verifier=verifier, profession=profession, outcome=outcome, subject=subject, at=at
    )
    as_of = {
        "register": rfc3339(licence.changed_at) if licence_view is not None else None,
        "revocation": rfc3339(crl_this_update),
    }
    return VerificationResult(
        verification_id,
        outcome,
        profession,
        holder,
        licence_view,
        at,
        receipt,
        as_of,
        tuple(consented_to) if holder is not None else (),
    )


def answer_to_keep(result: VerificationResult) -> dict[str, Any]:
    """A verification's answer as kept on its challenge (JSON): the body's facts without
    the verifier's pairwise code and the receipt that carries it (this database keeps
    licensing codes only). Built directly, not dumped twice (hot path)."""
    return {
        "verification_id": result.verification_id,
        "outcome": result.outcome,
        "profession": result.profession,
        "holder": {"name": result.holder["name"]} if result.holder is not None else None,
        "licence": result.licence,
        "checked_at": rfc3339(result.checked_at),
        "as_of": result.as_of,
    }


def pairwise_subject(holder_code: str, verifier: Verifier) -> str:
    """The verifier's own code for the holder, translated anew from the licensing code
    (this database keeps no other agency's code)."""
    from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency

    return get_identity_platform().translate(
        holder_code, LICENSING_AGENCY, verifier_agency(verifier.client_id)
    )


def restore_answer(
    session: Session, kept: dict[str, Any], verifier: Verifier, app: Flask
) -> dict[str, Any]:
    """The verification body again from what ``answer_to_keep`` kept: the pairwise code
    translated anew from the access record's holder code, the receipt signed anew over
    the same facts (same verification id and time)."""
    body = dict(kept)
    subject = None
    if body.get("holder") is not None:
        holder_code = session.scalar(
            select(AccessRecord.holder_code).where(
                AccessRecord.verification_id == body["verification_id"]
            )
        )
        if holder_code is not None:
            subject = pairwise_subject(holder_code, verifier)
        body["holder"] = {**body["holder"], "subject": subject}
    _, body["receipt"] = sign_receipt(
        app,
        verifier=verifier,
        profession=body["profession"],
        outcome=body["outcome"],
        subject=subject,
        at=datetime.fromisoformat(body["checked_at"].replace("Z", "+00:00")),
        verification_id=body["verification_id"],
    )
    return body


#: Built once (hot path): executing a prebuilt Core INSERT with a parameter dict skips
#: statement construction and cache-key generation on every verification.
_INSERT_ACCESS_RECORD = insert(AccessRecord.__table__)


def record_access(
    session: Session,
    *,
    holder_code: str,
    verifier: Verifier,
    at: datetime,
    profession: str | None,
    outcome: str,
    verification_id: str | None = None,
) -> None:
    """One entry in the holder's access log, in the caller's transaction (not committed).
    ``outcome`` is the verification outcome or a rejection's error code."""
    session.execute(
        _INSERT_ACCESS_RECORD,
        {
            "id": secrets.token_hex(16),
            "holder_code": holder_code,
            "verifier_client_id": verifier.client_id,
            "verifier_name": verifier.name,
            "at": at,
            "profession": profession,
            "outcome": outcome,
            "verification_id": verification_id,
        },
    )


@contextmanager
def best_effort(session: Session) -> Iterator[None]:
    """Writes that must not change the response (a rejected attempt in the holder's
    log: no leak of whether the card is known), in their own transaction: committed, or
    rolled back and logged."""
    try:
        yield
        session.commit()
    except Exception as failure:  # noqa: BLE001 - the rejection itself must still be returned
        session.rollback()
        log.warning(
            "could not record a rejected attempt", extra={"error_class": type(failure).__name__}
        )


def record_rejection(
    session: Session,
    *,
    holder_code: str,
    verifier: Verifier,
    at: datetime,
    profession: str | None,
    code: str,
) -> None:
    """A rejected attempt with the holder's card, best effort in its own transaction."""
    with best_effort(session):
        record_access(
            session,
            holder_code=holder_code,
            verifier=verifier,
            at=at,
            profession=profession,
            outcome=code,
        )
