"""``flask --app app staff create``: a staff account and its one-time set-up link."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from core.cli import ServiceGroup
from core.db import get_session
from web.links import absolute_url
from web.models import StaffRole
from web.staff import create_staff

staff_cli = ServiceGroup("staff", help="Staff accounts for the pages (HR, regulator).")


@staff_cli.command("create")
@click.option("--client", "client_name", required=True, help="The organisation's client name.")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in StaffRole]), default="staff")
@with_appcontext
def create_command(client_name: str, email: str, role: str) -> None:
    """Creates the account; prints the one-time link (24 h) to set a password and TOTP."""
    created = create_staff(
        get_session(), client_name=client_name, email=email, role=StaffRole(role)
    )
    click.echo(f"staff account {created.account.id} for {created.account.email}")
    click.echo(absolute_url(f"/staff/setup/{created.setup_token}"))
