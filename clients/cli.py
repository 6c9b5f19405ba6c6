"""``flask clients create|list|revoke``."""

from __future__ import annotations

import click

from clients.models import Role
from clients.service import create_client, list_clients, revoke_client
from core.cli import ServiceGroup
from core.db import get_session

clients_cli = ServiceGroup("clients", help="Manage API clients and their bearer tokens.")


@clients_cli.command("create")
@click.option("--name", required=True, help="Display name, shown to holders in their access log.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    help="Verifiers: a URI its holders' presentations are made to (repeatable).",
)
def create_command(name: str, role: str, audiences: tuple[str, ...]) -> None:
    """Create a client; prints its token once, on the last line."""
    created = create_client(get_session(), name, role, audiences)
    click.echo(f"client {created.client.id} ({created.client.role.value}): {created.client.name}")
    for audience in dict.fromkeys(audiences):
        click.echo(f"presentation audience: {audience}")
    click.echo("token (shown once, store it now):")
    click.echo(created.token)


@clients_cli.command("list")
def list_command() -> None:
    for client in list_clients(get_session()):
        state = "revoked" if client.revoked_at else "active"
        click.echo(f"{client.id}\t{client.role.value}\t{state}\t{client.name}")


@clients_cli.command("revoke")
@click.argument("client_id")
def revoke_command(client_id: str) -> None:
    client = revoke_client(get_session(), client_id)
    click.echo(f"revoked {client.id}")
