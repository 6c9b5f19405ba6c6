"""Licensing tables: professions, the licence register, its event history, the audit chain.

The register stores a person only as the licensing agency's code (``holder_code``),
never a My Number. ``status`` is the *stored* status: a suspension whose end date has
passed is still stored as ``suspended`` until the next change, and every reader goes
through ``licensing.service.effective_status`` (it then reads as ``active``).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow, value_enum

# Licence statuses that count as "the person's current licence" for a profession: at
# most one such licence per (holder, profession).
CURRENT_STATUSES = ("active", "suspended")
_CURRENT_SQL = "status IN ('active', 'suspended')"
CURRENT_SLOT = 1


class LicenceStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    DECEASED = "deceased"
    ERASED = "erased"


class Sanction(enum.StrEnum):
    """Sanctions recorded on a licence that leave its status unchanged."""

    REPRIMAND = "reprimand"  # 戒告


class Profession(Base):
    """Reference data, seeded by the ``l001`` migration."""

    __tablename__ = "professions"
    __table_args__ = {"info": {"reference_data": True}}

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_ja: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(64))
    # A full-match regular expression over the canonical registration number (decimal
    # digits without leading zeros); every profession's format lies within 1-8 digits.
    registration_number_pattern: Mapped[str] = mapped_column(String(64))


class Licence(Base):
    __tablename__ = "licences"
    __table_args__ = (
        # Search by registration number (alone or with the profession); also enforces
        # that a number is used once per profession. Erased licences hold no number.
        Index(
            "uq_licences_registration_number_profession",
            "registration_number",
            "profession",
            unique=True,
        ),
        # One index for two jobs: the verification hot path looks up (holder, profession),
        # and it allows one current licence per person and profession: ``current_slot``
        # is 1 for an active or suspended licence and NULL otherwise (NULLs are distinct).
        Index(
            "uq_licences_holder_code_profession_current",
            "holder_code",
            "profession",
            "current_slot",
            unique=True,
        ),
        CheckConstraint(
            f"({_CURRENT_SQL} AND current_slot = {CURRENT_SLOT}) "
            f"OR (NOT {_CURRENT_SQL} AND current_slot IS NULL)",
            name="current_slot_matches_status",
        ),
        # Listing filtered by status, in register order.
        Index("ix_licences_status_pk", "status", "pk"),
        CheckConstraint(
            "(status = 'suspended') = (suspended_until IS NOT NULL)", name="suspension_has_end"
        ),
        CheckConstraint(
            "(status = 'erased' AND holder_code IS NULL AND name IS NULL "
            "AND registration_number IS NULL) OR (status <> 'erased' AND holder_code IS NOT NULL "
            "AND name IS NOT NULL AND registration_number IS NOT NULL)",
            name="erased_holds_no_personal_data",
        ),
    )

    # Internal key: register order, keyset pagination, never shown.
    pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Public identifier (``lic_`` + time-ordered hex), the only id the API shows.
    id: Mapped[str] = mapped_column(String(32), unique=True)
    profession: Mapped[str] = mapped_column(ForeignKey("professions.code"))
    # The licensing agency's code for the holder; None once the licence is erased.
    holder_code: Mapped[str | None] = mapped_column(String(200), info={"agency_code": "licensing"})
    name: Mapped[str | None] = mapped_column(String(200))
    # Canonical decimal digits, no leading zeros. Only regulators ever see it.
    registration_number: Mapped[str | None] = mapped_column(String(8))
    registered_on: Mapped[date] = mapped_column(Date)
    status: Mapped[LicenceStatus] = mapped_column(value_enum(LicenceStatus, "licence_status", 16))
    # 1 while the licence is current (active or suspended), else NULL; see the index.
    current_slot: Mapped[int | None] = mapped_column(Integer)
    # Last day of a suspension (inclusive, Japan calendar date); only while suspended.
    suspended_until: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class LicenceEvent(Base):
    """Append-only status history of a licence (registration is the first event)."""

    __tablename__ = "licence_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    licence_id: Mapped[str] = mapped_column(ForeignKey("licences.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    until: Mapped[date | None] = mapped_column(Date)
    # Who acted: the API client's name or the console operator; None for the service
    # itself (end of a suspension).
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # SHA-256 of the licence's state after this change (``licensing.reconcile``); None
    # for the service's own notes and for events older than the column.
    state_digest: Mapped[str | None] = mapped_column(String(64))
    # A recorded sanction (the status stays as it was) and the day it was imposed;
    # None for status changes.
    sanction: Mapped[Sanction | None] = mapped_column(value_enum(Sanction, "sanction", 16))
    sanction_on: Mapped[date | None] = mapped_column(Date)


class AuditEntry(Base):
    """One link of the audit hash chain (see ``licensing.audit``)."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Free text (reasons) with the salt of its digest; kept out of the hash material so
    # that it can be erased (None then). The chain hashes ``free_text_digest``.
    free_text: Mapped[dict[str, str] | None] = mapped_column(JSON)
    free_text_digest: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """A single row (id 1): the last sequence number and hash; writers lock it."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
