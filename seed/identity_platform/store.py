"""The identity platform's store: engine and Alembic (its own environment)."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.exc import DBAPIError

HERE = Path(__file__).resolve().parent


def alembic_config(url: str) -> AlembicConfig:
    """Alembic config of the identity store at ``url`` (also used by ``make check``)."""
    config = AlembicConfig(str(HERE / "alembic.ini"))
    config.set_main_option("script_location", str(HERE / "migrations"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, attempts: int = 3) -> None:
    """Migrates the store to head; retried because workers may start at the same time."""
    for attempt in range(1, attempts + 1):
        try:
            command.upgrade(alembic_config(url), "head")
            return
        except DBAPIError:
            if attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
