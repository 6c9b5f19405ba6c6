"""Monitoring tables (Alembic branch ``monitoring``): subscriptions, webhooks, the event
outbox and its delivery log.

No foreign keys to other branches: licences are referenced by their public id, verifiers
by client id, holders by the licensing agency's code. The verifier's own pairwise code
(the SET ``sub``) is never stored: it belongs to another agency. It is derived from the
holder code through the identity platform when a SET is built; rosters find a subject by
``subject_digest`` (SHA-256 of the verifier's code), which cannot be turned back into the
code and means nothing to any other verifier.

An event row holds the claims of its Security Event Token, not the signed token: the
token carries the verifier's code, so it is signed at delivery, with the same ``jti`` and
``iat`` on every attempt.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow, value_enum

# ``active_slot`` is 1 while a subscription runs and NULL once ended, so the unique index
# over (verifier, licence, active_slot) allows one running subscription per pair.
ACTIVE_SLOT = 1


class EventType(enum.StrEnum):
    STATUS_CHANGED = "status-changed"
    REPRIMAND_RECORDED = "reprimand-recorded"  # a sanction; the status stays
    MONITORING_ENDED = "monitoring-ended"


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for (another) push attempt, or for a poll
    DELIVERED = "delivered"  # a push was acknowledged with 2xx
    EXPIRED = "expired"  # pushes failed for 24 hours; still available to polls


class Subscription(Base):
    __tablename__ = "monitoring_subscriptions"
    __table_args__ = (
        Index(
            "uq_monitoring_subscriptions_running",
            "verifier_client_id",
            "licence_id",
            "active_slot",
            unique=True,
        ),
        Index(
            "ix_monitoring_subscriptions_verifier_digest", "verifier_client_id", "subject_digest"
        ),
        Index("ix_monitoring_subscriptions_licence_slot", "licence_id", "active_slot"),
        Index("ix_monitoring_subscriptions_holder", "holder_code"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    verifier_client_id: Mapped[str] = mapped_column(String(32))
    # Snapshot of the verifier's display name for the holder's list.
    verifier_name: Mapped[str] = mapped_column(String(200))
    holder_code: Mapped[str] = mapped_column(String(200), info={"agency_code": "licensing"})
    subject_digest: Mapped[str] = mapped_column(String(64))
    licence_id: Mapped[str] = mapped_column(String(32))
    profession: Mapped[str] = mapped_column(String(32))
    active_slot: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    # "holder", "verifier" or "licence_erased"
    ended_by: Mapped[str | None] = mapped_column(String(16), default=None)


class Webhook(Base):
    """A verifier's push receiver; a verifier without one polls."""

    __tablename__ = "monitoring_webhooks"

    verifier_client_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonitoringEvent(Base):
    """The outbox: one row per (status change, subscription), written in the change's
    transaction. ``seq`` orders events for polling."""

    __tablename__ = "monitoring_events"
    __table_args__ = (
        Index("ix_monitoring_events_verifier_seq", "verifier_client_id", "seq"),
        Index("ix_monitoring_events_state_next_attempt", "state", "next_attempt_at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    jti: Mapped[str] = mapped_column(String(32), unique=True)
    subscription_id: Mapped[str] = mapped_column(
        ForeignKey("monitoring_subscriptions.id"), index=True
    )
    verifier_client_id: Mapped[str] = mapped_column(String(32))
    event_type: Mapped[EventType] = mapped_column(
        value_enum(EventType, "monitoring_event_type", 20)
    )
    profession: Mapped[str] = mapped_column(String(32))
    status: Mapped[str | None] = mapped_column(String(16))
    suspended_until: Mapped[date | None] = mapped_column(Date)
    effective_at: Mapped[datetime]
    # Set for a suspension that ended by itself: the worker and the register's next change
    # both notice it, and the unique key lets only one of them write the event.
    lapse_key: Mapped[str | None] = mapped_column(String(80), unique=True, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[DeliveryState] = mapped_column(
        value_enum(DeliveryState, "monitoring_delivery_state", 16)
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class DeliveryAttempt(Base):
    """One push attempt of one event (the delivery log)."""

    __tablename__ = "monitoring_delivery_attempts"
    __table_args__ = (
        Index("ix_monitoring_delivery_attempts_verifier_id", "verifier_client_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_seq: Mapped[int] = mapped_column(ForeignKey("monitoring_events.seq"), index=True)
    verifier_client_id: Mapped[str] = mapped_column(String(32))
    jti: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # "accepted", "http_error", "timeout", "connection_failed", "refused_target"
    outcome: Mapped[str] = mapped_column(String(32))
    http_status: Mapped[int | None] = mapped_column(Integer, default=None)
