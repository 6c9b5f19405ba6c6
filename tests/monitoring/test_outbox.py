"""The transactional outbox: every status change of a monitored licence writes one event
per subscription in the change's own transaction (issue 18, item 2)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from core import db
from licensing import audit
from licensing.models import Licence
from licensing.service import JST, suspend_licence, today
from monitoring.models import DeliveryState, EventType, MonitoringEvent, Subscription
from monitoring.outbox import emit_due_lapses
from tests.fixtures.monitoring import regulator_action
from verification import listeners
from verification.listeners import Verified
from verification.models import AccessRecord


def _events(app, **where) -> list[MonitoringEvent]:
    with app.app_context():
        stmt = select(MonitoringEvent).order_by(MonitoringEvent.seq)
        for name, value in where.items():
            stmt = stmt.where(getattr(MonitoringEvent, name) == value)
        return list(db.get_session().scalars(stmt))


def test_each_change_writes_one_event_per_subscription(
    app, http, register_licence, regulator, verifier, other_verifier, monitor
):
    _, regulator_headers = regulator
    licence = register_licence()
    unmonitored = register_licence()
    first, _ = monitor(verifier, licence)
    second, _ = monitor(other_verifier, licence)
    until = (today() + timedelta(days=30)).isoformat()

    regulator_action(http, regulator_headers, licence.id, "suspend", until=until)
    regulator_action(http, regulator_headers, licence.id, "reinstate")
    regulator_action(http, regulator_headers, licence.id, "revoke")
    regulator_action(http, regulator_headers, unmonitored.id, "revoke")

    for subscription_id in (first, second):
        events = _events(app, subscription_id=subscription_id)
        assert [(e.event_type, e.status) for e in events] == [
            (EventType.STATUS_CHANGED, "suspended"),
            (EventType.STATUS_CHANGED, "active"),
            (EventType.STATUS_CHANGED, "revoked"),
        ]
        assert events[0].suspended_until.isoformat() == until
        assert all(e.state == DeliveryState.PENDING and e.profession == "doctor" for e in events)
        assert len({e.jti for e in events}) == 3
    assert len(_events(app)) == 6  # nothing for the unmonitored licence


def test_a_failed_change_writes_no_event_and_an_event_never_lacks_its_change(
    app, register_licence, verifier, monitor, monkeypatch
):
    licence = register_licence()
    monitor(verifier, licence)

    def crash(*_args, **_kwargs):
        raise RuntimeError("crash after the events were flushed")

    monkeypatch.setattr(audit, "record", crash)
    with app.app_context(), pytest.raises(RuntimeError):
        session = db.get_session()
        suspend_licence(session, None, licence.id, reason="r", until=today())
    with app.app_context():
        session = db.get_session()
        assert session.scalar(select(Licence.status).where(Licence.id == licence.id)) == "active"
    assert _events(app) == []


@pytest.fixture
def suspended_until_today(http, register_licence, regulator, verifier, monitor):
    """A monitored licence suspended through today: (licence, subscription id, today)."""
    _, regulator_headers = regulator
    licence = register_licence()
    subscription_id, _ = monitor(verifier, licence)
    last_day = today()
    regulator_action(http, regulator_headers, licence.id, "suspend", until=last_day.isoformat())
    return licence, subscription_id, last_day


def test_a_suspension_that_ends_by_itself_is_announced_once_on_its_date(
    app, http, regulator, suspended_until_today
):
    _, regulator_headers = regulator
    licence, subscription_id, last_day = suspended_until_today

    with app.app_context():
        assert emit_due_lapses(db.get_session()) == 0  # still suspended today
    next_day = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), JST)
    with time_machine.travel(next_day + timedelta(hours=1), tick=False):
        with app.app_context():
            assert emit_due_lapses(db.get_session()) == 1
            assert emit_due_lapses(db.get_session()) == 0  # not twice
        # The register's next change writes the implicit end of the suspension: no
        # second event for it.
        regulator_action(http, regulator_headers, licence.id, "revoke")
    events = _events(app, subscription_id=subscription_id)
    assert [e.status for e in events] == ["suspended", "active", "revoked"]
    assert events[1].effective_at == next_day
    assert events[1].suspended_until is None


def test_a_lapse_first_noticed_by_the_register_is_announced_once(
    app, http, regulator, suspended_until_today
):
    _, regulator_headers = regulator
    licence, subscription_id, last_day = suspended_until_today
    later = datetime.combine(last_day + timedelta(days=3), datetime.min.time(), JST)
    with time_machine.travel(later, tick=False):
        regulator_action(http, regulator_headers, licence.id, "revoke")
        with app.app_context():
            assert emit_due_lapses(db.get_session()) == 0
    assert [e.status for e in _events(app, subscription_id=subscription_id)] == [
        "suspended",
        "active",
        "revoked",
    ]


def test_a_second_suspension_gets_its_own_lapse_event(app, http, regulator, suspended_until_today):
    _, regulator_headers = regulator
    licence, subscription_id, start = suspended_until_today
    day_after = datetime.combine(start + timedelta(days=1), datetime.min.time(), JST)
    with time_machine.travel(day_after + timedelta(hours=2), tick=False):
        with app.app_context():
            assert emit_due_lapses(db.get_session()) == 1
        until = (start + timedelta(days=1)).isoformat()
        regulator_action(http, regulator_headers, licence.id, "suspend", until=until)
    with time_machine.travel(day_after + timedelta(days=1, hours=2), tick=False):
        with app.app_context():
            assert emit_due_lapses(db.get_session()) == 1
    assert [e.status for e in _events(app, subscription_id=subscription_id)] == [
        "suspended",
        "active",
        "suspended",
        "active",
    ]


def test_erasing_a_licence_ends_its_monitoring(
    app, http, register_licence, regulator, verifier, monitor
):
    _, regulator_headers = regulator
    licence = register_licence()
    subscription_id, _ = monitor(verifier, licence)
    regulator_action(http, regulator_headers, licence.id, "erase")
    assert [e.status for e in _events(app, subscription_id=subscription_id)] == ["erased"]
    with app.app_context():
        subscription = db.get_session().get(Subscription, subscription_id)
        assert subscription.active_slot is None and subscription.ended_by == "licence_erased"


def test_registration_and_unrelated_flushes_write_nothing(app, register_licence):
    register_licence()
    with app.app_context():
        assert db.get_session().scalar(select(func.count()).select_from(MonitoringEvent)) == 0


def test_monitoring_is_started_once_per_verifier_and_licence(
    app, register_licence, verifier, monitor
):
    licence = register_licence()
    assert monitor(verifier, licence) == monitor(verifier, licence)
    with app.app_context():
        assert db.get_session().scalar(select(func.count()).select_from(Subscription)) == 1


@pytest.mark.parametrize(("consented_to", "starts"), [(("monitoring",), True), ((), False)])
def test_the_verification_listener_starts_monitoring_on_consent(
    app, register_licence, verifier, consented_to, starts
):
    client, _ = verifier
    licence = register_licence()
    verified = Verified(
        verifier_client_id=client.id,
        verifier_name=client.name,
        subject="v1.subject-of-the-verifier",
        holder_code=licence.holder_code,
        licence_id=licence.id,
        profession=licence.profession,
        at=datetime.now(JST),
        consented_to=consented_to,
    )
    with app.app_context():
        session = db.get_session()
        listeners.notify(session, verified)
        session.commit()
        count = session.scalar(select(func.count()).select_from(Subscription))
        started = session.scalar(
            select(func.count())
            .select_from(AccessRecord)
            .where(AccessRecord.outcome == "monitoring_started")
        )
    assert (count, started) == ((1, 1) if starts else (0, 0))


def test_a_reprimand_and_a_death_are_announced(
    app, http, register_licence, regulator, verifier, monitor
):
    from monitoring.sets import EVENT_URN_PREFIX, set_claims

    _, regulator_headers = regulator
    licence = register_licence()
    subscription_id, _ = monitor(verifier, licence)
    reprimand = http.post(
        f"/v1/licences/{licence.id}/reprimands",
        json={"reason": "戒告", "on": today().isoformat()},
        headers=regulator_headers,
    )
    assert reprimand.status_code == 201
    regulator_action(http, regulator_headers, licence.id, "deceased")

    events = _events(app, subscription_id=subscription_id)
    assert [(e.event_type, e.status) for e in events] == [
        (EventType.REPRIMAND_RECORDED, "active"),
        (EventType.STATUS_CHANGED, "deceased"),
    ]
    with app.app_context():
        reprimanded, died = (set_claims(app, e, "subject")["events"] for e in events)
    body = reprimanded[f"{EVENT_URN_PREFIX}reprimand-recorded"]
    assert (body["sanction"], body["status"]) == ("reprimand", "active")
    assert died[f"{EVENT_URN_PREFIX}status-changed"]["status"] == "deceased"
