"""Command-line stand-ins for the outside world (contract: "Card authority and identity
platform stand-ins").

    flask --app app card-authority init | issue | register | report-lost | resume |
                                   revoke | reissue | publish-crl | list
    flask --app app card sign | info
    flask --app app seed population-csv

A My Number is accepted as an option (as the contract spells it) but never printed or
logged; the card's serial number (lowercase hex) is how the commands name a card.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from core.cli import ServiceGroup
from core.db import get_session, utcnow
from core.errors import ServiceError
from core.my_number import is_valid_my_number
from seed.card_authority import (
    CRL_VALIDITY,
    CardAuthority,
    CardAuthorityCorrupt,
    CardAuthorityMissing,
    crl_refresh_due,
    generate_card_key,
    parse_serial,
    serial_hex,
)
from seed.virtual_card import CardError, VirtualCard, issue_virtual_card
from verification.errors import TrustAnchorsUnavailable
from verification.revocation import MAX_CRL_VALIDITY, ca_crl_states, import_crl

#: The card authority is its own agency when it asks the identity platform whether two
#: certificates belong to the same person (codes are compared, never kept).
CARD_AUTHORITY_AGENCY = "card-authority"

MAX_CRL_VALIDITY_HOURS = int(MAX_CRL_VALIDITY.total_seconds()) // 3600
#: How often ``refresh-crl --watch`` looks at the CRL (a demo CRL lasts 24 hours).
REFRESH_CHECK_SECONDS = 60

card_authority_cli = ServiceGroup(
    "card-authority",
    help="Demo card authority: root and issuing CA, card lifecycle, CRLs.",
)
card_cli = ServiceGroup("card", help="Virtual My Number cards (PIN-protected card files).")
seed_cli = ServiceGroup("seed", help="Demo and benchmark data.")

REASONS = {
    "key-compromise": x509.ReasonFlags.key_compromise,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
    "unspecified": x509.ReasonFlags.unspecified,
}


# -- option helpers ------------------------------------------------------------------


def _my_number(_ctx, _param, value: str) -> str:
    # Fixed text: never echo the value back.
    if not is_valid_my_number(value):
        raise click.BadParameter("not a valid My Number (12 digits with a valid check digit)")
    return value


def _verifier_id(_ctx, _param, value: str | None) -> str | None:
    # A client id: lowercase hexadecimal (fixed text: never echo the value back).
    if value is not None and not re.fullmatch(r"[0-9a-f]{1,32}", value):
        raise click.BadParameter("not a verifier id (up to 32 lowercase hexadecimal characters)")
    return value


def _serial(_ctx, _param, value: str) -> int:
    try:
        return parse_serial(value)
    except ValueError:
        raise click.BadParameter(
            "a certificate serial in hexadecimal, as `issue` prints it"
        ) from None


def _pin(_ctx, _param, value: str) -> str:
    if not (len(value) == 4 and value.isascii() and value.isdigit()):
        raise click.BadParameter("the PIN is 4 digits")
    return value


my_number_option = click.option(
    "--my-number",
    required=True,
    callback=_my_number,
    help="The holder's My Number (never printed or stored by the card authority).",
)
serial_option = click.option(
    "--serial", required=True, callback=_serial, help="Card certificate serial (hex)."
)
new_pin_option = click.option(
    "--pin",
    prompt="New card PIN (4 digits)",
    hide_input=True,
    confirmation_prompt=True,
    callback=_pin,
    help="4-digit PIN for the new card (prompted when omitted).",
)


def _authority() -> CardAuthority:
    return CardAuthority.load(Path(current_app.config["CARD_AUTHORITY_DIR"]))


def _platform():
    from identity import get_identity_platform

    return get_identity_platform()


def _register(my_number: str) -> Callable[[x509.Certificate], None]:
    def register(certificate: x509.Certificate) -> None:
        _platform().register_certificate(certificate, my_number)

    return register


def _card_path(out: Path | None, serial: int) -> Path:
    path = out or Path(current_app.instance_path) / "cards" / f"{serial_hex(serial)}.json"
    return path.resolve()


def _refuse_existing(out: Path | None) -> None:
    if out is not None and out.exists():
        raise click.ClickException(f"{out} exists; a card file is never overwritten")


def _write_card(path, key, cert, authority: CardAuthority, pin: str, name: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    VirtualCard.create(path, key, cert, authority.chain, pin, holder_name=name)


def _next_step_hint() -> str:
    return "verifiers see it after: flask --app app card-authority publish-crl"


# -- card-authority ------------------------------------------------------------------


@card_authority_cli.command("init")
def init_command() -> None:
    """Create the root and issuing CA if missing; print the trust bundle's path."""
    authority = CardAuthority.init(Path(current_app.config["CARD_AUTHORITY_DIR"]))
    bundle = authority.trust_bundle_path.resolve()
    configured = Path(current_app.config["CARD_TRUST_ANCHORS"]).resolve()
    if configured != bundle:
        click.echo(
            f"note: CARD_TRUST_ANCHORS is {configured}; to trust this authority set", err=True
        )
        click.echo(f"      CARD_TRUST_ANCHORS={bundle}", err=True)
    click.echo(str(bundle))


@card_authority_cli.command("issue")
@my_number_option
@click.option("--name", default=None, help="Holder's name, a label in the card file only.")
@new_pin_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Card file to write (default: instance/cards/<serial>.json).",
)
def issue_command(my_number: str, name: str | None, pin: str, out: Path | None) -> None:
    """Issue a card: new RSA-2048 key, certificate, card file; register it with the
    identity platform for the person. Prints the card file and the serial."""
    _refuse_existing(out)
    card = issue_virtual_card(
        _authority(),
        lambda serial: _card_path(out, serial),
        pin,
        register=_register(my_number),
        holder_name=name,
    )
    click.echo(f"card: {card.path}")
    click.echo(f"serial: {serial_hex(card.serial)}")


@card_authority_cli.command("register")
@click.option(
    "--cert",
    "cert_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The card certificate (PEM or DER), e.g. from another card authority.",
)
@my_number_option
def register_command(cert_path: Path, my_number: str) -> None:
    """Register a card certificate made by another CA to a person."""
    data = cert_path.read_bytes()
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError:
        raise click.ClickException("not an X.509 certificate (PEM or DER)") from None
    _platform().register_certificate(cert, my_number)
    click.echo(f"registered serial {serial_hex(cert.serial_number)}")
    click.echo(f"issuer: {cert.issuer.rfc4514_string()}")
    click.echo("(the service trusts it only if that issuer chains to CARD_TRUST_ANCHORS)")


@card_authority_cli.command("report-lost")
@serial_option
def report_lost_command(serial: int) -> None:
    """The 24/7 line: put the card on hold (certificateHold)."""
    _authority().report_lost(serial)
    click.echo(f"card {serial_hex(serial)}: on hold (certificateHold); {_next_step_hint()}")


@card_authority_cli.command("resume")
@serial_option
def resume_command(serial: int) -> None:
    """Lift a hold: the card leaves the next CRL."""
    _authority().resume(serial)
    click.echo(f"card {serial_hex(serial)}: resumed; {_next_step_hint()}")


@card_authority_cli.command("revoke")
@serial_option
@click.option(
    "--reason",
    type=click.Choice(sorted(REASONS)),
    default="key-compromise",
    show_default=True,
)
def revoke_command(serial: int, reason: str) -> None:
    """Revoke the card for good."""
    _authority().revoke(serial, REASONS[reason])
    click.echo(f"card {serial_hex(serial)}: revoked ({REASONS[reason].value}); {_next_step_hint()}")


@card_authority_cli.command("reissue")
@serial_option
@my_number_option
@click.option("--name", default=None, help="Holder's name, a label in the card file only.")
@new_pin_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None)
def reissue_command(serial: int, my_number: str, name: str | None, pin: str, out: Path | None):
    """New card for the same person (e.g. after a loss); the old one is revoked
    (superseded). The My Number must be the old card's holder's."""
    _refuse_existing(out)
    authority = _authority()
    platform = _platform()
    old_code = platform.code_for_certificate(CARD_AUTHORITY_AGENCY, authority.certificate(serial))
    if old_code is not None and old_code != platform.code_for_my_number(
        CARD_AUTHORITY_AGENCY, my_number
    ):
        raise click.ClickException("that card belongs to another person; nothing was changed")
    key = generate_card_key()
    cert = authority.reissue(serial, key.public_key(), before_revoking=_register(my_number))
    path = _card_path(out, cert.serial_number)
    _write_card(path, key, cert, authority, pin, name)
    click.echo(f"card: {path}")
    click.echo(f"serial: {serial_hex(cert.serial_number)}")
    click.echo(f"replaces: {serial_hex(serial)} (revoked, superseded); {_next_step_hint()}")


@card_authority_cli.command("publish-crl")
@click.option(
    "--validity-hours",
    type=click.IntRange(1, MAX_CRL_VALIDITY_HOURS),
    default=int(CRL_VALIDITY.total_seconds()) // 3600,
    show_default=True,
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the DER CRL here (it is always kept as issuing-ca.crl).",
)
@click.option(
    "--import/--no-import",
    "do_import",
    default=True,
    show_default=True,
    help="Feed it to the service, as PUT /v1/card-authority/crl does.",
)
def publish_crl_command(validity_hours: int, out: Path | None, do_import: bool) -> None:
    """Sign a new full CRL and feed it to the service."""
    authority = _authority()
    crl = authority.make_crl(validity=timedelta(hours=validity_hours))
    der = crl.public_bytes(serialization.Encoding.DER)
    if out is not None:
        out.write_bytes(der)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entries = f"{len(crl)} entr{'y' if len(crl) == 1 else 'ies'}"
    click.echo(
        f"CRL #{number}: {entries}, next update {crl.next_update_utc.isoformat()}, "
        f"file {(out or authority.crl_path).resolve()}"
    )
    if do_import:
        import_crl(get_session(), der, actor=None)
        click.echo("imported into the service")


def _demo_authority_in_use() -> CardAuthority | None:
    """The demo card authority, when there is one and the service trusts its issuing CA
    (never in a production set-up, whose bundle holds the real card authority's CAs)."""
    from verification.trust import get_trust_anchors

    try:
        authority = _authority()
        anchors = get_trust_anchors(utcnow())
    except (CardAuthorityMissing, CardAuthorityCorrupt, TrustAnchorsUnavailable):
        return None
    return authority if authority.issuing_certificate in anchors.issuing_cas else None


def refresh_demo_crl(authority: CardAuthority) -> x509.CertificateRevocationList | None:
    """Publishes and imports a new demo CRL when the service's one is missing, stale or
    near its nextUpdate; returns it, or None when the current one is fresh enough."""
    now = utcnow()
    current = next(
        (
            state
            for state in ca_crl_states(get_session(), now)
            if state.authority == authority.issuing_certificate
        ),
        None,
    )
    if current is None:  # the trust bundle no longer holds the demo CA
        return None
    if not crl_refresh_due(current.this_update, current.next_update, now):
        return None
    crl = authority.make_crl(now=now)
    import_crl(get_session(), crl.public_bytes(serialization.Encoding.DER), actor=None, now=now)
    return crl


@card_authority_cli.command("refresh-crl")
@click.option(
    "--watch",
    is_flag=True,
    help="Keep checking (every minute) until the parent process ends; make run uses it.",
)
def refresh_crl_command(watch: bool) -> None:
    """Publish a demo CRL if the service's one is missing, stale or near nextUpdate."""
    authority = _demo_authority_in_use()
    if authority is None:
        click.echo("no demo card authority in use (CARD_AUTHORITY_DIR); nothing to refresh")
        return
    parent = os.getppid()
    while True:
        try:
            crl = refresh_demo_crl(authority)
        except (ServiceError, SQLAlchemyError) as error:
            if not watch:
                raise
            # A database restart or a clock step must not end the watcher for good.
            get_session().rollback()
            click.echo(f"demo CRL not refreshed ({type(error).__name__}); will retry", err=True)
            crl = None
        if crl is not None:
            click.echo(f"demo CRL published, next update {crl.next_update_utc.isoformat()}")
        get_session().close()
        if not watch or os.getppid() != parent:  # orphaned: make run has ended
            return
        time.sleep(REFRESH_CHECK_SECONDS)


def demo_crl_advice(app, authority_certificate: x509.Certificate) -> str | None:
    """What to do when the demo issuing CA's CRL is missing or stale (for /readyz and
    ``revocation_unavailable``); None for any other CA."""
    path = Path(app.config["CARD_AUTHORITY_DIR"]) / CardAuthority.ISSUING_CERT
    try:
        demo = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    if demo != authority_certificate:
        return None
    return (
        "it is the demo card authority: run `flask --app app card-authority publish-crl` "
        "(make run publishes one at start-up and keeps it fresh)"
    )


@card_authority_cli.command("list")
def list_command() -> None:
    """Every card issued: serial, status, reason, validity end."""
    for record in sorted(_authority().cards(), key=lambda r: r.issued_at):
        reason = record.reason.value if record.reason else "-"
        click.echo(
            f"{record.serial_hex}\t{record.status}\t{reason}\t{record.not_after.date().isoformat()}"
        )


# -- card ----------------------------------------------------------------------------


def _load_card(path: Path) -> VirtualCard:
    try:
        return VirtualCard.load(path)
    except CardError as error:
        raise click.ClickException(str(error)) from None


@card_cli.command("sign")
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--pin", prompt="Card PIN", hide_input=True, help="Prompted when omitted.")
@click.option("--nonce", required=True, help="The nonce of a challenge.")
@click.option("--aud", default=None, help="Audience (default: SERVICE_AUDIENCE).")
@click.option("--lifetime", type=click.IntRange(1, 3600), default=300, show_default=True)
@click.option(
    "--verifier",
    "verifier_id",
    default=None,
    callback=_verifier_id,
    help="The id of the verifier asking (its challenge's client); signed as `verifier`.",
)
@click.option(
    "--consent",
    type=click.Choice(["monitoring"]),
    multiple=True,
    help="A consent the holder agrees to (signed as `consent`); repeatable.",
)
def sign_command(
    card_path: Path,
    pin: str,
    nonce: str,
    aud: str | None,
    lifetime: int,
    verifier_id: str | None,
    consent: tuple[str, ...],
) -> None:
    """Sign a card assertion; prints the JWS only."""
    card = _load_card(card_path)
    audience = aud or current_app.config["SERVICE_AUDIENCE"]
    try:
        token = card.sign_assertion(
            pin,
            nonce=nonce,
            audience=audience,
            lifetime=lifetime,
            verifier=verifier_id,
            consent=sorted(set(consent)),
        )
    except CardError as error:
        raise click.ClickException(str(error)) from None
    click.echo(token)


@card_cli.command("info")
@click.option("--card", "card_path", required=True, type=click.Path(dir_okay=False, path_type=Path))
def info_command(card_path: Path) -> None:
    """Serial, validity and PIN state of a card file (no PIN needed)."""
    card = _load_card(card_path)
    cert = card.certificate
    click.echo(f"serial: {serial_hex(cert.serial_number)}")
    click.echo(f"issuer: {cert.issuer.rfc4514_string()}")
    click.echo(f"valid until: {cert.not_valid_after_utc.isoformat()}")
    state = "locked" if card.locked else f"{card.remaining_attempts} PIN attempts left"
    click.echo(f"pin: {state}")


# -- seed ----------------------------------------------------------------------------


@seed_cli.command("population-csv")
@click.option("--rows", type=click.IntRange(1), required=True, help="Licence rows to write.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--seed", "random_seed", type=int, default=0, show_default=True)
def population_csv_command(rows: int, out: Path, random_seed: int) -> None:
    """Bulk-import CSV for `licences import` (benchmarks): header
    profession,my_number,name,registration_number,registered_on."""
    from seed.population import write_licence_csv

    started = time.perf_counter()
    written = write_licence_csv(out, rows, seed=random_seed)
    elapsed = max(time.perf_counter() - started, 1e-9)
    click.echo(
        f"wrote {written:,} rows to {out} in {elapsed:.1f} s ({written / elapsed:,.0f} rows/s)"
    )
