"""``flask holder``: housekeeping of holder sessions and credentials."""

from __future__ import annotations

import click

from core.cli import ServiceGroup
from core.db import get_session
from holder import credentials as creds
from holder.sessions import prune_sessions

holder_cli = ServiceGroup("holder", help="Holder sessions and credentials.")


@holder_cli.command("prune")
def prune_command() -> None:
    """Delete sessions and credential records that expired more than a day ago."""
    session = get_session()
    sessions = prune_sessions(session)
    credentials = creds.prune_credentials(session)
    click.echo(f"removed {sessions} sessions and {credentials} credential records")
