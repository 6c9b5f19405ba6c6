"""Status lifecycle: every transition, legal and illegal; suspensions that end by
themselves; erasure; the event history."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from core import db
from core.audit import console_operator
from licensing import service
from licensing.errors import InvalidTransition
from tests.fixtures.licensing import random_my_number
from tests.licensing.helpers import audit_entries, stored_events

# A fixed "now": 2030-06-10 12:00 in Japan.
NOW = datetime(2030, 6, 10, 3, 0, tzinfo=UTC)
TODAY = date(2030, 6, 10)
STATES = ["active", "suspended", "lapsed", "revoked", "deceased", "erased"]
ACTIONS = ["suspend", "reinstate", "revoke", "deceased", "erase"]
# (effective state, action) -> resulting status, or None for 409 invalid_transition.
EXPECTED = {
    ("active", "suspend"): "suspended",
    ("active", "reinstate"): None,
    ("active", "revoke"): "revoked",
    ("active", "erase"): "erased",
    ("suspended", "suspend"): "suspended",  # a new end date
    ("suspended", "reinstate"): "active",
    ("suspended", "revoke"): "revoked",
    ("suspended", "erase"): "erased",
    # "lapsed": stored as suspended, but its last day has passed: it is active.
    ("lapsed", "suspend"): "suspended",
    ("lapsed", "reinstate"): None,
    ("lapsed", "revoke"): "revoked",
    ("lapsed", "erase"): "erased",
    ("revoked", "suspend"): None,
    ("revoked", "reinstate"): None,
    ("revoked", "revoke"): None,
    ("revoked", "erase"): "erased",
    ("erased", "suspend"): None,
    ("erased", "reinstate"): None,
    ("erased", "revoke"): None,
    ("erased", "erase"): None,
    ("active", "deceased"): "deceased",
    ("suspended", "deceased"): "deceased",
    ("lapsed", "deceased"): "deceased",
    ("revoked", "deceased"): None,
    ("erased", "deceased"): None,
    # Deceased is final: nothing but erasure of the personal data follows.
    ("deceased", "suspend"): None,
    ("deceased", "reinstate"): None,
    ("deceased", "revoke"): None,
    ("deceased", "deceased"): None,
    ("deceased", "erase"): "erased",
}


@pytest.fixture
def at_now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _body(action: str) -> dict:
    body = {"reason": f"{action} for the test"}
    if action == "suspend":
        body["until"] = (TODAY + timedelta(days=30)).isoformat()
    return body


def _licence_in_state(http, headers, register_licence, traveller, state: str) -> str:
    """A licence in ``state`` as of NOW (the clock ends at NOW)."""
    if state == "lapsed":
        traveller.move_to(NOW - timedelta(days=20))
        licence_id = register_licence().id
        response = http.post(
            f"/v1/licences/{licence_id}/suspend",
            json={"reason": "short", "until": (TODAY - timedelta(days=10)).isoformat()},
            headers=headers,
        )
        assert response.status_code == 200
        traveller.move_to(NOW)
        return licence_id
    licence_id = register_licence().id
    steps = {
        "active": [],
        "suspended": ["suspend"],
        "revoked": ["revoke"],
        "deceased": ["deceased"],
        "erased": ["erase"],
    }[state]
    for action in steps:
        response = http.post(
            f"/v1/licences/{licence_id}/{action}", json=_body(action), headers=headers
        )
        assert response.status_code == 200
    return licence_id


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", STATES)
def test_every_transition(app, http, regulator, register_licence, at_now, state, action):
    licence_id = _licence_in_state(http, regulator[1], register_licence, at_now, state)
    before = http.get(f"/v1/licences/{licence_id}", headers=regulator[1]).get_json()
    events_before = stored_events(app, licence_id)
    audit_before = len(audit_entries(app))

    response = http.post(
        f"/v1/licences/{licence_id}/{action}", json=_body(action), headers=regulator[1]
    )
    expected = EXPECTED[(state, action)]
    if expected is None:
        assert response.status_code == 409
        assert response.get_json()["code"] == "invalid_transition"
        current = "active" if state == "lapsed" else state
        assert f"The licence is {current};" in response.get_json()["detail"]
        # Nothing changed, nothing recorded.
        assert http.get(f"/v1/licences/{licence_id}", headers=regulator[1]).get_json() == before
        assert len(stored_events(app, licence_id)) == len(events_before)
        assert len(audit_entries(app)) == audit_before
        return

    assert response.status_code == 200, response.get_json()
    licence = response.get_json()
    assert licence["status"] == expected
    assert licence["licence_id"] == licence_id
    if expected == "suspended":
        assert licence["suspended_until"] == (TODAY + timedelta(days=30)).isoformat()
    else:
        assert licence["suspended_until"] is None
    if expected == "erased":
        assert licence["name"] is None and licence["registration_number"] is None

    events = stored_events(app, licence_id)
    effective_before = "active" if state == "lapsed" else state
    last = events[-1]
    assert (last.from_status, last.to_status) == (effective_before, expected)
    assert last.reason == f"{action} for the test"
    assert last.actor == regulator[0].name
    assert last.at == NOW
    # The stored history chains: each event starts where the previous one ended.
    for previous, current in zip(events, events[1:], strict=False):
        assert current.from_status == previous.to_status
    entry = audit_entries(app)[-1]
    assert entry.action == f"licence.{action}"
    assert entry.target == licence_id
    assert entry.actor == regulator[0].name
    assert entry.details["from"] == effective_before and entry.details["to"] == expected
    assert entry.free_text["reason"] == f"{action} for the test"


def test_a_suspension_ends_by_itself_after_its_last_day(app, http, regulator, register_licence):
    headers = regulator[1]
    my_number = random_my_number()
    with time_machine.travel(datetime(2030, 1, 5, 9, 0, tzinfo=UTC), tick=False) as traveller:
        licence = register_licence(my_number=my_number, profession="pharmacist")
        holder_code = licence.holder_code
        response = http.post(
            f"/v1/licences/{licence.id}/suspend",
            json={"reason": "three months", "until": "2030-03-31"},
            headers=headers,
        )
        assert response.get_json()["status"] == "suspended"

        def seen():
            with app.app_context():
                return service.licence_for_holder(db.get_session(), holder_code, "pharmacist")

        # The last day, late evening in Japan (14:59 UTC = 23:59 JST): still suspended.
        traveller.move_to(datetime(2030, 3, 31, 14, 59, tzinfo=UTC))
        assert seen().status == "suspended"
        assert seen().suspended_until == date(2030, 3, 31)
        got = http.get(f"/v1/licences/{licence.id}", headers=headers).get_json()
        assert (got["status"], got["suspended_until"]) == ("suspended", "2030-03-31")
        listed = http.get("/v1/licences?status=suspended", headers=headers).get_json()
        assert [item["licence_id"] for item in listed["licences"]] == [licence.id]

        # Midnight in Japan: active again, with no job and no write.
        traveller.move_to(datetime(2030, 3, 31, 15, 0, tzinfo=UTC))
        assert seen().status == "active"
        assert seen().suspended_until is None
        got = http.get(f"/v1/licences/{licence.id}", headers=headers).get_json()
        assert (got["status"], got["suspended_until"]) == ("active", None)
        assert (
            http.get("/v1/licences?status=suspended", headers=headers).get_json()["licences"] == []
        )
        active = http.get("/v1/licences?status=active", headers=headers).get_json()
        assert licence.id in [item["licence_id"] for item in active["licences"]]
        events = http.get(f"/v1/licences/{licence.id}/events", headers=headers).get_json()
        assert events["events"][-1] == {
            "from_status": "suspended",
            "to_status": "active",
            "reason": "suspension ended",
            "until": None,
            "actor": None,
            "at": "2030-03-31T15:00:00+00:00",
        }
        # Reinstating what is already active is not a transition.
        response = http.post(
            f"/v1/licences/{licence.id}/reinstate", json={"reason": "x"}, headers=headers
        )
        assert response.status_code == 409

        # The next change writes the implicit end into the stored history first.
        traveller.move_to(datetime(2030, 5, 1, 0, 0, tzinfo=UTC))
        response = http.post(
            f"/v1/licences/{licence.id}/revoke", json={"reason": "later finding"}, headers=headers
        )
        assert response.get_json()["status"] == "revoked"
        stored = stored_events(app, licence.id)
        assert [(e.from_status, e.to_status, e.actor) for e in stored] == [
            (None, "active", console_operator()),
            ("active", "suspended", regulator[0].name),
            ("suspended", "active", None),
            ("active", "revoked", regulator[0].name),
        ]
        assert stored[2].at == datetime(2030, 3, 31, 15, 0, tzinfo=UTC)
        assert seen().status == "revoked"


def test_a_suspension_can_be_extended_or_shortened(app, http, regulator, register_licence, at_now):
    licence = register_licence()
    for until in ("2030-07-01", "2030-12-31", "2030-06-10"):
        response = http.post(
            f"/v1/licences/{licence.id}/suspend",
            json={"reason": "adjusted", "until": until},
            headers=regulator[1],
        )
        assert response.status_code == 200
        assert response.get_json()["suspended_until"] == until
    assert [e.until for e in stored_events(app, licence.id)][1:] == [
        date(2030, 7, 1),
        date(2030, 12, 31),
        date(2030, 6, 10),
    ]


def test_a_suspension_must_end_today_or_later(http, regulator, register_licence, at_now):
    licence = register_licence()
    response = http.post(
        f"/v1/licences/{licence.id}/suspend",
        json={"reason": "typo", "until": "2030-06-09"},
        headers=regulator[1],
    )
    assert response.status_code == 422
    assert response.get_json()["code"] == "unprocessable"


@pytest.mark.parametrize("action", ACTIONS)
def test_a_reason_is_required(http, regulator, register_licence, action):
    licence = register_licence()
    body = _body(action)
    body["reason"] = "   "
    response = http.post(f"/v1/licences/{licence.id}/{action}", json=body, headers=regulator[1])
    assert response.status_code == 400
    assert response.get_json()["fields"] == ["reason"]
    del body["reason"]
    response = http.post(f"/v1/licences/{licence.id}/{action}", json=body, headers=regulator[1])
    assert response.status_code == 400
    assert response.get_json()["fields"] == ["reason"]


def test_erasure_removes_personal_data_keeps_history_and_frees_the_number(
    app, http, regulator, register_licence
):
    my_number = random_my_number()
    licence = register_licence(my_number=my_number, profession="midwife", registration_number="777")
    holder_code = licence.holder_code
    response = http.post(
        f"/v1/licences/{licence.id}/erase",
        json={"reason": "registered in error"},
        headers=regulator[1],
    )
    body = response.get_json()
    assert body["status"] == "erased"
    assert body["name"] is None and body["registration_number"] is None
    with app.app_context():
        session = db.get_session()
        assert service.licence_for_holder(session, holder_code, "midwife") is None
        assert service.licences_for_holder(session, holder_code) == []
        stored = service.get_licence(session, licence.id)
        assert stored.holder_code is None and stored.name is None
    events = http.get(f"/v1/licences/{licence.id}/events", headers=regulator[1]).get_json()
    assert [e["to_status"] for e in events["events"]] == ["active", "erased"]
    # The number and the person are free for a correct registration.
    again = register_licence(my_number=my_number, profession="midwife", registration_number="777")
    assert again.id != licence.id


def test_service_functions_raise_invalid_transition(app, register_licence):
    licence = register_licence()
    with app.app_context():
        session = db.get_session()
        service.revoke_licence(session, None, licence.id, reason="struck off")
        with pytest.raises(InvalidTransition):
            service.reinstate_licence(session, None, licence.id, reason="appeal")
        assert service.get_licence(session, licence.id).status == "revoked"


def test_changes_are_visible_to_the_very_next_lookup(app, http, regulator, register_licence):
    licence = register_licence(profession="dentist")
    holder_code = licence.holder_code
    with app.app_context():
        session = db.get_session()
        assert service.licence_for_holder(session, holder_code, "dentist").status == "active"
        # A change made through another session (the API) ...
        response = http.post(
            f"/v1/licences/{licence.id}/revoke", json={"reason": "x"}, headers=regulator[1]
        )
        assert response.status_code == 200
        session.rollback()  # a new request: a new transaction
        assert service.licence_for_holder(session, holder_code, "dentist").status == "revoked"


def test_parallel_changes_to_one_licence_keep_the_history_consistent(app, register_licence):
    licence = register_licence()
    actions = ["suspend", "revoke", "suspend", "reinstate", "erase", "suspend"] * 2
    outcomes: list[str] = []
    barrier = threading.Barrier(len(actions))

    def worker(action: str) -> None:
        with app.app_context():
            session = db.get_session()
            kwargs = {"reason": f"parallel {action}"}
            if action == "suspend":
                kwargs["until"] = service.today() + timedelta(days=5)
            barrier.wait()
            try:
                service.TRANSITIONS[action](session, "parallel", licence.id, **kwargs)
                outcomes.append("ok")
            except InvalidTransition:
                outcomes.append("invalid")
            except Exception as error:  # noqa: BLE001
                outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=worker, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(outcomes) <= {"ok", "invalid", "ConcurrentChange"}, outcomes
    events = stored_events(app, licence.id)
    assert len(events) == 1 + outcomes.count("ok")
    for previous, current in zip(events, events[1:], strict=False):
        assert current.from_status == previous.to_status
    with app.app_context():
        final = service.get_licence(db.get_session(), licence.id)
        assert final.status.value == events[-1].to_status
        from licensing.audit import verify_chain

        assert verify_chain(db.get_session()) is None
    assert len(audit_entries(app)) == 1 + outcomes.count("ok")
