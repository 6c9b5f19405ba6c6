"""The delivery worker: pushes pending events to verifiers' webhooks, at least once.

Each round claims a batch of due events (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several workers share the work and never push one event at the same time; SQLite runs
one worker), pushes each as a signed SET, logs the attempt and commits the batch. A
worker stopped mid-batch commits nothing: its events stay pending and are pushed again
with the same ``jti`` (receivers de-duplicate). A failed push is retried after an
exponential back-off with jitter; after ``MONITORING_RETRY_FOR`` (24 h) the event is
``expired`` and stays available to polls. Events of verifiers without a webhook wait
for polls. Every ``MONITORING_LAPSE_CHECK_SECONDS`` the worker also writes the events of
suspensions that ended by themselves (``outbox.emit_due_lapses``).

Settings: ``MONITORING_BATCH_SIZE``, ``MONITORING_RETRY_BASE_SECONDS``,
``MONITORING_RETRY_MAX_SECONDS``, ``MONITORING_RETRY_FOR_SECONDS``,
``MONITORING_IDLE_SECONDS``, ``MONITORING_LAPSE_CHECK_SECONDS`` (defaults in
``core.config``; read again at each start, so a test may change them on the app).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import utcnow
from monitoring import webhooks
from monitoring.errors import InvalidWebhook
from monitoring.models import (
    DeliveryAttempt,
    DeliveryState,
    MonitoringEvent,
    Subscription,
    Webhook,
)
from monitoring.outbox import emit_due_lapses
from monitoring.sets import sign_set, verifier_subject

log = logging.getLogger("licence_service.monitoring")
_jitter = random.SystemRandom()


@dataclass(frozen=True)
class WorkerSettings:
    batch_size: int
    retry_base: float
    retry_max: float
    retry_for: float
    idle: float
    lapse_check: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WorkerSettings:
        def number(key: str) -> float:
            value = config.get(key)
            try:
                result = float(value)
            except (TypeError, ValueError):
                result = -1.0
            if not 0 <= result <= 10 * 86400:
                raise ValueError(f"{key} must be a number of seconds (or a count) from 0 up")
            return result

        return cls(
            batch_size=int(number("MONITORING_BATCH_SIZE")),
            retry_base=number("MONITORING_RETRY_BASE_SECONDS"),
            retry_max=number("MONITORING_RETRY_MAX_SECONDS"),
            retry_for=number("MONITORING_RETRY_FOR_SECONDS"),
            idle=number("MONITORING_IDLE_SECONDS"),
            lapse_check=number("MONITORING_LAPSE_CHECK_SECONDS"),
        )


def retry_delay(attempts: int, settings: WorkerSettings) -> timedelta:
    """Exponential back-off with jitter: between half and all of base * 2**(n-1), capped."""
    ceiling = min(settings.retry_max, settings.retry_base * 2 ** min(attempts - 1, 30))
    return timedelta(seconds=_jitter.uniform(ceiling / 2, ceiling))


def _push(
    app: Flask, transport: webhooks.Transport, event, subscription, url
) -> webhooks.PushResult:
    try:
        target = webhooks.check_target(url, app.config)
    except InvalidWebhook:
        return webhooks.PushResult("refused_target")
    token = sign_set(app, event, verifier_subject(subscription))
    return transport.post(target, token.encode("ascii"))


def deliver_batch(
    app: Flask, session: Session, transport: webhooks.Transport, settings: WorkerSettings
) -> int:
    """Claims and pushes one batch of due events; commits; returns how many were tried."""
    now = utcnow()
    rows = session.execute(
        select(MonitoringEvent, Subscription, Webhook.url)
        .join(Subscription, Subscription.id == MonitoringEvent.subscription_id)
        .join(Webhook, Webhook.verifier_client_id == MonitoringEvent.verifier_client_id)
        .where(
            MonitoringEvent.state == DeliveryState.PENDING,
            MonitoringEvent.next_attempt_at <= now,
        )
        .order_by(MonitoringEvent.seq)
        .limit(settings.batch_size)
        .with_for_update(of=MonitoringEvent.__table__, skip_locked=True)
    ).all()
    give_up = timedelta(seconds=settings.retry_for)
    for event, subscription, url in rows:
        if now - event.created_at > give_up:
            event.state = DeliveryState.EXPIRED
            continue
        result = _push(app, transport, event, subscription, url)
        event.attempts += 1
        attempted_at = utcnow()
        session.add(
            DeliveryAttempt(
                event_seq=event.seq,
                verifier_client_id=event.verifier_client_id,
                jti=event.jti,
                attempt=event.attempts,
                at=attempted_at,
                outcome=result.outcome,
                http_status=result.http_status,
            )
        )
        if result.outcome == "accepted":
            event.state = DeliveryState.DELIVERED
            event.delivered_at = attempted_at
        else:
            event.next_attempt_at = attempted_at + retry_delay(event.attempts, settings)
    session.commit()
    return len(rows)


def check_lapses(session: Session) -> int:
    try:
        return emit_due_lapses(session)
    except IntegrityError:
        # Another worker or a register change wrote the same end of suspension first.
        session.rollback()
        return 0


def run(app: Flask, stop: threading.Event, *, once: bool = False) -> int:
    """Delivers until ``stop`` is set (or, with ``once``, until nothing is due);
    returns the number of push attempts made."""
    settings = WorkerSettings.from_config(app.config)
    transport = webhooks.Transport()
    sessionmaker = app.extensions["db"].sessionmaker
    total = 0
    next_lapse_check = 0.0
    try:
        with app.app_context():
            while not stop.is_set():
                try:
                    with sessionmaker() as session:
                        if time.monotonic() >= next_lapse_check:
                            check_lapses(session)
                            next_lapse_check = time.monotonic() + settings.lapse_check
                        tried = deliver_batch(app, session, transport, settings)
                except Exception as error:  # noqa: BLE001 - keep delivering after a bad round
                    # The round's claims were rolled back: its events stay pending. Only
                    # the class is logged (messages may carry data).
                    log.error("delivery round failed", extra={"error_class": type(error).__name__})
                    if once:
                        raise
                    stop.wait(settings.idle or 1.0)
                    continue
                total += tried
                if tried == 0:
                    if once:
                        break
                    stop.wait(settings.idle)
    finally:
        transport.close()
    return total
