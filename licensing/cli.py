"""``flask licences import|register|show|suspend|reinstate|revoke|erase`` and
``flask audit verify``. Console actions are recorded with the actor ``cli``."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path

import click

from core.cli import ServiceGroup
from core.db import get_session
from core.errors import NotFound
from licensing import audit, service
from licensing.importer import DEFAULT_BATCH, ImportResult, RowError, import_csv
from licensing.professions import PROFESSION_CODES

licences_cli = ServiceGroup("licences", help="The licence register (regulators at the console).")
audit_cli = ServiceGroup("audit", help="The tamper-evident audit trail.")

_DATE = click.DateTime(formats=["%Y-%m-%d"])
PROGRESS_EVERY = 100_000


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _echo_licence(view: service.LicenceView) -> None:
    click.echo(f"licence {view.licence_id}")
    click.echo(f"  profession:          {view.profession}")
    click.echo(f"  name:                {view.name if view.name is not None else '(erased)'}")
    number = view.registration_number if view.registration_number is not None else "(erased)"
    click.echo(f"  registration number: {number}")
    click.echo(f"  registered on:       {view.registered_on.isoformat()}")
    status = view.status
    if view.suspended_until is not None:
        status += f" through {view.suspended_until.isoformat()}"
    click.echo(f"  status:              {status}")


@licences_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows even when some rows are invalid (they are still reported).",
)
@click.option(
    "--batch-size", default=DEFAULT_BATCH, show_default=True, type=click.IntRange(1, 20_000)
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line.")
def import_command(file: Path, skip_invalid: bool, batch_size: int, as_json: bool) -> None:
    """Import licences from FILE (CSV with the header row
    profession,my_number,name,registration_number,registered_on).

    Every invalid row is reported with its line number (on stderr). Without
    --skip-invalid, one invalid row means nothing is imported (exit status 1). The
    summary line reports the rate in rows/s.
    """
    next_progress = [PROGRESS_EVERY]

    def on_error(error: RowError) -> None:
        click.echo(str(error), err=True)

    def on_progress(result: ImportResult) -> None:
        if result.rows >= next_progress[0]:
            next_progress[0] = (result.rows // PROGRESS_EVERY + 1) * PROGRESS_EVERY
            click.echo(f"... {result.rows:,} rows read", err=True)

    result = import_csv(
        get_session(),
        file,
        skip_invalid=skip_invalid,
        batch_size=batch_size,
        on_error=on_error,
        on_progress=on_progress,
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "rows": result.rows,
                    "imported": result.imported,
                    "invalid": result.invalid,
                    "committed": result.committed,
                    "seconds": round(result.seconds, 3),
                    "rows_per_second": round(result.rows_per_second, 1),
                    "file_sha256": result.file_sha256,
                }
            )
        )
    else:
        click.echo(result.summary())
    if not result.committed:
        sys.exit(1)


@licences_cli.command("register")
@click.option("--profession", required=True, type=click.Choice(PROFESSION_CODES))
@click.option("--name", required=True)
@click.option("--registration-number", required=True)
@click.option("--registered-on", required=True, type=_DATE, help="YYYY-MM-DD")
@click.option(
    "--my-number",
    prompt="My Number",
    hide_input=True,
    help="Prompted for (not echoed) when omitted, which keeps it out of shell history.",
)
def register_command(
    profession: str, name: str, registration_number: str, registered_on: datetime, my_number: str
) -> None:
    """Register an active licence."""
    licence = service.register_licence(
        get_session(),
        None,
        profession=profession,
        my_number=my_number,
        name=name,
        registration_number=registration_number,
        registered_on=_as_date(registered_on),
    )
    _echo_licence(service.describe(licence))


@licences_cli.command("show")
@click.argument("licence_id", required=False)
@click.option("--registration-number", help="Find by registration number (with --profession).")
@click.option("--profession", type=click.Choice(PROFESSION_CODES))
def show_command(
    licence_id: str | None, registration_number: str | None, profession: str | None
) -> None:
    """Show a licence and its history, by id or by registration number and profession."""
    session = get_session()
    if licence_id is None:
        if not (registration_number and profession):
            raise click.UsageError("give LICENCE_ID, or --registration-number and --profession")
        page = service.find_licences(
            session, profession=profession, registration_number=registration_number, limit=1
        )
        if not page.licences:
            raise NotFound("No such licence.")
        licence_id = page.licences[0].id
    licence = service.get_licence(session, licence_id)
    _echo_licence(service.describe(licence))
    click.echo("  history:")
    for event in service.licence_events(session, licence.id):
        change = f"{event.from_status or '-'} -> {event.to_status}"
        until = f" through {event.until.isoformat()}" if event.until else ""
        actor = event.actor or "(the service)"
        click.echo(f"    {event.at.isoformat()}  {change}{until}  by {actor}: {event.reason}")


def _transition_command(action: str, help_text: str, with_until: bool = False):
    @click.argument("licence_id")
    @click.option("--reason", required=True, help="Why (recorded in the history and audit).")
    def command(licence_id: str, reason: str, until: datetime | None = None) -> None:
        kwargs = {"reason": reason}
        if with_until:
            assert until is not None
            kwargs["until"] = _as_date(until)
        licence = service.TRANSITIONS[action](get_session(), None, licence_id, **kwargs)
        _echo_licence(service.describe(licence))

    command.__doc__ = help_text
    if with_until:
        command = click.option(
            "--until", required=True, type=_DATE, help="Last day of the suspension (inclusive)."
        )(command)
    return licences_cli.command(action)(command)


_transition_command(
    "suspend", "Suspend a licence through --until (inclusive); lifts itself after.", True
)
_transition_command("reinstate", "Reinstate a suspended licence.")
_transition_command("revoke", "Revoke a licence (terminal).")
_transition_command("erase", "Erase a licence's personal data (terminal; the history remains).")


@audit_cli.command("verify")
def verify_command() -> None:
    """Check every link of the audit hash chain; exit status 1 at the first broken one."""
    session = get_session()
    broken = audit.verify_chain(session)
    if broken is not None:
        click.echo(f"audit chain broken at entry {broken}", err=True)
        sys.exit(1)
    head = audit.chain_head(session)
    click.echo(f"audit chain intact: {head[0]} entries, head {head[1]}")
