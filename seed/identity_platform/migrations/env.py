"""Alembic environment for the embedded identity platform's own store.

Separate from the licensing database's environment (``migrations/``): its own models
(``IdentityBase``), its own version table. The platform upgrades its store itself on
first use; by hand: ``alembic -c seed/identity_platform/alembic.ini upgrade head``.
"""

from __future__ import annotations

from alembic import context

from core.config import settings_from_env
from core.db import make_engine
from seed.identity_platform.models import IdentityBase

VERSION_TABLE = "identity_alembic_version"
target_metadata = IdentityBase.metadata


def _url() -> str:
    return (
        context.config.attributes.get("database_url")
        or settings_from_env()["IDENTITY_DATABASE_URL"]
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
