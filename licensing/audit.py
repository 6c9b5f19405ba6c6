"""A tamper-evident audit trail: a hash chain of every regulator and card-authority action.

Entry ``n`` stores ``hash_n = SHA-256(canonical JSON of [n, hash_(n-1), at, actor,
action, target, details])`` and ``prev_hash = hash_(n-1)`` (``GENESIS_HASH`` for the
first). Editing, deleting or reordering any entry breaks the link at that entry (or,
for the newest ones, the link to the chain head row); ``verify_chain`` finds the first
broken link.

Concurrency: ``record`` first *updates* the single chain-head row (``UPDATE ... SET seq =
seq + 1 ... RETURNING``). That write takes the row lock on PostgreSQL and the database
write lock on SQLite before the previous hash is read, so two writers can never build on
the same head: the second waits until the first commits (or rolls back) and then sees its
head. Call ``record`` as the last write of a unit of work, so the chain lock is held for
as short as possible and always taken after any licence row locks (no lock-order
deadlocks). It never commits: the entry is part of the caller's transaction.

Audit entries hold no personal data (no names, holder codes or registration numbers),
so erasing a licence never needs to touch the chain.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from core.db import utcnow
from licensing.models import AuditChainHead, AuditEntry

GENESIS_HASH = "0" * 64
_HEAD_ID = 1


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    seq: int,
    prev_hash: str,
    at: datetime,
    actor: str | None,
    action: str,
    target: str,
    details: dict[str, Any],
) -> str:
    material = _canonical([seq, prev_hash, at.isoformat(), actor, action, target, details])
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _ensure_head(session: Session) -> None:
    values = {"id": _HEAD_ID, "seq": 0, "hash": GENESIS_HASH}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(AuditChainHead).values(**values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        stmt = sqlite.insert(AuditChainHead).values(**values).on_conflict_do_nothing()
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError("unsupported database")
    session.execute(stmt)


def record(
    session: Session,
    *,
    actor: str | None,
    action: str,
    target: str,
    details: dict[str, Any],
) -> AuditEntry:
    """Appends an entry to the chain in the caller's transaction (no commit)."""
    # Normalise through JSON so that what is stored is exactly what was hashed.
    details = json.loads(_canonical(details))
    session.flush()  # the caller's writes first: the chain lock is always taken last
    _ensure_head(session)
    seq, prev_hash = session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == _HEAD_ID)
        .values(seq=AuditChainHead.seq + 1)
        .returning(AuditChainHead.seq, AuditChainHead.hash)
        .execution_options(synchronize_session=False)
    ).one()
    at = utcnow()
    digest = entry_hash(seq, prev_hash, at, actor, action, target, details)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        details=details,
        prev_hash=prev_hash,
        hash=digest,
    )
    session.add(entry)
    session.execute(
        update(AuditChainHead)
        .where(AuditChainHead.id == _HEAD_ID)
        .values(hash=digest)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return entry


def verify_chain(session: Session) -> int | None:
    """The sequence number of the first broken link, or None when the chain is intact.

    A link is broken when an entry's sequence number is not the next one (a deleted
    entry: the missing number is reported), its ``prev_hash`` is not the previous
    entry's hash, or its own hash does not match its contents. Entries deleted from the
    end are caught by the chain-head row (the first missing number is reported).
    """
    expected_seq, prev_hash = 1, GENESIS_HASH
    t = AuditEntry.__table__
    rows = session.execute(
        select(
            t.c.seq,
            t.c.at,
            t.c.actor,
            t.c.action,
            t.c.target,
            t.c.details,
            t.c.prev_hash,
            t.c.hash,
        )
        .order_by(t.c.seq)
        .execution_options(yield_per=2000)
    )
    for seq, at, actor, action, target, details, stored_prev, stored_hash in rows:
        if seq != expected_seq or stored_prev != prev_hash:
            return expected_seq
        if entry_hash(seq, stored_prev, at, actor, action, target, details) != stored_hash:
            return seq
        expected_seq, prev_hash = seq + 1, stored_hash
    head = session.get(AuditChainHead, _HEAD_ID)
    last_seq = expected_seq - 1
    if head is None:
        return None if last_seq == 0 else last_seq
    if head.seq != last_seq or head.hash != prev_hash:
        return min(head.seq, last_seq) + 1 if head.seq != last_seq else head.seq
    return None


def chain_head(session: Session) -> tuple[int, str]:
    """(number of entries, hash of the newest): record it elsewhere to anchor the chain."""
    head = session.get(AuditChainHead, _HEAD_ID)
    return (head.seq, head.hash) if head is not None else (0, GENESIS_HASH)
