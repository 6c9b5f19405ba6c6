"""Alembic environment for the licensing database."""

from __future__ import annotations

from alembic import context

from app import import_models
from core.config import settings_from_env
from core.db import Base, make_engine

import_models()
target_metadata = Base.metadata


def _url() -> str:
    return context.config.attributes.get("database_url") or settings_from_env()["DATABASE_URL"]


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
