"""The transactional outbox: events are written in the transaction of the change.

``licensing`` knows nothing of monitoring. A ``before_flush`` listener on every
``Session`` looks at the licence events being flushed (suspend, revoke, reinstate,
deceased, erase, a recorded reprimand, and the implicit end of a lapsed suspension that
the register writes before its next change) and adds one ``MonitoringEvent`` per running
subscription of that licence to the same flush, so the change and its events commit or
roll back together.

A suspension that ends by itself changes no row on its date; ``emit_due_lapses`` (run by
the worker) writes its events then. Both paths use the same ``lapse_key``, so whichever
comes first writes the event and the other skips it.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from core.db import utcnow
from licensing.models import Licence, LicenceEvent, LicenceStatus
from licensing.service import suspension_end, today
from monitoring.models import (
    ACTIVE_SLOT,
    DeliveryState,
    EventType,
    MonitoringEvent,
    Subscription,
)


def new_event(
    subscription: Subscription,
    event_type: EventType,
    *,
    status: str | None,
    suspended_until: date | None,
    effective_at: datetime,
    lapse_key: str | None = None,
) -> MonitoringEvent:
    now = utcnow()
    return MonitoringEvent(
        jti=secrets.token_hex(16),
        subscription_id=subscription.id,
        verifier_client_id=subscription.verifier_client_id,
        event_type=event_type,
        profession=subscription.profession,
        status=status,
        suspended_until=suspended_until,
        effective_at=effective_at,
        lapse_key=lapse_key,
        created_at=now,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=now,
    )


def _lapse_key(subscription_id: str, ended_at: datetime) -> str:
    return f"{subscription_id}:lapse:{ended_at.date().isoformat()}"


def _is_lapse(change: LicenceEvent) -> bool:
    # The register's own record of a suspension that ended by itself (no actor).
    return (
        change.actor is None and change.from_status == "suspended" and change.to_status == "active"
    )


def _running(session: Session, licence_id: str) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription).where(
                Subscription.licence_id == licence_id, Subscription.active_slot == ACTIVE_SLOT
            )
        )
    )


def _events_for(session: Session, change: LicenceEvent) -> list[MonitoringEvent]:
    if change.from_status is None:  # registration: nobody can monitor it yet
        return []
    events = []
    for subscription in _running(session, change.licence_id):
        lapse_key = _lapse_key(subscription.id, change.at) if _is_lapse(change) else None
        if lapse_key and session.scalar(
            select(MonitoringEvent.seq).where(MonitoringEvent.lapse_key == lapse_key)
        ):
            continue  # the worker already announced this end of suspension
        events.append(
            new_event(
                subscription,
                EventType.REPRIMAND_RECORDED if change.sanction else EventType.STATUS_CHANGED,
                status=change.to_status,
                suspended_until=change.until,
                effective_at=change.at,
                lapse_key=lapse_key,
            )
        )
        if change.to_status == LicenceStatus.ERASED.value:
            # The licence and its person are gone from the register: monitoring ends.
            subscription.active_slot = None
            subscription.ended_at = change.at
            subscription.ended_by = "licence_erased"
    return events


def _add_outbox_events(session: Session, _flush_context, _instances) -> None:
    changes = [obj for obj in session.new if isinstance(obj, LicenceEvent)]
    if not changes:
        return
    with session.no_autoflush:
        for change in sorted(changes, key=lambda c: c.at):
            session.add_all(_events_for(session, change))


def install() -> None:
    """Registers the listener once per process (every Session, every app)."""
    if not event.contains(Session, "before_flush", _add_outbox_events):
        event.listen(Session, "before_flush", _add_outbox_events)


def emit_due_lapses(session: Session, *, day: date | None = None, limit: int = 500) -> int:
    """Writes the event of every monitored suspension whose last day is before ``day``
    (Japan's calendar) and that has none yet; commits; returns how many were written."""
    day = day or today()
    rows = session.execute(
        select(Subscription, Licence.suspended_until)
        .join(Licence, Licence.id == Subscription.licence_id)
        .where(
            Subscription.active_slot == ACTIVE_SLOT,
            Licence.status == LicenceStatus.SUSPENDED,
            Licence.suspended_until < day,
            ~select(MonitoringEvent.seq)
            .where(
                MonitoringEvent.subscription_id == Subscription.id,
                MonitoringEvent.lapse_key.is_not(None),
                # Only this suspension's end lies after the licence's last change.
                MonitoringEvent.effective_at > Licence.updated_at,
            )
            .exists(),
        )
        .limit(limit)
        # Serialises with a concurrent regulator change of the same licence (PostgreSQL).
        .with_for_update(of=Licence.__table__, skip_locked=True)
    ).all()
    written = 0
    for subscription, until in rows:
        ended_at = suspension_end(until)
        session.add(
            new_event(
                subscription,
                EventType.STATUS_CHANGED,
                status=LicenceStatus.ACTIVE.value,
                suspended_until=None,
                effective_at=ended_at,
                lapse_key=_lapse_key(subscription.id, ended_at),
            )
        )
        written += 1
    session.commit()
    return written
