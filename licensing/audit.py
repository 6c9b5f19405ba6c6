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

Audit entries hold no names, holder codes or registration numbers. Free text (the
reasons regulators type) is kept beside the chain, not in it: the entry's ``free_text``
holds the text and a random salt, and the chain hashes ``free_text_digest`` =
SHA-256(canonical JSON of both). ``erase_free_text`` removes the text (and its salt,
so the digest can no longer confirm a guess) without breaking any link.

Anchoring: a chain cut back at the end (with the head row moved back) or rewritten from
some entry on is consistent with itself. ``checkpoint`` signs (sequence, head hash, time)
with a key kept outside the database (``AUDIT_CHECKPOINT_KEY_FILE``, Ed25519); keep the
checkpoints elsewhere too, and ``verify_anchor`` checks the chain still holds the entry a
checkpoint names, with the same hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
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
    free_text_digest: str | None = None,
) -> str:
    fields: list[Any] = [seq, prev_hash, at.isoformat(), actor, action, target, details]
    if free_text_digest is not None:  # entries without free text hash as they always did
        fields.append(free_text_digest)
    return hashlib.sha256(_canonical(fields).encode("utf-8")).hexdigest()


def text_digest(free_text: dict[str, str]) -> str:
    return hashlib.sha256(_canonical(free_text).encode("utf-8")).hexdigest()


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
    free_text: dict[str, str] | None = None,
) -> AuditEntry:
    """Appends an entry to the chain in the caller's transaction (no commit).

    ``free_text`` (reasons) is stored beside the chain and may be erased later; the
    chain holds only its salted digest.
    """
    # Normalise through JSON so that what is stored is exactly what was hashed.
    details = json.loads(_canonical(details))
    salted = {**free_text, "salt": secrets.token_hex(16)} if free_text else None
    free_digest = text_digest(salted) if salted else None
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
    digest = entry_hash(seq, prev_hash, at, actor, action, target, details, free_digest)
    entry = AuditEntry(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        details=details,
        free_text=salted,
        free_text_digest=free_digest,
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
            t.c.free_text,
            t.c.free_text_digest,
            t.c.prev_hash,
            t.c.hash,
        )
        .order_by(t.c.seq)
        .execution_options(yield_per=2000)
    )
    for row in rows:
        seq, stored_prev, stored_hash = row.seq, row.prev_hash, row.hash
        if seq != expected_seq or stored_prev != prev_hash:
            return expected_seq
        if row.free_text is not None and text_digest(row.free_text) != row.free_text_digest:
            return seq
        material = (row.at, row.actor, row.action, row.target, row.details, row.free_text_digest)
        if entry_hash(seq, stored_prev, *material) != stored_hash:
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


def erase_free_text(session: Session, target: str) -> list[int]:
    """Removes the free text of every entry about ``target`` (no commit); their digests,
    and so the chain, stay. Returns the sequence numbers erased."""
    seqs = list(
        session.scalars(
            select(AuditEntry.seq).where(
                AuditEntry.target == target, AuditEntry.free_text.is_not(None)
            )
        )
    )
    if seqs:
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.seq.in_(seqs))
            .values(free_text=None)
            .execution_options(synchronize_session=False)
        )
    return seqs


def entries(
    session: Session, *, since: datetime | None = None, target: str | None = None
) -> Iterator[AuditEntry]:
    """The trail in chain order, from ``since`` and/or about ``target``."""
    stmt = select(AuditEntry).order_by(AuditEntry.seq)
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if target is not None:
        stmt = stmt.where(AuditEntry.target == target)
    yield from session.scalars(stmt.execution_options(yield_per=500))


# --- anchoring ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_checkpoint_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The checkpoint signing key (PEM, PKCS#8); created with mode 0600 on first use."""
    key_path = Path(path)
    if key_path.exists():
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise ValueError("not a PEM private key without a password") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the audit checkpoint key must be an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    key_path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def load_checkpoint_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """The public key from the checkpoint key file (private or public PEM)."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None)
        public = key.public_key()
    else:
        public = serialization.load_pem_public_key(data)
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("the audit checkpoint key must be an Ed25519 key")
    return public


def _checkpoint_payload(seq: int, head: str, at: str) -> bytes:
    return _canonical({"seq": seq, "hash": head, "at": at}).encode("utf-8")


def checkpoint(session: Session, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A signed statement of the chain's head now: {seq, hash, at, signature}."""
    seq, head = chain_head(session)
    at = utcnow().isoformat()
    signature = key.sign(_checkpoint_payload(seq, head, at))
    return {"seq": seq, "hash": head, "at": at, "signature": _b64(signature)}


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str


def read_checkpoint(document: dict[str, Any], public_key: Ed25519PublicKey) -> Anchor:
    """The anchor a checkpoint names; ValueError if it is malformed or not signed by the key."""
    try:
        seq, head, at = int(document["seq"]), str(document["hash"]), str(document["at"])
        signature = _unb64(str(document["signature"]))
    except (KeyError, TypeError, ValueError):
        raise ValueError("not an audit checkpoint (seq, hash, at, signature)") from None
    try:
        public_key.verify(signature, _checkpoint_payload(seq, head, at))
    except InvalidSignature:
        raise ValueError("the checkpoint's signature does not verify with the key") from None
    return Anchor(seq, head)


def parse_expected_head(value: str) -> Anchor:
    seq, sep, head = value.partition(":")
    if not sep or not seq.isdigit() or len(head) != 64:
        raise ValueError("expected SEQ:HASH (a number, a colon, 64 hex digits)")
    return Anchor(int(seq), head.lower())


def verify_anchor(session: Session, anchor: Anchor) -> str | None:
    """What is wrong with the chain against ``anchor``; None when the chain still holds
    entry ``anchor.seq`` with that hash (run ``verify_chain`` for the links after it)."""
    if anchor.seq == 0:
        return None
    head_seq, _head = chain_head(session)
    if head_seq < anchor.seq:
        return (
            f"the chain ends at entry {head_seq} but the anchor names entry {anchor.seq}: "
            "newer entries were removed"
        )
    stored = session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == anchor.seq))
    if stored is None:
        return f"entry {anchor.seq}, which the anchor names, is missing"
    if stored != anchor.hash:
        return f"entry {anchor.seq} has another hash than the anchor: the chain was rewritten"
    return None
