"""Challenges: single-use nonces with a 5-minute life.

A nonce is 256 random bits (``secrets.token_urlsafe(32)``), matched by its SHA-256 (a
verifier challenge also keeps the nonce for its card request). Consumption is ONE
conditional UPDATE (nonce, purpose, client, not consumed, not expired) whose row count
says whether it worked, so two concurrent submissions cannot both succeed on SQLite or
PostgreSQL, and a check that fails (wrong client, expired) changes nothing, so it never
burns someone else's nonce.

Two purposes share the table: ``verifier`` challenges are bound to the calling API
client and a profession; ``holder`` challenges (holder sign-in) are bound to no client.

A verifier challenge keeps its answer (``record_challenge_outcome``): the verification
body, or the last rejection of an assertion the card signed, so the verifier can read it
(``challenge_state``) when the card app answered it directly (cross-device flow).
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from core.db import utcnow
from core.errors import TooManyRequests
from verification.models import Challenge, ChallengePurpose

CHALLENGE_LIFETIME = timedelta(minutes=5)
NONCE_BYTES = 32  # 256 bits; the contract asks for at least 128
MAX_NONCE_LENGTH = 128  # longer strings cannot be one of ours; never hashed or stored
_CHALLENGE_ID = re.compile(r"[0-9a-f]{32}")  # secrets.token_hex(16)


def nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedChallenge:
    challenge_id: str
    nonce: str  # returned to the caller (a verifier challenge's also by its card request)
    purpose: ChallengePurpose
    client_id: str | None
    profession: str | None
    expires_at: datetime


#: What a challenge can ask the holder to consent to, by its column.
MONITORING = "monitoring"


@dataclass(frozen=True)
class ConsumedChallenge:
    challenge_id: str
    purpose: ChallengePurpose
    client_id: str | None
    profession: str | None
    monitoring_requested: bool = False

    @property
    def consents(self) -> frozenset[str]:
        """The consents this challenge asked the holder for."""
        return frozenset({MONITORING}) if self.monitoring_requested else frozenset()


@dataclass(frozen=True)
class PeekedChallenge:
    challenge_id: str
    profession: str | None


def create_challenge(
    session: Session,
    purpose: ChallengePurpose,
    *,
    client_id: str | None = None,
    profession: str | None = None,
    monitoring: bool = False,
    now: datetime | None = None,
    commit: bool = True,
    max_outstanding: int | None = None,
) -> IssuedChallenge:
    """A new challenge; 429 when ``client_id`` already has ``max_outstanding`` unexpired,
    unused ones (a flood of challenges must not grow the table without bound)."""
    if purpose is not ChallengePurpose.HOLDER and (client_id is None or profession is None):
        raise ValueError("verifier and presentation challenges name a client and a profession")
    if purpose is ChallengePurpose.HOLDER and client_id is not None:
        raise ValueError("holder challenges are bound to no client")
    issued_at = now or utcnow()
    if client_id is not None and max_outstanding is not None:
        if outstanding_challenges(session, client_id, issued_at) >= max_outstanding:
            raise TooManyRequests(
                f"This client has {max_outstanding} unexpired, unused challenges; use them "
                "or wait for them to expire (5 minutes) before asking for more."
            )
    nonce = secrets.token_urlsafe(NONCE_BYTES)
    challenge = Challenge(
        id=secrets.token_hex(16),
        purpose=purpose,
        nonce_hash=nonce_hash(nonce),
        nonce=nonce if purpose is ChallengePurpose.VERIFIER else None,
        client_id=client_id,
        profession=profession,
        monitoring_requested=monitoring,
        created_at=issued_at,
        expires_at=issued_at + CHALLENGE_LIFETIME,
    )
    session.add(challenge)
    if commit:
        session.commit()
    return IssuedChallenge(
        challenge.id, nonce, purpose, client_id, profession, challenge.expires_at
    )


def outstanding_challenges(session: Session, client_id: str, now: datetime) -> int:
    """How many of this client's challenges are unexpired and unused."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Challenge)
            .where(
                Challenge.client_id == client_id,
                Challenge.consumed_at.is_(None),
                Challenge.expires_at > now,
            )
        )
        or 0
    )


def _usable_conditions(owner_is_null: bool) -> tuple:
    """Every binding a nonce must satisfy: its hash, purpose, owner, unused, unexpired."""
    table = Challenge.__table__
    owner = (
        table.c.client_id.is_(None) if owner_is_null else table.c.client_id == bindparam("b_client")
    )
    return (
        table.c.nonce_hash == bindparam("b_nonce_hash"),
        table.c.purpose == bindparam("b_purpose"),
        owner,
        table.c.consumed_at.is_(None),
        table.c.expires_at > bindparam("b_now"),
    )


_COLUMNS = tuple(
    Challenge.__table__.c[name]
    for name in ("id", "purpose", "client_id", "profession", "monitoring_requested")
)


def _consume_statement(owner_is_null: bool):
    """The consuming UPDATE, built once: a Core statement with bound parameters costs a
    cache lookup per call instead of construction (hot path)."""
    return (
        update(Challenge.__table__)
        .where(*_usable_conditions(owner_is_null))
        .values(consumed_at=bindparam("b_consumed_at"))
        .returning(*_COLUMNS)
    )


_CONSUME_UNOWNED = _consume_statement(owner_is_null=True)
_CONSUME_OWNED = _consume_statement(owner_is_null=False)


def consume_nonce(
    session: Session,
    nonce: str,
    purpose: ChallengePurpose,
    *,
    client_id: str | None = None,
    now: datetime | None = None,
) -> ConsumedChallenge | None:
    """Marks the challenge used, in one statement, iff every binding holds.

    Does not commit: the caller commits it together with what the nonce unlocked (the
    access record), or rolls back and the nonce stays usable.
    """
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        return None
    at = now or utcnow()
    params = {
        "b_nonce_hash": nonce_hash(nonce),
        "b_purpose": purpose,
        "b_now": at,
        "b_consumed_at": at,
    }
    if client_id is None:
        statement = _CONSUME_UNOWNED
    else:
        statement = _CONSUME_OWNED
        params["b_client"] = client_id
    row = session.execute(statement, params).one_or_none()
    if row is None:
        return None
    return ConsumedChallenge(
        row.id,
        ChallengePurpose(row.purpose),
        row.client_id,
        row.profession,
        bool(row.monitoring_requested),
    )


def peek_challenge(
    session: Session, nonce: str, purpose: ChallengePurpose, *, client_id: str | None
) -> PeekedChallenge | None:
    """This caller's challenge for ``nonce``, if any; changes nothing.

    Used only to label a rejected attempt (the holder's log, the challenge's state).
    """
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
        return None
    owner = Challenge.client_id.is_(None) if client_id is None else Challenge.client_id == client_id
    row = session.execute(
        select(Challenge.id, Challenge.profession).where(
            Challenge.nonce_hash == nonce_hash(nonce), Challenge.purpose == purpose, owner
        )
    ).one_or_none()
    return PeekedChallenge(row.id, row.profession) if row is not None else None


def peek_challenge_by_id(session: Session, challenge_id: str) -> PeekedChallenge | None:
    """The challenge ``challenge_id`` (the caller has checked whose it is); changes nothing."""
    profession = session.scalar(select(Challenge.profession).where(Challenge.id == challenge_id))
    return PeekedChallenge(challenge_id, profession) if profession is not None else None


_RECORD_OUTCOME = (
    update(Challenge.__table__)
    .where(Challenge.__table__.c.id == bindparam("b_id"))
    .values(
        verification=bindparam("b_verification"),
        rejection=bindparam("b_rejection"),
        consented_to=bindparam("b_consented_to"),
    )
)


def record_challenge_outcome(
    session: Session,
    challenge_id: str,
    *,
    verification: dict[str, Any] | None = None,
    consented_to: list[str] | None = None,
    rejection: dict[str, Any] | None = None,
) -> None:
    """Keeps a verifier challenge's answer (not committed): the verification body and
    the consents recorded, or the problem body of a rejection."""
    session.execute(
        _RECORD_OUTCOME,
        {
            "b_id": challenge_id,
            "b_verification": verification,
            "b_rejection": rejection,
            "b_consented_to": consented_to,
        },
    )


class ChallengeState(enum.StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    REJECTED = "rejected"
    EXPIRED = "expired"


def find_verifier_challenge(
    session: Session, challenge_id: str, *, client_id: str | None = None
) -> Challenge | None:
    """The verifier challenge ``challenge_id`` (of ``client_id`` when given), or None.
    Anything but one of our ids (32 lowercase hex) never reaches the database."""
    if not isinstance(challenge_id, str) or not _CHALLENGE_ID.fullmatch(challenge_id):
        return None
    challenge = session.get(Challenge, challenge_id)
    if challenge is None or challenge.purpose is not ChallengePurpose.VERIFIER:
        return None
    if client_id is not None and challenge.client_id != client_id:
        return None
    return challenge


def challenge_state(challenge: Challenge, now: datetime) -> ChallengeState:
    if challenge.verification is not None or challenge.consumed_at is not None:
        return ChallengeState.COMPLETED
    if challenge.expires_at <= now:
        return ChallengeState.EXPIRED
    if challenge.rejection is not None:
        return ChallengeState.REJECTED
    return ChallengeState.PENDING


def prune_challenges(session: Session, *, older_than: timedelta = timedelta(days=1)) -> int:
    """Deletes challenges that expired more than ``older_than`` ago; returns the count."""
    cutoff = utcnow() - older_than
    result = session.execute(delete(Challenge).where(Challenge.expires_at < cutoff))
    session.commit()
    return result.rowcount or 0
