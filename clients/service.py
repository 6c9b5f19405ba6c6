"""Create, list, revoke and authenticate API clients."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from clients.models import ApiClient, Role
from core.db import utcnow
from core.errors import NotFound

TOKEN_PREFIX = "lvs_"  # noqa: S105 - a public prefix, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedClient:
    client: ApiClient
    token: str  # shown once; only its hash is stored


def create_client(session: Session, name: str, role: Role | str) -> CreatedClient:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        id=secrets.token_hex(8), name=name.strip(), role=Role(role), token_hash=hash_token(token)
    )
    session.add(client)
    session.commit()
    return CreatedClient(client, token)


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.created_at)))


def revoke_client(session: Session, client_id: str) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound("No such client.")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        session.commit()
    return client


def authenticate(session: Session, token: str) -> ApiClient | None:
    """The active client holding this token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    client = session.scalar(select(ApiClient).where(ApiClient.token_hash == hash_token(token)))
    if client is None or not client.active:
        return None
    return client
