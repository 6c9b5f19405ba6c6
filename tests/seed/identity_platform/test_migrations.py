"""The identity store's own Alembic environment: builds from nothing, no drift."""

from __future__ import annotations

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from core import db
from seed.identity_platform import alembic_config
from seed.identity_platform.models import IdentityBase
from seed.identity_platform.store import upgrade
from tests.quality import schema_check
from tests.quality.schema_check import scratch_database


def test_registered_for_the_schema_check():
    assert alembic_config in [config for _name, config in schema_check.STORES]


def test_upgrade_from_empty_without_drift_down_and_up_again():
    with scratch_database() as url:
        config = alembic_config(url)
        upgrade(url)
        engine = db.make_engine(url)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": "identity_alembic_version"}
            )
            assert set(context.get_current_heads()) == set(
                ScriptDirectory.from_config(config).get_heads()
            )
            tables = set(inspect(conn).get_table_names())
        assert set(IdentityBase.metadata.tables) <= tables
        assert "alembic_version" not in tables  # never collides with the licensing database's
        command.check(config)
        command.downgrade(config, "base")
        with engine.connect() as conn:
            assert not set(IdentityBase.metadata.tables) & set(inspect(conn).get_table_names())
        engine.dispose()
        upgrade(url)
        upgrade(url)  # idempotent: every start-up runs it


def test_licensing_and_identity_heads_are_separate():
    identity_heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    licensing_script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert identity_heads == ["i001"] or all(h.startswith("i") for h in identity_heads)
    assert not set(identity_heads) & {r.revision for r in licensing_script.walk_revisions()}
