"""Pruning inside the service: what has expired does not pile up.

``prune`` deletes challenges expired over a day ago, holder sessions and credential
records expired over a day ago, and access records older than ``ACCESS_LOG_RETENTION``
days. Each worker runs it by itself every ``HOUSEKEEPING_INTERVAL`` seconds: after a
request, once its response has been sent (``call_on_close``), so no caller waits for
it; a few workers pruning the same rows is harmless (deletes are idempotent).
``flask housekeeping prune`` runs it on demand (e.g. from cron with a large interval).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from flask import Flask, Response
from sqlalchemy import delete
from sqlalchemy.orm import Session

from core.db import get_session, utcnow
from holder.credentials import prune_credentials
from holder.sessions import prune_sessions
from verification.challenges import prune_challenges
from verification.models import AccessRecord

log = logging.getLogger("licence_service.holder")
_EXTENSION_KEY = "holder_housekeeping"


@dataclass(frozen=True)
class Pruned:
    challenges: int
    sessions: int
    credentials: int
    access_records: int

    def __str__(self) -> str:
        return (
            f"removed {self.challenges} challenges, {self.sessions} sessions, "
            f"{self.credentials} credential records and {self.access_records} access records"
        )


def access_log_retention(app: Flask) -> timedelta:
    return timedelta(days=int(app.config["ACCESS_LOG_RETENTION"]))


def prune_access_records(session: Session, *, older_than: timedelta, now: datetime) -> int:
    result = session.execute(delete(AccessRecord).where(AccessRecord.at < now - older_than))
    session.commit()
    return result.rowcount or 0


def prune(session: Session, app: Flask) -> Pruned:
    return Pruned(
        challenges=prune_challenges(session),
        sessions=prune_sessions(session),
        credentials=prune_credentials(session),
        access_records=prune_access_records(
            session, older_than=access_log_retention(app), now=utcnow()
        ),
    )


class PeriodicPrune:
    """Schedules ``prune`` after a response when ``HOUSEKEEPING_INTERVAL`` has passed."""

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._last = time.monotonic()  # monotonic: wall-clock jumps neither skip nor repeat

    def after_request(self, response: Response) -> Response:
        interval = int(self._app.config["HOUSEKEEPING_INTERVAL"])
        if time.monotonic() - self._last < interval:
            return response
        with self._lock:
            if time.monotonic() - self._last < interval:
                return response  # another thread scheduled it just now
            self._last = time.monotonic()
        response.call_on_close(self.run)
        return response

    def run(self) -> None:
        try:
            with self._app.app_context():
                pruned = prune(get_session(), self._app)
            log.info("housekeeping", extra=asdict(pruned))
        except Exception as failure:  # noqa: BLE001 - never break a served response; retried later
            log.warning("housekeeping failed", extra={"error_class": type(failure).__name__})


def init_app(app: Flask) -> None:
    periodic = app.extensions[_EXTENSION_KEY] = PeriodicPrune(app)
    app.after_request(periodic.after_request)
