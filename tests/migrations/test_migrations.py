"""Migrations build the whole schema from nothing and agree with the models."""

from __future__ import annotations

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app import import_models
from core import db
from tests.quality.schema_check import scratch_database


def test_upgrade_from_empty_reaches_every_head_without_drift():
    with scratch_database() as url:
        config = db.alembic_config(url)
        db.upgrade(url)
        engine = db.make_engine(url)
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
            tables = set(inspect(conn).get_table_names())
        engine.dispose()
        assert current == set(ScriptDirectory.from_config(config).get_heads())
        import_models()
        assert {t.name for t in db.Base.metadata.sorted_tables} <= tables
        command.check(config)  # raises on drift


def test_downgrade_to_base_and_up_again():
    with scratch_database() as url:
        config = db.alembic_config(url)
        db.upgrade(url)
        command.downgrade(config, "base")
        engine = db.make_engine(url)
        with engine.connect() as conn:
            assert "api_clients" not in inspect(conn).get_table_names()
        engine.dispose()
        db.upgrade(url)
