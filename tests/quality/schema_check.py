"""``alembic check`` on a freshly migrated database: the models and migrations agree.

Uses a throw-away SQLite file, or a fresh PostgreSQL database when TEST_DATABASE_URL
is set, so it never touches real data.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core import db
from seed.identity_platform import store as identity_store

# Each store: (name, alembic config for a URL). Stores outside the licensing database
# (the embedded identity platform) add themselves here.
STORES: list[tuple[str, Callable[[str], AlembicConfig]]] = [
    ("licensing", db.alembic_config),
    ("identity platform (embedded)", identity_store.alembic_config),
]


@contextmanager
def scratch_database() -> Iterator[str]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/check.sqlite3"
        return
    url = make_url(base).set(drivername="postgresql+psycopg")
    name = f"lv_check_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    for name, config_for in STORES:
        with scratch_database() as url:
            config = config_for(url)
            command.upgrade(config, "heads")
            command.check(config)
            print(f"{name}: no drift between models and migrations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
