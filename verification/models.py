"""Verification tables: challenges (nonces), CRLs, access records.

No foreign keys to other branches (licensing): holders are referenced by their
licensing agency code only, verifiers by client id plus a snapshot of their name.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow, value_enum


class ChallengePurpose(enum.StrEnum):
    VERIFIER = "verifier"  # bound to an API client and a profession
    HOLDER = "holder"  # public holder sign-in challenge, bound to no client
    PRESENTATION = "presentation"  # SD-JWT presentation nonce, bound to a client and profession


class Challenge(Base):
    """A single-use nonce. Only its SHA-256 is stored; consumption is one UPDATE."""

    __tablename__ = "verification_challenges"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[ChallengePurpose] = mapped_column(
        value_enum(ChallengePurpose, "challenge_purpose", 20)
    )
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str | None] = mapped_column(String(32), default=None)
    profession: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(default=None)


class CardCrl(Base):
    """The newest accepted full CRL of one CA of the trust bundle.

    ``issuer_key`` identifies the CA certificate that verified the CRL's signature
    (SHA-256 over its subject and public key), so a same-named CA with another key can
    never stand in for it. ``crl_number`` is zero-padded decimal so that string order is
    number order (CRLNumber is at most 20 octets, i.e. 49 decimal digits).
    """

    __tablename__ = "verification_crls"

    issuer_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer_name: Mapped[str] = mapped_column(String(1000))
    crl_number: Mapped[str] = mapped_column(String(49))
    this_update: Mapped[datetime]
    next_update: Mapped[datetime]
    sha256: Mapped[str] = mapped_column(String(64))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    revoked_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by: Mapped[str | None] = mapped_column(String(32), default=None)


class AccessRecord(Base):
    """One look at a holder's licence (or one rejected attempt with their card).

    ``outcome`` is the verification outcome (licensed, not_licensed, suspended,
    revoked) or, for a rejected attempt, the rejection's error code.
    """

    __tablename__ = "verification_access_records"
    __table_args__ = (Index("ix_verification_access_records_holder_at", "holder_code", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_code: Mapped[str] = mapped_column(String(200), info={"agency_code": "licensing"})
    verifier_client_id: Mapped[str] = mapped_column(String(32))
    verifier_name: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    profession: Mapped[str | None] = mapped_column(String(40), default=None)
    outcome: Mapped[str] = mapped_column(String(40))
    verification_id: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
