from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, utcnow, value_enum


class Role(enum.StrEnum):
    VERIFIER = "verifier"
    REGULATOR = "regulator"
    CARD_AUTHORITY = "card_authority"


class ApiClient(Base):
    __tablename__ = "api_clients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(value_enum(Role, "client_role", 20))
    # SHA-256 of the bearer token: tokens are 256-bit random, so no slow hash is needed,
    # and the lookup stays a single indexed query.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # A regulator's professions, comma-separated; None: every profession.
    professions: Mapped[str | None] = mapped_column(String(200), default=None)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def profession_scope(self) -> tuple[str, ...]:
        return scope_of(self.professions)


def scope_of(professions: str | None) -> tuple[str, ...]:
    """The professions a stored scope names (empty: unscoped, every profession)."""
    return tuple(professions.split(",")) if professions else ()


class ClientAudience(Base):
    """An audience (URI) a verifier's holders present credentials to (key-binding JWT
    ``aud``). Unique across clients: a presentation made for one verifier can never be
    accepted by another (``POST /v1/presentations``)."""

    __tablename__ = "api_client_audiences"

    audience: Mapped[str] = mapped_column(String(512), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_clients.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
