"""``flask crl import FILE`` (the card authority feed), ``flask crl status`` and
``flask challenges prune``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from core.cli import ServiceGroup
from core.db import get_session, utcnow
from verification.challenges import prune_challenges
from verification.errors import InvalidCrl
from verification.revocation import (
    MAX_CRL_BYTES,
    ca_crl_states,
    describe_ca,
    import_crl,
    stale_crl_advice,
)

crl_cli = ServiceGroup("crl", help="Card revocation lists from the card authority.")
challenges_cli = ServiceGroup("challenges", help="Verifier and holder challenges (nonces).")


def read_crl_file(path: Path) -> bytes:
    """DER bytes of a CRL file in DER or PEM."""
    if path.stat().st_size > MAX_CRL_BYTES:
        raise InvalidCrl("The CRL file is too large.")
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            return x509.load_pem_x509_crl(data).public_bytes(serialization.Encoding.DER)
        except ValueError:
            raise InvalidCrl("The file is not a well-formed PEM CRL.") from None
    return data


@crl_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Import a full CRL (DER or PEM) signed by a CA of CARD_TRUST_ANCHORS."""
    imported = import_crl(get_session(), read_crl_file(file), actor=None)
    state = "imported" if imported.changed else "already current"
    click.echo(
        f"CRL {state}: issuer {imported.issuer}, number {imported.crl_number}, "
        f"{imported.revoked} revoked, next update {imported.next_update.isoformat()}"
    )


@crl_cli.command("status")
def status_command() -> None:
    """Each CA of CARD_TRUST_ANCHORS: its current CRL's thisUpdate, nextUpdate and age.

    Exits with status 1 when a CA makes /readyz fail (what to do is printed)."""
    now = utcnow()
    failing = False
    for state in ca_crl_states(get_session(), now):
        line = describe_ca(state.authority, state.role)
        if state.this_update is None or state.next_update is None:
            line += ": no CRL" + ("" if state.issues_cards else " (none required)")
        else:
            age = int((now - state.this_update).total_seconds()) // 60
            line += (
                f": CRL #{state.crl_number}, thisUpdate {state.this_update.isoformat()}, "
                f"nextUpdate {state.next_update.isoformat()}, age {age // 60}h{age % 60:02d}m"
            )
        if problem := state.problem(now):
            failing = True
            line += f"\n  not ready: it {problem}; {stale_crl_advice(state.authority)}"
        click.echo(line)
    if failing:
        raise click.exceptions.Exit(1)


@challenges_cli.command("prune")
@click.option("--days", type=click.IntRange(1), default=1, show_default=True)
def prune_command(days: int) -> None:
    """Delete challenges that expired more than DAYS ago (run daily, e.g. from cron)."""
    removed = prune_challenges(get_session(), older_than=timedelta(days=days))
    click.echo(f"removed {removed} expired challenges")
