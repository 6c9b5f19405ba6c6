"""``flask clients create|list|revoke`` (audited; the operator is ``--actor``, default the
OS user)."""

from __future__ import annotations

import click
from flask import current_app

from clients.models import Role
from clients.service import NAME_MAX, create_client, list_clients, revoke_client
from core.audit import console_operator
from core.cli import ServiceGroup
from core.db import get_session
from core.text import clean_text

clients_cli = ServiceGroup("clients", help="Manage API clients and their bearer tokens.")
#: The app's profession codes, registered by the licensing domain (clients is below it).
PROFESSIONS_EXTENSION = "profession_codes"


def _clean_actor(_ctx, _param, value: str) -> str:
    return clean_text(value, field="actor", max_length=NAME_MAX)


actor_option = click.option(
    "--actor",
    default=console_operator,
    show_default="the OS user",
    callback=_clean_actor,
    help="Who is acting (recorded in the history and the audit trail).",
)


def _check_professions(values: tuple[str, ...]) -> None:
    known = current_app.extensions.get(PROFESSIONS_EXTENSION, ())
    if any(value not in known for value in values):
        raise click.BadParameter(
            "unknown profession; the professions are " + ", ".join(known),
            param_hint="--profession",
        )


@clients_cli.command("create")
@click.option("--name", required=True, help="Display name, shown to holders in their access log.")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option(
    "--profession",
    "professions",
    multiple=True,
    help="Regulators only, repeatable: the professions it may act on (default: all).",
)
@click.option(
    "--audience",
    "audiences",
    multiple=True,
    help="Verifiers: a URI its holders' presentations are made to (repeatable).",
)
@actor_option
def create_command(
    name: str, role: str, professions: tuple[str, ...], audiences: tuple[str, ...], actor: str
) -> None:
    """Create a client; prints its token once, on the last line."""
    _check_professions(professions)
    created = create_client(
        get_session(), name, role, professions=professions, audiences=audiences, actor=actor
    )
    scope = created.client.profession_scope
    suffix = f" [{', '.join(scope)}]" if scope else ""
    click.echo(
        f"client {created.client.id} ({created.client.role.value}){suffix}: {created.client.name}"
    )
    for audience in dict.fromkeys(audiences):
        click.echo(f"presentation audience: {audience}")
    click.echo("token (shown once, store it now):")
    click.echo(created.token)


@clients_cli.command("list")
def list_command() -> None:
    for client in list_clients(get_session()):
        state = "revoked" if client.revoked_at else "active"
        scope = ",".join(client.profession_scope) or "-"
        click.echo(f"{client.id}\t{client.role.value}\t{state}\t{scope}\t{client.name}")


@clients_cli.command("revoke")
@click.argument("client_id")
@actor_option
def revoke_command(client_id: str, actor: str) -> None:
    client = revoke_client(get_session(), client_id, actor=actor)
    click.echo(f"revoked {client.id}")
