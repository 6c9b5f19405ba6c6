"""Engines (core.db): PostgreSQL connections pinged after idling, not on every checkout;
SQLite files private and commits durable."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from core import db


@pytest.fixture
def postgres_engine(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("server connections: PostgreSQL only")
    engine = db.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(postgres_engine, monkeypatch):
    calls = []
    real = postgres_engine.dialect.do_ping

    def counting(dbapi_connection):
        calls.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(postgres_engine.dialect, "do_ping", counting)
    return calls


def _backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(database_url: str, pid: int) -> None:
    admin = create_engine(
        database_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


def test_a_connection_in_steady_use_is_not_pinged(postgres_engine, pings):
    first = _backend_pid(postgres_engine)
    assert _backend_pid(postgres_engine) == first  # the same pooled connection
    assert pings == []


def test_an_idle_connection_is_pinged_and_replaced_if_the_server_dropped_it(
    postgres_engine, pings, database_url, monkeypatch
):
    dropped = _backend_pid(postgres_engine)
    _terminate(database_url, dropped)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)

    replacement = _backend_pid(postgres_engine)  # no error: the ping found it dead

    assert replacement != dropped
    assert len(pings) >= 1


def test_a_connection_dropped_while_in_steady_use_fails_one_request_only(
    postgres_engine, pings, database_url
):
    dropped = _backend_pid(postgres_engine)
    _terminate(database_url, dropped)

    with pytest.raises(OperationalError):  # the app answers 503 unavailable
        _backend_pid(postgres_engine)
    assert _backend_pid(postgres_engine) != dropped  # the pool reconnected
    assert pings == []


def test_sqlite_files_are_private_and_commits_are_durable(tmp_path):
    previous_umask = os.umask(0o022)  # the usual umask would leave files world-readable
    path = tmp_path / "private.sqlite3"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            # FULL: a consumed nonce survives a power loss (NORMAL is 1, FULL is 2).
            assert conn.execute(text("PRAGMA synchronous")).scalar_one() == 2
        for suffix in ("", "-wal", "-shm"):
            written = path.with_name(path.name + suffix)
            assert written.stat().st_mode & 0o777 == 0o600, suffix
    finally:
        engine.dispose()
        os.umask(previous_umask)


def test_an_existing_world_readable_database_is_tightened(tmp_path):
    path = tmp_path / "old.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert path.stat().st_mode & 0o777 == 0o600
