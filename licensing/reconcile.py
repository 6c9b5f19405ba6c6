"""The licence table against its events: every change of a licence row has an event.

Each event stores ``state_digest``, the SHA-256 of the licence's state right after the
change (name, number, profession, dates, status). ``reconcile`` recomputes it
from every licence row and compares it with the row's newest event; it also checks
that the row's version counts its changes. A row edited in the database without going
through the service (a status flipped, a name or number changed) is reported.

The holder code is left out: rotating the identity platform's keys re-keys every stored
code (``identity-platform rotate-keys``, itself audited) without a licence event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licensing.models import Licence, LicenceEvent


def state_digest(
    *,
    profession: str,
    name: str | None,
    registration_number: str | None,
    registered_on: date | str,
    status: str,
    suspended_until: date | str | None,
) -> str:
    material = [
        profession,
        name,
        registration_number,
        str(registered_on),
        str(status),
        None if suspended_until is None else str(suspended_until),
    ]
    canonical = json.dumps(material, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def licence_digest(licence) -> str:
    """``state_digest`` of a ``Licence`` (or a row with the same attributes)."""
    return state_digest(
        profession=licence.profession,
        name=licence.name,
        registration_number=licence.registration_number,
        registered_on=licence.registered_on,
        status=licence.status,
        suspended_until=licence.suspended_until,
    )


@dataclass(frozen=True)
class Mismatch:
    licence_id: str
    problem: str

    def __str__(self) -> str:
        return f"{self.licence_id}: {self.problem}"


def reconcile(session: Session) -> Iterator[Mismatch]:
    """Every licence whose row does not match its events, in register order."""
    # Changes are the events with an actor (a suspension that ended by itself is the
    # service's note, not a change of the row).
    changes = (
        select(
            LicenceEvent.licence_id,
            func.count().label("changes"),
            func.max(LicenceEvent.id).label("newest"),
        )
        .where(LicenceEvent.actor.is_not(None))
        .group_by(LicenceEvent.licence_id)
        .subquery()
    )
    rows = session.execute(
        select(Licence, changes.c.changes, LicenceEvent.state_digest, LicenceEvent.to_status)
        .outerjoin(changes, changes.c.licence_id == Licence.id)
        .outerjoin(LicenceEvent, LicenceEvent.id == changes.c.newest)
        .order_by(Licence.pk)
        .execution_options(yield_per=2000)
    )
    for licence, count, digest, to_status in rows:
        if not count:
            yield Mismatch(licence.id, "no event records this licence")
        elif count != licence.version:
            yield Mismatch(licence.id, f"{licence.version} changes stored, {count} events")
        elif to_status != str(licence.status):
            yield Mismatch(
                licence.id, f"status {licence.status}, the newest event says {to_status}"
            )
        elif digest is not None and digest != licence_digest(licence):
            yield Mismatch(licence.id, "the row differs from the state its newest event records")
