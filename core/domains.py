"""Wires each domain package (blueprints, CLI groups, readiness checks) into the app."""

from __future__ import annotations

import click
from apiflask import APIFlask
from flask.cli import AppGroup

from core import db
from core.health import health_bp
from core.signing import signing_cli

db_cli = AppGroup("db", help="Licensing database schema (Alembic).")


@db_cli.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration (upgrade heads)."""
    from flask import current_app

    db.upgrade(current_app.config["DATABASE_URL"])
    click.echo("database at heads")


def register(app: APIFlask) -> None:
    import clients
    import holder
    import identity
    import licensing
    import seed
    import verification
    import web

    app.register_blueprint(health_bp)
    app.cli.add_command(db_cli)
    app.cli.add_command(signing_cli)
    # identity first: licensing, verification and seed use the identity platform.
    for domain in (clients, identity, licensing, verification, holder, seed, web):
        domain.init_app(app)
