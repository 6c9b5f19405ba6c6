"""Bearer-token authentication for API clients, with roles.

Routes declare ``@bp.auth_required(client_auth, roles=[...])``; apiflask documents the
security scheme in the OpenAPI spec and our error processor turns failures into
401 ``unauthenticated`` / 403 ``forbidden``.
"""

from __future__ import annotations

from apiflask import HTTPTokenAuth
from flask import g

from clients.service import AuthenticatedClient, authenticate
from core.db import get_session

client_auth = HTTPTokenAuth(
    scheme="Bearer",
    security_scheme_name="ClientToken",
    description="API client token (verifier, regulator, card_authority)",
)


@client_auth.verify_token
def _verify_client_token(token: str) -> AuthenticatedClient | None:
    client = authenticate(get_session(), token) if token else None
    if client is not None:
        g.client = client
    return client


@client_auth.get_user_roles
def _client_roles(client: AuthenticatedClient) -> list[str]:
    return [client.role.value]


def current_client() -> AuthenticatedClient:
    return client_auth.current_user
