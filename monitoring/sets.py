"""Security Event Tokens (RFC 8417) for monitoring events, signed ES256 with the
service's key (``typ`` ``secevent+jwt``, ``kid`` in the JWKS).

Signed when delivered or polled, never stored (``sub`` is the verifier's own code);
``jti`` and ``iat`` come from the event row, so every attempt carries the same ones.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from core.signing import get_keyring
from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
from monitoring.models import EventType, MonitoringEvent, Subscription
from verification.outcome import rfc3339

SET_TYPE = "secevent+jwt"
EVENT_URN_PREFIX = "urn:licence-verification:event:"


def verifier_subject(subscription: Subscription) -> str:
    """The verifier's pairwise code for the subscription's holder (never stored)."""
    return get_identity_platform().translate(
        subscription.holder_code, LICENSING_AGENCY, verifier_agency(subscription.verifier_client_id)
    )


def set_claims(app: Flask, event: MonitoringEvent, subject: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "profession": event.profession,
        "effective_at": rfc3339(event.effective_at),
    }
    if event.event_type == EventType.STATUS_CHANGED:
        body["status"] = event.status
        body["suspended_until"] = (
            event.suspended_until.isoformat() if event.suspended_until else None
        )
    elif event.event_type == EventType.REPRIMAND_RECORDED:
        body["sanction"] = "reprimand"
        body["status"] = event.status
    return {
        "iss": app.config["SERVICE_AUDIENCE"],
        "aud": event.verifier_client_id,
        "jti": event.jti,
        "iat": int(event.created_at.timestamp()),
        "sub": subject,
        "events": {f"{EVENT_URN_PREFIX}{event.event_type.value}": body},
    }


def sign_set(app: Flask, event: MonitoringEvent, subject: str) -> str:
    return get_keyring(app).sign(set_claims(app, event, subject), SET_TYPE)
