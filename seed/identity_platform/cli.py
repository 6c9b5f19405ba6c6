"""``flask --app app identity-platform rotate-keys|rekey-codes|status|new-key`` (embedded)."""

from __future__ import annotations

import click
from flask import current_app
from sqlalchemy.engine import make_url

from core import audit, db
from core.audit import console_operator
from core.cli import ServiceGroup
from core.text import clean_text
from identity import get_identity_platform
from identity.errors import IdentityKeyError
from seed.identity_platform.keys import ENV_VAR, new_master_key
from seed.identity_platform.platform import EmbeddedIdentityPlatform
from seed.identity_platform.rotation import rekey_codes, rotate_keys

identity_platform_cli = ServiceGroup(
    "identity-platform", help="The embedded identity platform (development stand-in)."
)


def _embedded() -> EmbeddedIdentityPlatform:
    platform = get_identity_platform()
    if not isinstance(platform, EmbeddedIdentityPlatform):
        raise IdentityKeyError("Only the embedded identity platform is managed here.")
    return platform


@identity_platform_cli.command("rotate-keys")
@click.option("--actor", default=console_operator, show_default="the OS user")
def rotate_keys_command(actor: str) -> None:
    """Add a master key version and re-key the store and every stored licensing code."""
    platform = _embedded()
    session = db.get_session()
    report = rotate_keys(session, platform, db.Base.metadata)
    audit.record(
        session,
        actor=clean_text(actor, field="actor", max_length=200),
        action="identity_key.rotate",
        target=f"version {report.to_version}",
        details={"from_version": report.from_version, "to_version": report.to_version},
    )
    session.commit()
    click.echo(
        f"master key version {report.from_version} -> {report.to_version} "
        f"({platform.key_source.description})"
    )
    click.echo(f"persons re-encrypted: {report.persons}")
    if not report.licensing_codes:
        click.echo("licensing codes re-keyed: none (no column is marked as a licensing code)")
    for column, count in report.licensing_codes.items():
        click.echo(f"licensing codes re-keyed in {column}: {count}")
    if report.stragglers:
        click.echo(f"codes stored with the old version meanwhile, re-keyed: {report.stragglers}")


@identity_platform_cli.command("rekey-codes")
def rekey_codes_command() -> None:
    """Re-key stored licensing codes not at the key version in force (no new version)."""
    platform = _embedded()
    counts = rekey_codes(db.get_session(), platform, db.Base.metadata)
    click.echo(f"key version in force: {platform.current_key_version()}")
    for column, count in counts.items():
        click.echo(f"licensing codes re-keyed in {column}: {count}")


@identity_platform_cli.command("status")
def status_command() -> None:
    """Key version in force, key source and store size (no personal data)."""
    platform = _embedded()
    counts = platform.counts()
    store = make_url(current_app.config["IDENTITY_DATABASE_URL"])
    click.echo(f"store: {store.render_as_string(hide_password=True)}")
    click.echo(f"keys: {platform.key_source.description}")
    click.echo(f"key versions known: {', '.join(map(str, platform.crypto.versions()))}")
    click.echo(f"key version in force: {platform.current_key_version()}")
    click.echo(f"persons: {counts['persons']}, certificates: {counts['certificates']}")


@identity_platform_cli.command("new-key")
def new_key_command() -> None:
    """Print a fresh master key, for deployments that keep keys in IDENTITY_MASTER_KEY."""
    click.echo(f"append to {ENV_VAR} as '<next version>:<key>':", err=True)
    click.echo(new_master_key())
