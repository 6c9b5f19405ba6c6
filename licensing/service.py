"""The licence register: registration, status lifecycle, look-ups.

Lifecycle (``effective`` status on the left; 409 ``invalid_transition`` otherwise)::

    suspend    active | suspended  -> suspended  (a new end date; extends or shortens)
    reinstate  suspended           -> active
    revoke     active | suspended  -> revoked    (terminal)
    deceased   active | suspended  -> deceased   (terminal: the holder died)
    reprimand  active | suspended  -> unchanged  (a recorded sanction, 戒告)
    erase      active | suspended | revoked | deceased -> erased (terminal; data removed)

A suspension covers every day up to and including ``until`` (Japan's calendar date).
From the next day it reads as ``active`` with no job: readers use ``effective_status``.
The next change of such a licence first appends the implicit "suspension ended" event,
so the stored history always chains (each event's ``from_status`` is the previous
event's ``to_status``).

Every change writes the licence, an event (who, when, why) and an audit-chain entry in
one transaction. Service functions commit their own unit of work.
"""

from __future__ import annotations

import secrets
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

from sqlalchemy import bindparam, case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.exc import StaleDataError

from clients.models import ApiClient
from clients.service import AuthenticatedClient
from core.audit import console_operator
from core.db import utcnow
from core.errors import Conflict, Forbidden
from core.my_number import is_valid_my_number
from core.text import clean_text
from licensing import audit
from licensing.errors import (
    AlreadyLicensed,
    ConcurrentChange,
    InvalidLicenceData,
    InvalidTransition,
    LicenceNotFound,
    RegistrationNumberTaken,
)
from licensing.models import (
    CURRENT_SLOT,
    CURRENT_STATUSES,
    Licence,
    LicenceEvent,
    LicenceStatus,
    Sanction,
)
from licensing.professions import validate_registration_number
from licensing.reconcile import licence_digest

# Licence dates (registration, end of suspension) are calendar dates in Japan.
JST = timezone(timedelta(hours=9), "JST")
CLI_ACTOR = "cli"
NAME_MAX = 200
REASON_MAX = 500
_MAX_ATTEMPTS = 3

_ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    "suspend": ("active", "suspended"),
    "reinstate": ("suspended",),
    "revoke": ("active", "suspended"),
    "deceased": ("active", "suspended"),
    "reprimand": ("active", "suspended"),
    "erase": ("active", "suspended", "revoked", "deceased"),
}
_TARGET: dict[str, LicenceStatus] = {
    "suspend": LicenceStatus.SUSPENDED,
    "reinstate": LicenceStatus.ACTIVE,
    "revoke": LicenceStatus.REVOKED,
    "deceased": LicenceStatus.DECEASED,
    "erase": LicenceStatus.ERASED,
}  # a reprimand keeps the (effective) status


def today() -> date:
    """Today's date in Japan (licence dates are Japanese calendar dates)."""
    return utcnow().astimezone(JST).date()


_today = today  # for functions whose ``today`` parameter shadows it


def suspension_end(until: date) -> datetime:
    """The moment a suspension through ``until`` ends: the next midnight in Japan (UTC)."""
    return datetime.combine(until + timedelta(days=1), datetime.min.time(), JST).astimezone(UTC)


def new_licence_id() -> str:
    """``lic_`` + 12 hex digits of milliseconds + 10 random hex digits (index-friendly)."""
    return f"lic_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(5)}"


#: Who acts: an API client (stored or the authenticated request's), the console
#: operator's name, or None for the console's OS user.
Actor = ApiClient | AuthenticatedClient | str | None


def actor_name(actor: Actor) -> str:
    """The name events and the audit trail record: the client's name, or the operator."""
    if isinstance(actor, ApiClient | AuthenticatedClient):
        return actor.name
    return actor or console_operator()


def check_scope(actor: Actor, profession: str) -> None:
    """403 ``forbidden`` when a regulator client scoped to professions acts outside them."""
    if isinstance(actor, ApiClient | AuthenticatedClient):
        scope = actor.profession_scope
        if scope and profession not in scope:
            raise Forbidden("This regulator client may act only on: " + ", ".join(scope) + ".")


def effective_status(licence, today: date) -> str:
    """The status as of ``today``: a suspension whose last day has passed reads as active.

    ``licence`` is anything with ``status`` and ``suspended_until`` (a ``Licence`` or a
    result row).
    """
    status = str(licence.status)
    if status == "suspended" and licence.suspended_until is not None:
        if licence.suspended_until < today:
            return "active"
    return status


def effective_suspended_until(licence, today: date) -> date | None:
    return licence.suspended_until if effective_status(licence, today) == "suspended" else None


@dataclass(frozen=True)
class HolderLicence:
    """A holder's licence for one profession, as verification and holders see it."""

    licence_id: str
    profession: str
    name: str
    status: str  # "active" | "suspended" | "revoked" | "deceased"
    registered_year: int
    suspended_until: date | None
    #: When the register last changed for this licence (its last event).
    changed_at: datetime


@dataclass(frozen=True)
class SanctionView:
    kind: str
    on: date
    reason: str
    at: datetime


@dataclass(frozen=True)
class LicenceView:
    """A licence as regulators see it (effective status; never the holder code)."""

    licence_id: str
    profession: str
    name: str | None
    registration_number: str | None
    registered_on: date
    status: str
    suspended_until: date | None
    sanctions: list[SanctionView]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EventView:
    from_status: str | None
    to_status: str
    reason: str
    until: date | None
    actor: str | None
    at: datetime


def sanctions_of(session: Session, licence_id: str) -> list[SanctionView]:
    """The sanctions recorded on a licence, oldest first."""
    return [
        SanctionView(str(e.sanction), e.sanction_on, e.reason, e.at)
        for e in session.scalars(
            select(LicenceEvent)
            .where(LicenceEvent.licence_id == licence_id, LicenceEvent.sanction.is_not(None))
            .order_by(LicenceEvent.id)
        )
    ]


def describe(licence: Licence, day: date | None = None) -> LicenceView:
    day = day or today()
    session = object_session(licence)
    return LicenceView(
        licence_id=licence.id,
        profession=licence.profession,
        name=licence.name,
        registration_number=licence.registration_number,
        registered_on=licence.registered_on,
        status=effective_status(licence, day),
        suspended_until=effective_suspended_until(licence, day),
        sanctions=sanctions_of(session, licence.id) if session is not None else [],
        created_at=licence.created_at,
        updated_at=licence.updated_at,
    )


# --- the verification hot path ---------------------------------------------------------

_t = Licence.__table__
_CURRENT_FIRST = case((_t.c.current_slot.is_(None), 1), else_=0)
_HOLDER_COLUMNS = (
    _t.c.id,
    _t.c.profession,
    _t.c.name,
    _t.c.status,
    _t.c.registered_on,
    _t.c.suspended_until,
    _t.c.updated_at,
)
# Served by uq_licences_holder_code_profession_current (its first two columns); erased
# licences hold no holder code.
_LICENCE_FOR_HOLDER = (
    select(*_HOLDER_COLUMNS)
    .where(
        _t.c.holder_code == bindparam("holder_code"),
        _t.c.profession == bindparam("profession"),
    )
    .order_by(_CURRENT_FIRST, _t.c.registered_on.desc(), _t.c.pk.desc())
    .limit(1)
)
_LICENCES_FOR_HOLDER = (
    select(*_HOLDER_COLUMNS)
    .where(_t.c.holder_code == bindparam("holder_code"))
    .order_by(_t.c.profession, _CURRENT_FIRST, _t.c.registered_on.desc(), _t.c.pk.desc())
)


def register_changed_at(row, day: date) -> datetime:
    """When the register last changed for a licence (``row`` has ``status``,
    ``suspended_until``, ``updated_at``): a suspension that ended by itself changed it
    when it ended."""
    if str(row.status) == "suspended" and effective_status(row, day) == "active":
        return suspension_end(row.suspended_until)
    return row.updated_at


def _holder_licence(row, day: date) -> HolderLicence:
    status = effective_status(row, day)
    return HolderLicence(
        licence_id=row.id,
        profession=row.profession,
        name=row.name,
        status=status,
        registered_year=row.registered_on.year,
        suspended_until=row.suspended_until if status == "suspended" else None,
        changed_at=register_changed_at(row, day),
    )


def licence_for_holder(
    session: Session, holder_code: str, profession: str, today: date | None = None
) -> HolderLicence | None:
    """The holder's licence for ``profession``: the current (active or suspended) one, else
    the most recent revoked one; None when there is none (or it was erased).

    One indexed query, no ORM objects, no cache: a change is visible to the very next call.
    """
    row = session.execute(
        _LICENCE_FOR_HOLDER, {"holder_code": holder_code, "profession": profession}
    ).first()
    if row is None:
        return None
    return _holder_licence(row, today or _today())


def licences_for_holder(
    session: Session, holder_code: str, today: date | None = None
) -> list[HolderLicence]:
    """One licence per profession (as ``licence_for_holder`` picks it), by profession."""
    day = today or _today()
    result: list[HolderLicence] = []
    seen: set[str] = set()
    for row in session.execute(_LICENCES_FOR_HOLDER, {"holder_code": holder_code}):
        if row.profession not in seen:
            seen.add(row.profession)
            result.append(_holder_licence(row, day))
    return result


# --- registration ----------------------------------------------------------------------


def clean_name(value: str) -> str:
    return clean_text(value, field="name", max_length=NAME_MAX)


def clean_reason(value: str) -> str:
    return clean_text(value, field="reason", max_length=REASON_MAX)


def check_registered_on(value: date, day: date) -> date:
    if not isinstance(value, date) or value > day:
        raise InvalidLicenceData("The registration date must not be in the future.")
    return value


def register_licence(
    session: Session,
    actor: Actor,
    *,
    profession: str,
    my_number: str,
    name: str,
    registration_number: str,
    registered_on: date,
) -> Licence:
    """Registers an active licence. ``my_number`` is used once, to obtain the licensing
    agency's code for the person, and is never stored, logged or returned.

    Raises UnknownProfession / InvalidRegistrationNumber / InvalidLicenceData (400),
    InvalidMyNumber (422), RegistrationNumberTaken / AlreadyLicensed (409 ``conflict``).
    """
    from identity import LICENSING_AGENCY, get_identity_platform
    from identity.errors import InvalidMyNumber

    day = today()
    check_scope(actor, profession)
    number = validate_registration_number(session, profession, registration_number)
    name = clean_name(name)
    check_registered_on(registered_on, day)
    if not is_valid_my_number(my_number):
        raise InvalidMyNumber()
    holder_code = get_identity_platform().code_for_my_number(LICENSING_AGENCY, my_number)
    del my_number

    if session.scalar(
        select(Licence.pk).where(
            Licence.registration_number == number, Licence.profession == profession
        )
    ):
        raise RegistrationNumberTaken()
    if session.scalar(
        select(Licence.pk).where(
            Licence.holder_code == holder_code,
            Licence.profession == profession,
            Licence.status.in_(CURRENT_STATUSES),
        )
    ):
        raise AlreadyLicensed()

    now = utcnow()
    who = actor_name(actor)
    licence = Licence(
        id=new_licence_id(),
        profession=profession,
        holder_code=holder_code,
        name=name,
        registration_number=number,
        registered_on=registered_on,
        status=LicenceStatus.ACTIVE,
        current_slot=CURRENT_SLOT,
        suspended_until=None,
        created_at=now,
        updated_at=now,
    )
    session.add(licence)
    session.add(
        LicenceEvent(
            licence_id=licence.id,
            from_status=None,
            to_status="active",
            reason="registered",
            until=None,
            actor=who,
            at=now,
            state_digest=licence_digest(licence),
        )
    )
    try:
        audit.record(
            session,
            actor=who,
            action="licence.register",
            target=licence.id,
            details={"profession": profession, "status": "active"},
        )
        session.commit()
    except IntegrityError:
        # Lost a race with a concurrent registration of the same number or person.
        session.rollback()
        raise Conflict(
            "The registration number or the person's licence was registered meanwhile."
        ) from None
    return licence


# --- look-ups --------------------------------------------------------------------------


def get_licence(session: Session, licence_id: str, actor: Actor = None) -> Licence:
    """The licence; 403 when ``actor`` is a regulator client scoped to other professions."""
    licence = session.scalar(select(Licence).where(Licence.id == licence_id))
    if licence is None:
        raise LicenceNotFound()
    check_scope(actor, licence.profession)
    return licence


@dataclass(frozen=True)
class LicencePage:
    licences: list[Licence]
    next_after: int | None  # the internal key to continue after, or None at the end


def find_licences(
    session: Session,
    *,
    profession: str | None = None,
    status: str | None = None,
    registration_number: str | None = None,
    name: str | None = None,
    after: int | None = None,
    limit: int = 50,
    day: date | None = None,
    actor: Actor = None,
) -> LicencePage:
    """Licences in register order (oldest first), filtered; keyset pagination.

    ``status`` filters on the *effective* status. ``registration_number`` is compared in
    canonical form (leading zeros ignored). ``name`` matches any part of the name as
    registered (kanji or kana), after NFC normalisation. A regulator client scoped to
    professions sees only those (403 when it asks for another).
    """
    day = day or today()
    stmt = select(Licence)
    if profession is not None:
        check_scope(actor, profession)
        stmt = stmt.where(Licence.profession == profession)
    elif isinstance(actor, ApiClient | AuthenticatedClient) and actor.profession_scope:
        stmt = stmt.where(Licence.profession.in_(actor.profession_scope))
    if registration_number is not None:
        canonical = registration_number.lstrip("0")
        stmt = stmt.where(Licence.registration_number == canonical)
    if name:
        part = unicodedata.normalize("NFC", name)
        stmt = stmt.where(Licence.name.contains(part, autoescape=True))
    if status is not None:
        lapsed = (Licence.status == LicenceStatus.SUSPENDED) & (Licence.suspended_until < day)
        if status == "active":
            stmt = stmt.where((Licence.status == LicenceStatus.ACTIVE) | lapsed)
        elif status == "suspended":
            stmt = stmt.where(
                (Licence.status == LicenceStatus.SUSPENDED) & (Licence.suspended_until >= day)
            )
        else:
            stmt = stmt.where(Licence.status == LicenceStatus(status))
    if after is not None:
        stmt = stmt.where(Licence.pk > after)
    rows = list(session.scalars(stmt.order_by(Licence.pk).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return LicencePage(rows, rows[-1].pk if more and rows else None)


def licence_events(
    session: Session, licence_id: str, day: date | None = None, actor: Actor = None
) -> list[EventView]:
    """The licence's history, oldest first, including a suspension that ended by itself."""
    licence = get_licence(session, licence_id, actor)
    day = day or today()
    events = [
        EventView(e.from_status, e.to_status, e.reason, e.until, e.actor, e.at)
        for e in session.scalars(
            select(LicenceEvent)
            .where(LicenceEvent.licence_id == licence.id)
            .order_by(LicenceEvent.id)
        )
    ]
    if licence.status == LicenceStatus.SUSPENDED and effective_status(licence, day) == "active":
        events.append(_lapse_view(licence))
    return events


def _lapse_view(licence: Licence) -> EventView:
    assert licence.suspended_until is not None
    return EventView(
        "suspended",
        "active",
        "suspension ended",
        None,
        None,
        suspension_end(licence.suspended_until),
    )


# --- lifecycle -------------------------------------------------------------------------


def suspend_licence(
    session: Session, actor: Actor, licence_id: str, *, reason: str, until: date
) -> Licence:
    return _transition(session, actor, licence_id, "suspend", reason, until)


def reinstate_licence(session: Session, actor: Actor, licence_id: str, *, reason: str) -> Licence:
    return _transition(session, actor, licence_id, "reinstate", reason)


def revoke_licence(session: Session, actor: Actor, licence_id: str, *, reason: str) -> Licence:
    return _transition(session, actor, licence_id, "revoke", reason)


def record_deceased(session: Session, actor: Actor, licence_id: str, *, reason: str) -> Licence:
    """Terminal: the holder died; verifications answer ``deceased``, credentials die."""
    return _transition(session, actor, licence_id, "deceased", reason)


def record_reprimand(
    session: Session, actor: Actor, licence_id: str, *, reason: str, on: date
) -> Licence:
    """Records a reprimand (戒告) imposed on ``on`` (not in the future); the status stays."""
    return _transition(session, actor, licence_id, "reprimand", reason, sanction_on=on)


def erase_licence(session: Session, actor: Actor, licence_id: str, *, reason: str) -> Licence:
    """Terminal: removes the personal data (holder code, name, registration number); the
    licence id, profession, dates and the history remain. Frees the registration number."""
    return _transition(session, actor, licence_id, "erase", reason)


TRANSITIONS = {
    "suspend": suspend_licence,
    "reinstate": reinstate_licence,
    "revoke": revoke_licence,
    "deceased": record_deceased,
    "erase": erase_licence,
}


def _transition(
    session: Session,
    actor: Actor,
    licence_id: str,
    action: str,
    reason: str,
    until: date | None = None,
    sanction_on: date | None = None,
) -> Licence:
    reason = clean_reason(reason)
    who = actor_name(actor)
    for _attempt in range(_MAX_ATTEMPTS):
        try:
            licence = _apply(session, actor, who, licence_id, action, reason, until, sanction_on)
            session.commit()
            return licence
        except StaleDataError:
            # SQLite: another writer changed the licence between our read and our write
            # (the version check caught it). Re-read and decide again.
            session.rollback()
    raise ConcurrentChange()


def _apply(
    session: Session,
    actor: Actor,
    who: str,
    licence_id: str,
    action: str,
    reason: str,
    until: date | None,
    sanction_on: date | None = None,
) -> Licence:
    # FOR UPDATE serialises concurrent changes of one licence on PostgreSQL; on SQLite the
    # version column (optimistic check) does.
    licence = session.scalar(
        select(Licence)
        .where(Licence.id == licence_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if licence is None:
        raise LicenceNotFound()
    check_scope(actor, licence.profession)
    now = utcnow()
    day = now.astimezone(JST).date()
    if action == "suspend" and (until is None or until < day):
        raise InvalidLicenceData("The suspension must end today or later.")
    if action == "reprimand" and (sanction_on is None or sanction_on > day):
        raise InvalidLicenceData("The reprimand's date must not be in the future.")
    current = effective_status(licence, day)
    if current not in _ALLOWED_FROM[action]:
        raise InvalidTransition(
            f"The licence is {current}; {action} is possible only from "
            + " or ".join(_ALLOWED_FROM[action])
            + "."
        )
    if licence.status == LicenceStatus.SUSPENDED and current == "active":
        lapse = _lapse_view(licence)
        session.add(
            LicenceEvent(
                licence_id=licence.id,
                from_status=lapse.from_status,
                to_status=lapse.to_status,
                reason=lapse.reason,
                until=None,
                actor=None,
                at=lapse.at,
            )
        )
    sanction = Sanction.REPRIMAND if action == "reprimand" else None
    target = _TARGET.get(action, LicenceStatus(current))
    if sanction is not None and target == LicenceStatus.SUSPENDED:
        until = licence.suspended_until  # the suspension runs on
    licence.status = target
    licence.current_slot = CURRENT_SLOT if target.value in CURRENT_STATUSES else None
    licence.suspended_until = until if target == LicenceStatus.SUSPENDED else None
    licence.updated_at = now
    if target == LicenceStatus.ERASED:
        licence.holder_code = None
        licence.name = None
        licence.registration_number = None
    session.add(
        LicenceEvent(
            licence_id=licence.id,
            from_status=current,
            to_status=target.value,
            reason=reason,
            until=licence.suspended_until,
            actor=who,
            at=now,
            state_digest=licence_digest(licence),
            sanction=sanction,
            sanction_on=sanction_on if sanction else None,
        )
    )
    details = {
        "from": current,
        "to": target.value,
        "until": licence.suspended_until.isoformat() if licence.suspended_until else None,
    }
    if sanction is not None:
        details |= {"sanction": sanction.value, "on": sanction_on.isoformat()}
    audit.record(
        session,
        actor=who,
        action=f"licence.{action}",
        target=licence.id,
        details=details,
        free_text={"reason": reason},
    )
    return licence


#: Reasons the service writes itself; erasure leaves them (they hold no personal data).
SERVICE_REASONS = ("registered", "imported", "suspension ended")
ERASED_TEXT = "(erased)"


def erase_reasons(session: Session, actor: Actor, licence_id: str) -> int:
    """Erases the reasons typed for a licence: in its events and its audit entries (the
    chain keeps their digests, so it stays intact). Audited; returns the entries erased."""
    licence = get_licence(session, licence_id, actor)
    session.execute(
        update(LicenceEvent)
        .where(LicenceEvent.licence_id == licence.id, LicenceEvent.reason.not_in(SERVICE_REASONS))
        .values(reason=ERASED_TEXT)
        .execution_options(synchronize_session=False)
    )
    erased = audit.erase_free_text(session, licence.id)
    audit.record(
        session,
        actor=actor_name(actor),
        action="licence.erase_text",
        target=licence.id,
        details={"entries": erased},
    )
    session.commit()
    return len(erased)


def describe_many(licences: Sequence[Licence], day: date | None = None) -> list[LicenceView]:
    day = day or today()
    return [describe(licence, day) for licence in licences]
