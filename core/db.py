"""Database engine, sessions and migrations for the licensing database.

The schema is created and changed only by Alembic (``migrations/``); the app and the
tests run ``upgrade heads``. Each domain package keeps its tables on its own Alembic
branch (``licensing``, ``verification``) on top of the foundation revision.
"""

from __future__ import annotations

import enum
import time
from datetime import UTC, datetime
from pathlib import Path

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from flask.cli import AppGroup
from sqlalchemy import URL, DateTime, Engine, Enum, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.permissions import create_private_file

ROOT = Path(__file__).resolve().parent.parent

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def value_enum(enum_class: type[enum.Enum], name: str, length: int) -> Enum:
    """A portable enum column storing each member's value (a CHECK-constrained VARCHAR,
    not a PostgreSQL ENUM type, so adding a member needs no type migration)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def utcnow() -> datetime:
    return datetime.now(UTC)


class DatabaseUrlError(Exception):
    """A database URL that cannot be used; the message names the cause in one line and
    never repeats the URL (it may hold a password)."""


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL syncs the WAL on every commit: a consumed nonce (or any answered write)
    # survives a power loss; NORMAL could lose the last commits and allow a replay.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def engine_url(url: str) -> URL:
    """The parsed URL, with the installed PostgreSQL driver (psycopg 3) by default."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            "not a database URL; expected sqlite:///path/file.sqlite3 or "
            "postgresql://user@host:5432/name"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def check_url(url: str) -> None:
    """Parses the URL and loads its driver; an SQLite file's folder must exist (it is
    never created here: a typo in the path would silently start an empty database)."""
    parsed = engine_url(url)
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except NoSuchModuleError:
        raise DatabaseUrlError(
            f"unknown database driver {parsed.drivername!r}; use sqlite:/// or postgresql://"
        ) from None
    except ImportError:
        raise DatabaseUrlError(
            f"the driver for {parsed.drivername!r} is not installed; use postgresql://"
        ) from None
    if dialect.name == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            raise DatabaseUrlError(f"the folder {folder} does not exist; create it first")


def check_reachable(url: str) -> None:
    """Connects once; an unreachable server is a ``DatabaseUrlError`` naming the cause."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        lines = str(error.orig).strip().splitlines() or [type(error.orig).__name__]
        raise DatabaseUrlError(f"cannot connect: {lines[0][:200]}") from None
    finally:
        engine.dispose()


def make_engine(url: str) -> Engine:
    check_url(url)
    parsed = engine_url(url)
    if parsed.get_dialect().name == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 10})
        if parsed.database and parsed.database != ":memory:":
            database_file = Path(parsed.database)
            # On first use, not here: building the app touches no file.
            event.listen(engine, "do_connect", lambda *_args: create_private_file(database_file))
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        parsed, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 10}
    )
    _ping_connections_after_idling(engine)
    return engine


#: A pooled server connection idle for longer than this is pinged before use: a database
#: restart, failover or firewall may have dropped it meanwhile. One in steady use is not:
#: ``pool_pre_ping`` would cost a database round trip on every request. A connection that
#: breaks while in use fails that request with 503 ``unavailable`` (never a 2xx), and
#: SQLAlchemy then discards every pooled connection, so the next request reconnects.
PING_AFTER_IDLE_SECONDS = 5.0


def _ping_connections_after_idling(engine: Engine) -> None:
    def checked_in(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    def checked_out(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool replaces the connection and retries the checkout.
            raise DisconnectionError() from error

    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "heads")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)


db_cli = AppGroup("db", help="Licensing database schema (Alembic).")


@db_cli.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration (upgrade heads)."""
    upgrade(current_app.config["DATABASE_URL"])
    click.echo("database at heads")


def init_app(app: Flask) -> None:
    app.extensions["db"] = Database(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)
    app.cli.add_command(db_cli)


def get_db() -> Database:
    return current_app.extensions["db"]


def get_session() -> Session:
    """The request's session; service functions commit their own unit of work."""
    if "db_session" not in g:
        g.db_session = get_db().sessionmaker()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()  # ends (rolls back) whatever the request left open
