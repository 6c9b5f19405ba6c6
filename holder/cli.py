"""``flask housekeeping prune``: what the service also prunes by itself, on demand."""

from __future__ import annotations

import click
from flask import current_app

from core.cli import ServiceGroup
from core.db import get_session
from holder.housekeeping import prune

housekeeping_cli = ServiceGroup(
    "housekeeping", help="Prune expired challenges, sessions, credentials and old access records."
)


@housekeeping_cli.command("prune")
def prune_command() -> None:
    """Delete challenges, sessions and credential records expired over a day ago, and
    access records older than ACCESS_LOG_RETENTION days."""
    click.echo(str(prune(get_session(), current_app)))
