"""Create, list, revoke and authenticate API clients."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from clients.models import ApiClient, ClientAudience, Role, scope_of
from core import audit
from core.db import utcnow
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.text import clean_text

TOKEN_PREFIX = "lvs_"  # noqa: S105 - a public prefix, not a secret
NAME_MAX = 200
MAX_AUDIENCE_CHARS = 512
#: An absolute URI (RFC 3986 scheme, then anything) in printable ASCII without spaces.
_AUDIENCE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!-~]+")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedClient:
    client: ApiClient
    token: str  # shown once; only its hash is stored


def create_client(
    session: Session,
    name: str,
    role: Role | str,
    *,
    professions: Sequence[str] = (),
    audiences: Iterable[str] = (),
    actor: str | None = None,
) -> CreatedClient:
    """A new client (audited); ``professions`` scopes a regulator (empty: all);
    ``audiences`` (verifiers only) are the URIs its holders present to."""
    role = Role(role)
    if professions and role != Role.REGULATOR:
        raise InvalidRequest("Only regulator clients are scoped to professions.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(
        id=secrets.token_hex(8),
        name=clean_text(name, field="name", max_length=NAME_MAX),
        role=role,
        token_hash=hash_token(token),
        professions=",".join(sorted(set(professions))) or None,
    )
    wanted = list(dict.fromkeys(audiences))
    if wanted and client.role is not Role.VERIFIER:
        raise InvalidRequest("Only verifier clients have presentation audiences.")
    for audience in wanted:
        _check_audience(audience)
    taken = session.scalars(
        select(ClientAudience.audience).where(ClientAudience.audience.in_(wanted))
    ).first()
    if taken is not None:
        raise Conflict("An audience is already registered to another client; choose another URI.")
    session.add(client)
    session.flush()  # the audiences reference the client row
    session.add_all(ClientAudience(audience=audience, client_id=client.id) for audience in wanted)
    audit.record(
        session,
        actor=actor or audit.console_operator(),
        action="client.create",
        target=client.id,
        details={"role": role.value, "professions": list(client.profession_scope)}
        | ({"audiences": wanted} if wanted else {}),
    )
    session.commit()
    return CreatedClient(client, token)


def _check_audience(audience: str) -> None:
    if len(audience) > MAX_AUDIENCE_CHARS or not _AUDIENCE.fullmatch(audience):
        raise InvalidRequest(
            "An audience must be an absolute URI (e.g. https://platform.example) of at most "
            "512 printable ASCII characters without spaces."
        )


def presentation_audience(session: Session, client_id: str) -> str:
    """The audience a presentation challenge hands out: the client's first registered one."""
    audiences = client_audiences(session, client_id)
    if not audiences:
        raise Forbidden(
            "This client has no registered presentation audience; ask the operator to "
            "create a client with --audience URI."
        )
    return audiences[0]


def client_audiences(session: Session, client_id: str) -> list[str]:
    """The client's registered presentation audiences, oldest first."""
    return list(
        session.scalars(
            select(ClientAudience.audience)
            .where(ClientAudience.client_id == client_id)
            .order_by(ClientAudience.created_at, ClientAudience.audience)
        )
    )


def list_clients(session: Session) -> list[ApiClient]:
    return list(session.scalars(select(ApiClient).order_by(ApiClient.created_at)))


def revoke_client(session: Session, client_id: str, *, actor: str | None = None) -> ApiClient:
    client = session.get(ApiClient, client_id)
    if client is None:
        raise NotFound("No such client.")
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor or audit.console_operator(),
            action="client.revoke",
            target=client.id,
            details={"role": client.role.value},
        )
        session.commit()
    return client


@dataclass(frozen=True)
class AuthenticatedClient:
    """The active API client behind a request's bearer token: the columns requests use.

    Read per request (no cache), so a revocation takes effect on the next request.
    """

    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    professions: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def profession_scope(self) -> tuple[str, ...]:
        return scope_of(self.professions)


_clients = ApiClient.__table__
#: Built once (hot path, every authenticated request): a Core select of the columns the
#: request needs, executed with a bound token hash, instead of building an ORM entity query.
_AUTHENTICATE_QUERY = select(
    _clients.c.id,
    _clients.c.name,
    _clients.c.role,
    _clients.c.created_at,
    _clients.c.revoked_at,
    _clients.c.professions,
).where(_clients.c.token_hash == bindparam("token_hash"))


def authenticate(session: Session, token: str) -> AuthenticatedClient | None:
    """The active client holding this token, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(_AUTHENTICATE_QUERY, {"token_hash": hash_token(token)}).first()
    if row is None or row.revoked_at is not None:
        return None
    return AuthenticatedClient(
        row.id, row.name, Role(row.role), row.created_at, row.revoked_at, row.professions
    )
