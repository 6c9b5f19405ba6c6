"""Tables of the embedded identity platform's own store (never the licensing database).

Table names carry an ``identity_`` prefix and Alembic keeps its own version table, so
the store can also live in a schema or database shared with other things.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db import NAMING_CONVENTION, UTCDateTime, utcnow


class IdentityBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class Person(IdentityBase):
    """A resident, known by a random internal id; the My Number only encrypted."""

    __tablename__ = "identity_persons"

    # 16 random bytes (``crypto.new_person_ids``), hex: what every agency code encrypts.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Keyed BLAKE2b-256 of the My Number, under a key derived from ``key_version``.
    my_number_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    # AES-256-GCM nonce || ciphertext || tag of the My Number.
    my_number_sealed: Mapped[bytes] = mapped_column(LargeBinary(64))
    # Master key version of the two columns above, and of this person's current codes.
    key_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CertificateRegistration(IdentityBase):
    """A card certificate (issuer + serial) registered to a person."""

    __tablename__ = "identity_certificates"

    # SHA-256 (hex) of the DER issuer name, and the serial in lowercase hex.
    issuer_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    serial: Mapped[str] = mapped_column(String(48), primary_key=True)
    person_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("identity_persons.id"), index=True
    )
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)


class PlatformState(IdentityBase):
    """One row: the master key version in force and its fingerprint."""

    __tablename__ = "identity_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    current_key_version: Mapped[int] = mapped_column(Integer)
    key_fingerprint: Mapped[str] = mapped_column(String(64))
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)
