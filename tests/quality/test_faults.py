"""Fault injection: the service fails closed and says so with the contract's codes.

- The licensing database is unreachable: every endpoint that needs it answers 503
  ``unavailable`` (never a 401 that would blame the caller's token, never a 500, never a
  2xx), ``/readyz`` fails and names the database, ``/healthz`` still answers.
"""

from __future__ import annotations

import re

import pytest

from app import create_app
from clients.service import TOKEN_PREFIX
from tests.quality.helpers import spec_operations

# A syntactically valid token: the service has to ask the database about it.
SOME_TOKEN = TOKEN_PREFIX + "x" * 43


def _unreachable_url(is_postgres: bool, tmp_path) -> str:
    if is_postgres:
        # Nothing listens on port 1: connection refused at once.
        return "postgresql://postgres@127.0.0.1:1/unreachable"
    # The database file's path is a directory: SQLite cannot open it.
    path = tmp_path / "gone" / "licensing.sqlite3"
    path.mkdir(parents=True)
    return f"sqlite:///{path}"


@pytest.fixture
def unreachable(is_postgres, tmp_path):
    application = create_app(
        {
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": _unreachable_url(is_postgres, tmp_path),
            "TESTING": True,
        }
    )
    yield application.test_client()
    application.extensions["db"].engine.dispose()


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert body["status"] == status and body["code"] == code
    return body


def test_readyz_fails_and_names_the_database(unreachable):
    body = _problem(unreachable.get("/readyz"), 503, "unavailable")
    assert "database" in body["checks"]
    assert unreachable.get("/healthz").status_code == 200


AUTHENTICATED = [(m, p) for m, p, secured in spec_operations() if secured]


@pytest.mark.skipif(not AUTHENTICATED, reason="no authenticated endpoint in the spec yet")
@pytest.mark.parametrize(
    "method,path", AUTHENTICATED, ids=[f"{m} {p}" for m, p in AUTHENTICATED] or None
)
def test_database_down_is_503_unavailable_not_401(unreachable, method, path):
    concrete = re.sub(r"\{[^}]+\}", "0123456789abcdef", path)
    response = unreachable.open(
        concrete,
        method=method,
        json={} if method in ("POST", "PUT", "PATCH") else None,
        headers={"Authorization": f"Bearer {SOME_TOKEN}"},
    )
    if response.status_code == 400:
        # Input validated before authentication: the database was never asked.
        _problem(response, 400, "invalid_request")
        return
    body = _problem(response, 503, "unavailable")
    assert response.headers.get("Retry-After")
    assert SOME_TOKEN not in response.get_data(as_text=True)
    assert "Traceback" not in body["detail"]
