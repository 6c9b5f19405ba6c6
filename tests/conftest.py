"""Shared fixtures.

The licensing database is migrated once per run (SQLite file, or a fresh PostgreSQL
database when ``TEST_DATABASE_URL`` is set); each test gets its own app, instance
folder and identity-platform store, and every row it wrote is deleted afterwards, so
tests never see each other's data (commits are real, so concurrency tests are too).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app, import_models
from clients.service import create_client
from core import db

REFERENCE_TABLES_INFO_KEY = "reference_data"

# Each domain's reusable fixtures live in its own module.
pytest_plugins = [
    "tests.fixtures.identity",
    "tests.fixtures.cards",
    "tests.fixtures.licensing",
    "tests.fixtures.verification",
    "tests.fixtures.live",
    "tests.fixtures.monitoring",
    "tests.fixtures.holder",
]


def _create_postgres_database(base_url: str) -> tuple[str, str]:
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    name = f"lv_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_postgres_database(base_url: str, name: str) -> None:
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        url, name = _create_postgres_database(base)
        db.upgrade(url)
        yield url
        _drop_postgres_database(base, name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'licensing.sqlite3'}"
        db.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def is_postgres(database_url) -> bool:
    return database_url.startswith("postgresql")


def _delete_all_rows(url: str) -> None:
    import_models()
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for table in reversed(db.Base.metadata.sorted_tables):
            if not table.info.get(REFERENCE_TABLES_INFO_KEY):
                conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def app(database_url, tmp_path):
    instance = tmp_path / "instance"
    application = create_app(
        {"INSTANCE_PATH": str(instance), "DATABASE_URL": database_url, "TESTING": True}
    )
    yield application
    application.extensions["db"].engine.dispose()
    _delete_all_rows(database_url)


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def db_session(app):
    with app.app_context():
        yield db.get_session()


@pytest.fixture
def make_client(app):
    """Creates an API client and returns (client, headers with its bearer token)."""

    def _make(role: str, name: str | None = None):
        with app.app_context():
            created = create_client(
                db.get_session(), name or f"{role} {secrets.token_hex(2)}", role
            )
        return created.client, {"Authorization": f"Bearer {created.token}"}

    return _make
