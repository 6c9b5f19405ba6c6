"""Monitoring: subscriptions started by the holder's signed consent, ended by the holder,
verifiers' webhooks, rosters, poll delivery and the delivery log.

Only a verification whose card assertion carried ``consent: ["monitoring"]`` for a
challenge that asked for it starts monitoring (``start_monitoring``, called by the
verification outcome); there is no API for a verifier to start one.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import utcnow
from licensing.models import Licence
from licensing.service import effective_status, effective_suspended_until, today
from monitoring import webhooks
from monitoring.errors import InvalidCursor, SubscriptionNotFound, TooManySubjects
from monitoring.models import (
    ACTIVE_SLOT,
    DeliveryAttempt,
    EventType,
    MonitoringEvent,
    Subscription,
    Webhook,
)
from monitoring.outbox import new_event
from monitoring.sets import sign_set, verifier_subject
from verification.listeners import Verified
from verification.models import AccessRecord

MAX_ROSTER_SUBJECTS = 10_000
MAX_SUBJECT_CHARS = 64
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_IN_CHUNK = 1000  # bound parameters per IN list
_SUBSCRIPTION_ID = re.compile(r"mon_[0-9a-f]{24}")
_MAX_SEQ_DIGITS = 18  # below 2**63

CONSENT = "monitoring"  # the consent a card request asks for and the card signs
STARTED = "monitoring_started"
ENDED = "monitoring_ended"


def subject_digest(subject: str) -> str:
    return hashlib.sha256(subject.encode("utf-8")).hexdigest()


def _access_record(
    session: Session, subscription: Subscription, outcome: str, at: datetime
) -> None:
    session.add(
        AccessRecord(
            id=secrets.token_hex(16),
            holder_code=subscription.holder_code,
            verifier_client_id=subscription.verifier_client_id,
            verifier_name=subscription.verifier_name,
            at=at,
            profession=subscription.profession,
            outcome=outcome,
        )
    )


# --- consent -----------------------------------------------------------------------------


def start_monitoring(
    session: Session,
    *,
    verifier_client_id: str,
    verifier_name: str,
    subject: str,
    holder_code: str,
    licence_id: str,
    profession: str,
    at: datetime,
) -> Subscription:
    """Starts (or keeps) the verifier's monitoring of the licence, with an entry in the
    holder's access log. Joins the caller's unit of work: the verification that carried
    the consent commits it, so consent is never recorded without its verification."""
    running = session.scalar(
        select(Subscription).where(
            Subscription.verifier_client_id == verifier_client_id,
            Subscription.licence_id == licence_id,
            Subscription.active_slot == ACTIVE_SLOT,
        )
    )
    if running is not None:
        return running
    subscription = Subscription(
        id=f"mon_{secrets.token_hex(12)}",
        verifier_client_id=verifier_client_id,
        verifier_name=verifier_name,
        holder_code=holder_code,
        subject_digest=subject_digest(subject),
        licence_id=licence_id,
        profession=profession,
        active_slot=ACTIVE_SLOT,
        started_at=at,
    )
    session.add(subscription)
    _access_record(session, subscription, STARTED, at)
    return subscription


def on_verified(session: Session, verified: Verified) -> None:
    """The verification listener: monitoring starts only when the challenge asked for it
    and the card signed the holder's consent to it (``consented_to`` holds both)."""
    if CONSENT in verified.consented_to:
        start_monitoring(
            session,
            verifier_client_id=verified.verifier_client_id,
            verifier_name=verified.verifier_name,
            subject=verified.subject,
            holder_code=verified.holder_code,
            licence_id=verified.licence_id,
            profession=verified.profession,
            at=verified.at,
        )


def holder_subscriptions(session: Session, holder_code: str) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.holder_code == holder_code, Subscription.active_slot == ACTIVE_SLOT)
            .order_by(Subscription.started_at.desc(), Subscription.id)
        )
    )


def end_monitoring_by_holder(session: Session, holder_code: str, subscription_id: str) -> None:
    """Ends one of the holder's running subscriptions; the verifier gets a
    ``monitoring-ended`` event and the holder's access log an entry. Commits."""
    subscription = None
    if isinstance(subscription_id, str) and _SUBSCRIPTION_ID.fullmatch(subscription_id):
        subscription = session.scalar(
            select(Subscription)
            .where(
                Subscription.id == subscription_id,
                Subscription.holder_code == holder_code,
                Subscription.active_slot == ACTIVE_SLOT,
            )
            .with_for_update()
        )
    if subscription is None:
        raise SubscriptionNotFound()
    now = utcnow()
    subscription.active_slot = None
    subscription.ended_at = now
    subscription.ended_by = "holder"
    session.add(
        new_event(
            subscription,
            EventType.MONITORING_ENDED,
            status=None,
            suspended_until=None,
            effective_at=now,
        )
    )
    _access_record(session, subscription, ENDED, now)
    session.commit()


# --- webhooks ----------------------------------------------------------------------------


def set_webhook(
    session: Session, verifier_client_id: str, url: str, config: Mapping[str, Any]
) -> Webhook:
    webhooks.check_target(url, config)
    webhook = session.get(Webhook, verifier_client_id)
    if webhook is None:
        webhook = Webhook(verifier_client_id=verifier_client_id, url=url)
        session.add(webhook)
    webhook.url = url
    webhook.updated_at = utcnow()
    session.commit()
    return webhook


# --- rosters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitoredStatus:
    subject: str
    monitoring_id: str
    profession: str
    status: str
    suspended_until: date | None
    since: datetime


def _status(
    subscription: Subscription, licence: Licence, subject: str, day: date
) -> MonitoredStatus:
    return MonitoredStatus(
        subject=subject,
        monitoring_id=subscription.id,
        profession=subscription.profession,
        status=effective_status(licence, day),
        suspended_until=effective_suspended_until(licence, day),
        since=subscription.started_at,
    )


def _running_with_licence(verifier_client_id: str):
    return (
        select(Subscription, Licence)
        .join(Licence, Licence.id == Subscription.licence_id)
        .where(
            Subscription.verifier_client_id == verifier_client_id,
            Subscription.active_slot == ACTIVE_SLOT,
        )
    )


def subjects_page(
    session: Session, verifier_client_id: str, *, cursor: str | None, limit: int
) -> tuple[list[MonitoredStatus], str | None]:
    """The caller's running subscriptions with current statuses, by monitoring id."""
    stmt = _running_with_licence(verifier_client_id)
    if cursor:
        if not _SUBSCRIPTION_ID.fullmatch(cursor):
            raise InvalidCursor()
        stmt = stmt.where(Subscription.id > cursor)
    rows = session.execute(stmt.order_by(Subscription.id).limit(limit + 1)).all()
    day = today()
    page = [_status(s, licence, verifier_subject(s), day) for s, licence in rows[:limit]]
    return page, (page[-1].monitoring_id if len(rows) > limit else None)


def roster_statuses(
    session: Session, verifier_client_id: str, subjects: Sequence[str]
) -> tuple[list[MonitoredStatus], list[str]]:
    """Current statuses of the given subjects the caller monitors, and those it does not."""
    if len(subjects) > MAX_ROSTER_SUBJECTS:
        raise TooManySubjects()
    by_digest = {subject_digest(subject): subject for subject in subjects}
    digests = list(by_digest)
    day = today()
    found: list[MonitoredStatus] = []
    seen: set[str] = set()
    for start in range(0, len(digests), _IN_CHUNK):
        chunk = digests[start : start + _IN_CHUNK]
        stmt = _running_with_licence(verifier_client_id).where(
            Subscription.subject_digest.in_(chunk)
        )
        for subscription, licence in session.execute(stmt):
            subject = by_digest[subscription.subject_digest]
            seen.add(subject)
            found.append(_status(subscription, licence, subject, day))
    return found, [subject for subject in by_digest.values() if subject not in seen]


# --- poll delivery and the delivery log ------------------------------------------------


def parse_seq_cursor(cursor: str | None) -> int:
    if cursor is None or cursor == "":
        return 0
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > _MAX_SEQ_DIGITS:
        raise InvalidCursor()
    return int(cursor)


def poll_events(
    app: Flask, session: Session, verifier_client_id: str, *, after: str | None, limit: int
) -> tuple[list[str], str]:
    """SETs of the caller's events after the cursor, oldest first, and the next cursor
    (the same one when there is nothing new)."""
    last = parse_seq_cursor(after)
    rows = session.execute(
        select(MonitoringEvent, Subscription)
        .join(Subscription, Subscription.id == MonitoringEvent.subscription_id)
        .where(MonitoringEvent.verifier_client_id == verifier_client_id, MonitoringEvent.seq > last)
        .order_by(MonitoringEvent.seq)
        .limit(limit)
    ).all()
    tokens = [sign_set(app, event, verifier_subject(subscription)) for event, subscription in rows]
    return tokens, str(rows[-1][0].seq if rows else last)


def deliveries_page(
    session: Session, verifier_client_id: str, *, after: str | None, limit: int
) -> tuple[list[DeliveryAttempt], str | None]:
    last = parse_seq_cursor(after)
    rows = list(
        session.scalars(
            select(DeliveryAttempt)
            .where(
                DeliveryAttempt.verifier_client_id == verifier_client_id, DeliveryAttempt.id > last
            )
            .order_by(DeliveryAttempt.id)
            .limit(limit + 1)
        )
    )
    return rows[:limit], (str(rows[limit - 1].id) if len(rows) > limit else None)
