"""Tables of the pages: staff accounts, browser sessions, HR checks, holder sign-ins.

Browser session and one-time tokens are stored only as SHA-256 hashes (they are 256-bit
random, so no slow hash is needed). No foreign keys to other domains' tables (each
domain has its own migration branch).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow, value_enum


class StaffRole(enum.StrEnum):
    STAFF = "staff"
    ADMIN = "admin"


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(32), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[StaffRole] = mapped_column(value_enum(StaffRole, "staff_role", 10))
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    # The last TOTP time step accepted: a code is good once (no replay within its window).
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    setup_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    setup_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BrowserSessionKind(enum.StrEnum):
    STAFF = "staff"
    HOLDER = "holder"


class BrowserSession(Base):
    """A signed-in browser: staff (idle 30 min, absolute 12 h) or holder (the holder
    session's own 10 minutes)."""

    __tablename__ = "browser_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[BrowserSessionKind] = mapped_column(
        value_enum(BrowserSessionKind, "browser_session_kind", 10)
    )
    staff_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)
    # Sealed (web/sealing.py): a copy of the database signs no one in.
    holder_session_token: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()


class HrCheck(Base):
    """A check started on the HR page; its outcome is copied from the challenge once the
    card app has answered, so the history survives challenge pruning."""

    __tablename__ = "hr_checks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(32), index=True)
    staff_id: Mapped[str] = mapped_column(String(32))
    challenge_id: Mapped[str] = mapped_column(String(32), unique=True)
    profession: Mapped[str] = mapped_column(String(40))
    monitoring: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(12), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(40), default=None)
    holder_name: Mapped[str | None] = mapped_column(String(200), default=None)
    # The verifier's own code for the person and the receipt naming it: sealed (see
    # web/sealing.py); the digest lets the history filter by the code.
    subject_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    subject_digest: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    licence_status: Mapped[str | None] = mapped_column(String(20), default=None)
    as_of: Mapped[str | None] = mapped_column(String(40), default=None)
    verification_id: Mapped[str | None] = mapped_column(String(64), default=None)
    receipt_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class HolderSignIn(Base):
    """A holder sign-in through the cross-device flow, bound to the browser that started
    it (``browser_hash``): only that browser can take the holder session it yields."""

    __tablename__ = "holder_sign_ins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128))
    browser_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    holder_session_token: Mapped[str | None] = mapped_column(Text, default=None)  # sealed
    rejection: Mapped[str | None] = mapped_column(String(40), default=None)
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
