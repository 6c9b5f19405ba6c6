"""Holder tables (Alembic branch ``holder``): sessions, status lists, issued credentials.

No foreign keys to other branches: holders are referenced by their licensing agency
code, licences by their public id. A card is kept as its validated certificate chain
(JPKI user-authentication certificates carry no personal data), so revocation can be
checked again at any time against the newest CRL.

Nothing here stores a status: the status of a credential is derived at request time
from the licence register and the card's revocation state (``holder.credentials``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow


class HolderSession(Base):
    """A holder signed in with their card; the bearer token names this row (``sid``)."""

    __tablename__ = "holder_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder_code: Mapped[str] = mapped_column(String(200), info={"agency_code": "licensing"})
    # Validated chain, leaf first, root last: standard base64 DER.
    card_chain: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class HolderStatusList(Base):
    """One Token Status List; its entries are allocated to credentials at random."""

    __tablename__ = "holder_status_lists"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class HolderCredential(Base):
    """An issued SD-JWT VC: which licence and card its status list entry follows."""

    __tablename__ = "holder_credentials"
    __table_args__ = (
        UniqueConstraint("status_list_id", "idx", name="uq_holder_credentials_list_idx"),
        Index("ix_holder_credentials_list_expires", "status_list_id", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status_list_id: Mapped[str] = mapped_column(ForeignKey("holder_status_lists.id"))
    idx: Mapped[int] = mapped_column(Integer)
    holder_code: Mapped[str] = mapped_column(
        String(200), index=True, info={"agency_code": "licensing"}
    )
    licence_id: Mapped[str] = mapped_column(String(32))
    profession: Mapped[str] = mapped_column(String(32))
    card_chain: Mapped[list[str]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
