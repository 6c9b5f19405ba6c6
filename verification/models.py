"""Verification tables: challenges (nonces), CRLs, permanent revocations, access records.

No foreign keys to other branches (licensing): holders are referenced by their
licensing agency code only, verifiers by client id plus a snapshot of their name.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow, value_enum


class ChallengePurpose(enum.StrEnum):
    VERIFIER = "verifier"  # bound to an API client and a profession
    HOLDER = "holder"  # public holder sign-in challenge, bound to no client
    PRESENTATION = "presentation"  # SD-JWT presentation nonce, bound to a client and profession


class Challenge(Base):
    """A single-use nonce; consumption is one UPDATE matching its SHA-256."""

    __tablename__ = "verification_challenges"
    # Counting a client's outstanding challenges (CHALLENGE_MAX_OUTSTANDING) on each issue.
    __table_args__ = (
        Index("ix_verification_challenges_client_expires", "client_id", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    purpose: Mapped[ChallengePurpose] = mapped_column(
        value_enum(ChallengePurpose, "challenge_purpose", 20)
    )
    nonce_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: A verifier challenge's nonce itself, for its card request (``GET /r/{id}`` hands
    #: it to whoever holds the challenge id; what protects a verification is the card's
    #: signature over it, the verifier binding and single use, not its secrecy). Holder
    #: challenges keep only the hash. Consumption always matches the hash.
    nonce: Mapped[str | None] = mapped_column(String(64), default=None)
    client_id: Mapped[str | None] = mapped_column(String(32), default=None)
    profession: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    consumed_at: Mapped[datetime | None] = mapped_column(default=None)
    #: The verifier asked the holder to consent to monitoring (cross-device flow).
    monitoring_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Once answered: the verification response body (``VerificationOut``) or the
    #: problem body of the last rejection of an assertion the card signed, and the
    #: consents both asked for and signed (where monitoring starts from).
    verification: Mapped[dict | None] = mapped_column(JSON, default=None)
    rejection: Mapped[dict | None] = mapped_column(JSON, default=None)
    consented_to: Mapped[list | None] = mapped_column(JSON, default=None)


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


class PermanentRevocation(Base):
    """A certificate revoked for good by a CA's CRL (any reason but certificateHold).

    Only certificateHold is reversible (RFC 5280 5.3.1), so a later CRL that omits the
    serial changes nothing: the revocation stays in force. ``serial`` is lowercase hex.
    """

    __tablename__ = "verification_permanent_revocations"

    issuer_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(40), default=None)
    crl_number: Mapped[str] = mapped_column(String(49))  # the first CRL that listed it
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccessRecord(Base):
    """One look at a holder's licence (or one rejected attempt with their card).

    ``outcome`` is the verification outcome (licensed, not_licensed, suspended,
    revoked) or, for a rejected attempt, the rejection's error code.
    """

    __tablename__ = "verification_access_records"
    __table_args__ = (
        Index("ix_verification_access_records_holder_at", "holder_code", "at"),
        # Pruning records past ACCESS_LOG_RETENTION.
        Index("ix_verification_access_records_at", "at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_code: Mapped[str] = mapped_column(String(200), info={"agency_code": "licensing"})
    verifier_client_id: Mapped[str] = mapped_column(String(32))
    verifier_name: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    profession: Mapped[str | None] = mapped_column(String(40), default=None)
    outcome: Mapped[str] = mapped_column(String(40))
    verification_id: Mapped[str | None] = mapped_column(String(32), default=None, unique=True)
