"""``flask monitoring``: the delivery worker and housekeeping."""

from __future__ import annotations

import signal
import threading

import click
from flask import current_app

from core.cli import ServiceGroup
from core.db import get_session
from monitoring import worker
from monitoring.outbox import emit_due_lapses

monitoring_cli = ServiceGroup("monitoring", help="Monitoring events and their delivery.")


@monitoring_cli.command("worker")
@click.option("--once", is_flag=True, help="Stop when nothing is due instead of waiting.")
def worker_command(once: bool) -> None:
    """Push pending events to webhooks until stopped (SIGTERM or Ctrl-C finish the batch)."""
    stop = threading.Event()

    def request_stop(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    attempts = worker.run(app, stop, once=once)
    click.echo(f"worker stopped after {attempts} push attempts")


@monitoring_cli.command("lapses")
def lapses_command() -> None:
    """Write the events of monitored suspensions that ended by themselves (the worker
    does this every minute)."""
    click.echo(f"{emit_due_lapses(get_session())} events written")
