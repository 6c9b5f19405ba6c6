"""``flask licences import|register|show|suspend|reinstate|revoke|deceased|reprimand|erase`` and
``flask audit verify|checkpoint|show|erase-text``. Console actions are recorded with
the operator's name (``--actor``, default the OS user)."""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import click
from flask import current_app

from clients.cli import actor_option
from core.cli import ServiceGroup
from core.db import get_session
from core.errors import NotFound
from core.text import spreadsheet_safe
from licensing import audit, service
from licensing.importer import DEFAULT_BATCH, ENCODINGS, ImportResult, RowError, import_csv
from licensing.professions import PROFESSION_CODES
from licensing.reconcile import reconcile

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
    for sanction in view.sanctions:
        click.echo(f"  sanction:            {sanction.kind} on {sanction.on.isoformat()}")


class _ImportProgress:
    """A progress bar (rows/s, ETA) on a terminal; plain lines otherwise (logs, pipes)."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.started = time.monotonic()
        self.next_line = PROGRESS_EVERY
        self.bar = None
        self.shown = 0

    def rate(self, done: int) -> float:
        return done / max(time.monotonic() - self.started, 1e-9)

    def __call__(self, result: ImportResult) -> None:
        if result.phase == "checking":
            if result.rows >= self.next_line:
                self.next_line = (result.rows // PROGRESS_EVERY + 1) * PROGRESS_EVERY
                click.echo(f"... {result.rows:,} rows checked", err=True)
            return
        if self.bar is None and self.shown == 0:
            self.started, self.next_line = time.monotonic(), PROGRESS_EVERY
            if self.interactive and result.to_write:
                self.bar = click.progressbar(
                    length=result.to_write,
                    label="writing",
                    file=sys.stderr,
                    show_eta=True,
                    show_pos=True,
                    item_show_func=lambda _item: f"{self.rate(self.shown):,.0f} rows/s",
                )
        done = result.imported
        if self.bar is not None:
            self.bar.update(done - self.shown)
        elif done >= self.next_line or (done and done == result.to_write):
            self.next_line = (done // PROGRESS_EVERY + 1) * PROGRESS_EVERY
            rate = self.rate(done)
            left = (result.to_write - done) / rate if rate else 0
            click.echo(
                f"... {done:,} of {result.to_write:,} licences written "
                f"({rate:,.0f} rows/s, about {left:,.0f} s left)",
                err=True,
            )
        self.shown = done

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.render_finish()


@licences_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Import the valid rows even when some rows are invalid (they are still reported).",
)
@click.option(
    "--encoding",
    type=click.Choice(list(ENCODINGS)),
    default="auto",
    show_default=True,
    help="The file's encoding; auto: UTF-8 (with or without BOM), else Shift-JIS (CP932).",
)
@click.option(
    "--batch-size",
    default=DEFAULT_BATCH,
    show_default=True,
    type=click.IntRange(1, 20_000),
    help="Rows per write transaction (verifications run between transactions).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line.")
@actor_option
def import_command(
    file: Path, skip_invalid: bool, encoding: str, batch_size: int, as_json: bool, actor: str
) -> None:
    """Import licences from FILE (CSV with the header row
    profession,my_number,name,registration_number,registered_on).

    Every row is checked before anything is written; each invalid row is reported with
    its line number (on stderr). Without --skip-invalid, one invalid row means nothing
    is imported (exit status 1). Rows already in the register with the same data are
    reported as unchanged, so a file can be imported again. The summary line reports
    the rate in rows/s.
    """
    progress = _ImportProgress(interactive=sys.stderr.isatty())

    def on_error(error: RowError) -> None:
        click.echo(str(error), err=True)

    try:
        result = import_csv(
            get_session(),
            file,
            actor=actor,
            skip_invalid=skip_invalid,
            batch_size=batch_size,
            encoding=encoding,
            on_error=on_error,
            on_progress=progress,
        )
    finally:
        progress.finish()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "rows": result.rows,
                    "imported": result.imported,
                    "unchanged": result.unchanged,
                    "invalid": result.invalid,
                    "committed": result.committed,
                    "encoding": result.encoding,
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
@actor_option
def register_command(
    profession: str,
    name: str,
    registration_number: str,
    registered_on: datetime,
    my_number: str,
    actor: str,
) -> None:
    """Register an active licence."""
    licence = service.register_licence(
        get_session(),
        actor,
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
    @actor_option
    def command(licence_id: str, reason: str, actor: str, until: datetime | None = None) -> None:
        kwargs = {"reason": reason}
        if with_until:
            assert until is not None
            kwargs["until"] = _as_date(until)
        licence = service.TRANSITIONS[action](get_session(), actor, licence_id, **kwargs)
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
_transition_command("deceased", "Record the holder's death (terminal).")
_transition_command("erase", "Erase a licence's personal data (terminal; the history remains).")


@licences_cli.command("reprimand")
@click.argument("licence_id")
@click.option("--reason", required=True, help="Why (recorded in the history and audit).")
@click.option("--on", "on", required=True, type=_DATE, help="The day it was imposed.")
@actor_option
def reprimand_command(licence_id: str, reason: str, on: datetime, actor: str) -> None:
    """Record a reprimand (戒告); the licence's status stays as it is."""
    licence = service.record_reprimand(
        get_session(), actor, licence_id, reason=reason, on=_as_date(on)
    )
    _echo_licence(service.describe(licence))


def _load_anchor(expect_head: str | None, checkpoint_file: Path | None) -> audit.Anchor | None:
    if expect_head is not None:
        try:
            return audit.parse_expected_head(expect_head)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--expect-head") from None
    if checkpoint_file is None:
        return None
    key_file = current_app.config["AUDIT_CHECKPOINT_KEY_FILE"]
    try:
        public_key = audit.load_checkpoint_public_key(key_file)
        return audit.read_checkpoint(json.loads(checkpoint_file.read_text("utf-8")), public_key)
    except FileNotFoundError:
        raise click.ClickException(
            f"no checkpoint key at {key_file}; set AUDIT_CHECKPOINT_KEY_FILE"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{checkpoint_file}: {error}") from None


@audit_cli.command("verify")
@click.option("--expect-head", metavar="SEQ:HASH", help="A head recorded earlier, e.g. elsewhere.")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint file written by 'audit checkpoint' (its signature is checked).",
)
def verify_command(expect_head: str | None, checkpoint_file: Path | None) -> None:
    """Check every link of the audit chain, the chain against an anchor (--expect-head or
    --checkpoint), and every licence row against its events; exit status 1 on a fault."""
    if expect_head is not None and checkpoint_file is not None:
        raise click.UsageError("give --expect-head or --checkpoint, not both")
    anchor = _load_anchor(expect_head, checkpoint_file)
    session = get_session()
    faults = 0
    broken = audit.verify_chain(session)
    if broken is not None:
        click.echo(f"audit chain broken at entry {broken}", err=True)
        faults += 1
    problem = audit.verify_anchor(session, anchor) if anchor is not None else None
    if problem is not None:
        click.echo(f"audit chain does not match the anchor: {problem}", err=True)
        faults += 1
    for mismatch in reconcile(session):
        click.echo(f"licence changed without an event: {mismatch}", err=True)
        faults += 1
    if faults:
        sys.exit(1)
    head = audit.chain_head(session)
    anchored = f", contains the anchor's entry {anchor.seq}" if anchor is not None else ""
    click.echo(
        f"audit chain intact: {head[0]} entries, head {head[1]}{anchored}; "
        "every licence matches its events"
    )


@audit_cli.command("checkpoint")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the checkpoint to this file (default: print it).",
)
def checkpoint_command(out: Path | None) -> None:
    """Sign the chain's head now (sequence, hash, time) with AUDIT_CHECKPOINT_KEY_FILE.

    Keep checkpoints outside the database (run this from cron, ship the file away);
    'audit verify --checkpoint FILE' then detects a chain truncated or rewritten since.
    """
    key_file = current_app.config["AUDIT_CHECKPOINT_KEY_FILE"]
    try:
        key = audit.load_or_create_checkpoint_key(key_file)
    except ValueError as error:
        raise click.ClickException(f"{key_file}: {error}") from None
    document = json.dumps(audit.checkpoint(get_session(), key))
    if out is None:
        click.echo(document)
    else:
        out.write_text(document + "\n", encoding="utf-8")
        click.echo(f"checkpoint written to {out}")


_SHOW_COLUMNS = ("seq", "at", "actor", "action", "target", "details", "free_text")


def _free_text(entry) -> str:
    if entry.free_text is not None:
        text = {k: v for k, v in entry.free_text.items() if k != "salt"}
        return "; ".join(text.values())
    return "(free text erased)" if entry.free_text_digest is not None else ""


@audit_cli.command("show")
@click.option("--since", type=_DATE, help="Entries from this day on (YYYY-MM-DD, UTC).")
@click.option("--licence", "licence_id", help="Only the entries about this licence.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="CSV with a header row (safe to open in a spreadsheet)."
)
def show_audit_command(since: datetime | None, licence_id: str | None, as_csv: bool) -> None:
    """Print the audit trail, oldest first, one entry a line (tab-separated), or as CSV."""
    since_at = since.replace(tzinfo=UTC) if since is not None else None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if as_csv:
        writer.writerow(_SHOW_COLUMNS)
    for entry in audit.entries(get_session(), since=since_at, target=licence_id):
        row = (
            entry.seq,
            entry.at.isoformat(),
            entry.actor or "(the service)",
            entry.action,
            entry.target,
            json.dumps(entry.details, ensure_ascii=False, sort_keys=True),
            _free_text(entry),
        )
        if as_csv:
            writer.writerow([spreadsheet_safe(cell) for cell in row])
        else:
            click.echo("\t".join(str(cell) for cell in row))
        click.echo(buffer.getvalue(), nl=False)
        buffer.seek(0)
        buffer.truncate()


@audit_cli.command("erase-text")
@click.option("--licence", "licence_id", required=True, help="The licence whose text to erase.")
@actor_option
def erase_text_command(licence_id: str, actor: str) -> None:
    """Erase the reasons recorded for a licence (its events and audit entries), e.g. when
    one holds personal data; the audit chain stays intact (it holds only digests)."""
    erased = service.erase_reasons(get_session(), actor, licence_id)
    click.echo(f"erased the text of {erased} audit entries and the licence's event reasons")
