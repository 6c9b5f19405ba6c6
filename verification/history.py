"""A verifier's own verifications, read back: the list (``GET /v1/verifications``) and
one verification (``GET /v1/verifications/{id}``), as JSON or as an HL7 FHIR R5
``VerificationResult``.

What is kept of a verification is its access record (licensing code, verifier, time,
profession, outcome, verification id), for ``ACCESS_LOG_RETENTION``. The verifier's
pairwise subject is translated anew from the licensing code and the receipt signed anew
over the same facts (same verification id and time), because this database keeps no
other agency's code. A verification of a card the identity platform does not know left
no record and is not listed.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir.resources.verificationresult import VerificationResult
from flask import Flask
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from core.errors import InvalidRequest
from verification.models import AccessRecord
from verification.outcome import (
    NOT_LICENSED,
    OUTCOME_BY_STATUS,
    Verifier,
    pairwise_subject,
    rfc3339,
    sign_receipt,
)

FHIR_JSON = "application/fhir+json"
_OUTCOMES = (*OUTCOME_BY_STATUS.values(), NOT_LICENSED)  # not rejections
_VALIDATION_TYPE = "http://terminology.hl7.org/CodeSystem/verificationresult-validation-type"
_CAN_PUSH = "http://terminology.hl7.org/CodeSystem/verificationresult-can-push-updates"
_PUSH_TYPE = "http://terminology.hl7.org/CodeSystem/verificationresult-push-type-available"
_PRIMARY_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/primary-source-type"
# ASTM E1762 signature type "Verification Signature" (FHIR's signature-type value set).
_SIGNATURE_TYPE = {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.5"}


@dataclass(frozen=True)
class VerificationRecord:
    verification_id: str
    profession: str
    outcome: str
    checked_at: datetime
    subject: str
    receipt: str

    def as_json(self) -> dict[str, Any]:
        return {
            "verification_id": self.verification_id,
            "profession": self.profession,
            "outcome": self.outcome,
            "checked_at": rfc3339(self.checked_at),
            "subject": self.subject,
            "receipt": self.receipt,
        }


def _record(row: AccessRecord, verifier: Verifier, app: Flask) -> VerificationRecord:
    subject = pairwise_subject(row.holder_code, verifier)
    _, receipt = sign_receipt(
        app,
        verifier=verifier,
        profession=row.profession or "",
        outcome=row.outcome,
        # not_licensed answers never named the holder: neither does their receipt.
        subject=None if row.outcome == NOT_LICENSED else subject,
        at=row.at,
        verification_id=row.verification_id,
    )
    return VerificationRecord(
        row.verification_id or "", row.profession or "", row.outcome, row.at, subject, receipt
    )


def _own(verifier: Verifier):
    return select(AccessRecord).where(
        AccessRecord.verifier_client_id == verifier.client_id,
        AccessRecord.verification_id.is_not(None),
        AccessRecord.outcome.in_(_OUTCOMES),
    )


def find_verification(
    session: Session, verification_id: str, verifier: Verifier, app: Flask
) -> VerificationRecord | None:
    row = session.scalar(_own(verifier).where(AccessRecord.verification_id == verification_id))
    return _record(row, verifier, app) if row is not None else None


def _encode_cursor(row: AccessRecord) -> str:
    return base64.urlsafe_b64encode(f"{row.at.isoformat()}|{row.id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        at, row_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        return datetime.fromisoformat(at), row_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("Unknown cursor: pass next_cursor from the last page.") from None


def list_verifications(
    session: Session, verifier: Verifier, app: Flask, *, after: str | None, limit: int
) -> tuple[list[VerificationRecord], str | None]:
    """The verifier's verifications, oldest first, ``limit`` per page after ``after``."""
    query = _own(verifier)
    if after:
        at, row_id = _decode_cursor(after)
        query = query.where(
            or_(AccessRecord.at > at, and_(AccessRecord.at == at, AccessRecord.id > row_id))
        )
    rows = session.scalars(query.order_by(AccessRecord.at, AccessRecord.id).limit(limit)).all()
    next_cursor = _encode_cursor(rows[-1]) if len(rows) == limit else None
    return [_record(row, verifier, app) for row in rows], next_cursor


def fhir_verification_result(record: VerificationRecord, app: Flask) -> dict[str, Any]:
    """The verification as an HL7 FHIR R5 VerificationResult, validated by fhir.resources."""
    service = {
        "display": "Licence verification service",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": app.config["SERVICE_AUDIENCE"]},
    }
    resource = {
        "resourceType": "VerificationResult",
        "id": record.verification_id,
        # Practitioner reference by this verifier's own pairwise code for the person.
        "target": [
            {
                "type": "Practitioner",
                "identifier": {
                    "system": f"{app.config['SERVICE_AUDIENCE']}/subject",
                    "value": record.subject,
                },
            }
        ],
        "targetLocation": [f"licence.{record.profession}.status"],
        "status": "validated" if record.outcome == "licensed" else "val-fail",
        "statusDate": rfc3339(record.checked_at),
        "validationType": {"coding": [{"system": _VALIDATION_TYPE, "code": "primary"}]},
        "validationProcess": [{"text": f"{record.profession} licence: {record.outcome}"}],
        "primarySource": [
            {
                "who": service,
                "type": [{"coding": [{"system": _PRIMARY_SOURCE_TYPE, "code": "lic-board"}]}],
                "validationStatus": {"text": record.outcome},
                "validationDate": rfc3339(record.checked_at),
                # With the holder's consent signed by the card, changes are pushed (monitoring).
                "canPushUpdates": {"coding": [{"system": _CAN_PUSH, "code": "yes"}]},
                "pushTypeAvailable": [{"coding": [{"system": _PUSH_TYPE, "code": "specific"}]}],
            }
        ],
        "validator": [
            {
                "organization": service,
                "attestationSignature": {
                    "type": [_SIGNATURE_TYPE],
                    "when": rfc3339(record.checked_at),
                    "who": service,
                    "sigFormat": "application/jose",
                    "data": base64.b64encode(record.receipt.encode("ascii")).decode("ascii"),
                },
            }
        ],
    }
    return VerificationResult.model_validate(resource).model_dump(mode="json", exclude_none=True)
