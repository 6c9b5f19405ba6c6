"""Small helpers shared by the quality tests (fuzz, concurrency, faults)."""

from __future__ import annotations

import functools
import tempfile

from app import create_app
from clients.service import create_client
from core import db

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def role_headers(app, role: str | None) -> dict[str, str]:
    """Authorization headers for a fresh client of ``role`` (no header for None)."""
    if role is None:
        return {}
    with app.app_context():
        created = create_client(db.get_session(), f"quality {role}", role)
    return {"Authorization": f"Bearer {created.token}"}


@functools.cache
def app_spec() -> dict:
    """The OpenAPI document of a throw-away app (for parametrizing at collection time)."""
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {"INSTANCE_PATH": folder, "DATABASE_URL": f"sqlite:///{folder}/spec.sqlite3"}
        )
        spec = app.spec  # type: ignore[attr-defined]
        app.extensions["db"].engine.dispose()
    return spec


def spec_operations() -> list[tuple[str, str, bool]]:
    """(METHOD, path, needs a bearer token) for every operation in the spec."""
    return [(method, path, bool(roles)) for method, path, roles in spec_operation_roles()]


def spec_operation_roles() -> list[tuple[str, str, frozenset[str]]]:
    """(METHOD, path, roles named by its security requirement) for every operation.

    An operation with a bearer-token requirement but no role list gets {"*"}.
    """
    spec = app_spec()
    result = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            roles: set[str] = set()
            for requirement in operation.get("security", spec.get("security", [])):
                for scopes in requirement.values():
                    roles.update(scopes or ["*"])
            result.append((method.upper(), path, frozenset(roles)))
    return sorted(result)
