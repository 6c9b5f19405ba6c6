"""Rosters for HR's reconciliation (item 4) and the holder's view of monitoring (item 1)."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from core import db
from licensing.service import today
from monitoring.models import EventType, MonitoringEvent
from tests.fixtures.holder import bearer
from tests.fixtures.monitoring import regulator_action
from tests.fixtures.verification import problem


def fake_subject() -> str:
    return "v1." + secrets.token_urlsafe(32)[:43]


@pytest.fixture
def roster(http, register_licence, regulator, verifier, monitor):
    """Three licences monitored by ``verifier``: active, suspended, revoked."""
    _, regulator_headers = regulator
    subjects = {}
    for status in ("active", "suspended", "revoked"):
        licence = register_licence()
        _, subjects[status] = monitor(verifier, licence)
        if status == "suspended":
            until = (today() + timedelta(days=5)).isoformat()
            regulator_action(http, regulator_headers, licence.id, "suspend", until=until)
        elif status == "revoked":
            regulator_action(http, regulator_headers, licence.id, "revoke")
    return subjects


def test_subjects_are_listed_with_current_status_and_paginated(http, verifier, roster):
    _, headers = verifier
    seen = {}
    cursor = None
    pages = 0
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = http.get(f"/v1/monitoring/subjects?{query}", headers=headers).get_json()
        pages += 1
        seen.update({entry["subject"]: entry for entry in body["subjects"]})
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 2
    assert {s: e["status"] for s, e in seen.items()} == {v: k for k, v in roster.items()}
    assert seen[roster["suspended"]]["suspended_until"] is not None
    assert seen[roster["active"]]["suspended_until"] is None


def test_roster_status_answers_monitored_subjects_only(http, verifier, other_verifier, roster):
    _, headers = verifier
    _, other_headers = other_verifier
    stranger = fake_subject()
    asked = [roster["active"], roster["revoked"], stranger, roster["active"]]
    body = http.post("/v1/monitoring/status", json={"subjects": asked}, headers=headers).get_json()
    assert {(s["subject"], s["status"]) for s in body["statuses"]} == {
        (roster["active"], "active"),
        (roster["revoked"], "revoked"),
    }
    assert body["not_monitored"] == [stranger]
    # Another verifier learns nothing about these subjects, nor from its own listing.
    other = http.post("/v1/monitoring/status", json={"subjects": asked}, headers=other_headers)
    assert other.get_json()["statuses"] == []
    assert http.get("/v1/monitoring/subjects", headers=other_headers).get_json()["subjects"] == []


def test_roster_takes_ten_thousand_subjects_and_refuses_more(http, verifier, roster):
    _, headers = verifier
    subjects = [fake_subject() for _ in range(9_999)] + [roster["suspended"]]
    response = http.post("/v1/monitoring/status", json={"subjects": subjects}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [s["subject"] for s in response.get_json()["statuses"]] == [roster["suspended"]]
    body = problem(
        http.post("/v1/monitoring/status", json={"subjects": subjects + ["x"]}, headers=headers),
        400,
        "invalid_request",
    )
    assert "10,000" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"subjects": "v1.abc"},
        {"subjects": [1, 2]},
        {"subjects": [""]},
        {"subjects": ["x" * 65]},
        {"subjects": [None]},
        {},
        {"subjects": [[[[["deep"]]]]]},
    ],
)
def test_roster_refuses_malformed_bodies(http, verifier, body):
    _, headers = verifier
    problem(http.post("/v1/monitoring/status", json=body, headers=headers), 400, "invalid_request")


def test_roster_body_over_one_mebibyte_is_413(http, verifier):
    _, headers = verifier
    big = {"subjects": ["x" * 60] * 20_000}
    problem(http.post("/v1/monitoring/status", json=big, headers=headers), 413, "payload_too_large")


@pytest.mark.parametrize("cursor", ["lic_0", "mon_" + "g" * 24, "mon_1", "%00", "x" * 65])
def test_subjects_refuse_bad_cursors(http, verifier, cursor):
    _, headers = verifier
    response = http.get(f"/v1/monitoring/subjects?cursor={cursor}", headers=headers)
    problem(response, 400, "invalid_request")


def test_rosters_need_a_verifier(http, make_client):
    _, regulator_headers = make_client("regulator")
    problem(http.get("/v1/monitoring/subjects", headers=regulator_headers), 403, "forbidden")
    problem(http.post("/v1/monitoring/status", json={"subjects": []}), 401, "unauthenticated")


# --- the holder's side -----------------------------------------------------------------


def test_holder_sees_and_ends_monitoring_and_the_verifier_is_told(
    app, http, licensed_holder, sign_in, verifier, other_verifier, monitor, verify_set
):
    client, headers = verifier
    holder = licensed_holder()
    licence = holder.licences[0]
    subscription_id, subject = monitor(verifier, licence)
    other_id, _ = monitor(other_verifier, licence)
    token = sign_in(holder)

    listing = http.get("/v1/holder/monitoring", headers=bearer(token)).get_json()["monitoring"]
    assert {(m["id"], m["verifier"]) for m in listing} == {
        (subscription_id, client.name),
        (other_id, "Kameda General Hospital HR"),
    }
    response = http.delete(f"/v1/holder/monitoring/{subscription_id}", headers=bearer(token))
    assert response.status_code == 204
    remaining = http.get("/v1/holder/monitoring", headers=bearer(token)).get_json()["monitoring"]
    assert [m["id"] for m in remaining] == [other_id]
    problem(
        http.delete(f"/v1/holder/monitoring/{subscription_id}", headers=bearer(token)),
        404,
        "not_found",
    )

    events = http.get("/v1/monitoring/events", headers=headers).get_json()["events"]
    _, claims = verify_set(events[-1])
    assert claims["sub"] == subject
    assert claims["events"] == {
        "urn:licence-verification:event:monitoring-ended": {
            "profession": "doctor",
            "effective_at": claims["events"]["urn:licence-verification:event:monitoring-ended"][
                "effective_at"
            ],
        }
    }
    log = http.get("/v1/holder/access-log", headers=bearer(token)).get_json()["entries"]
    outcomes = [(e["verifier"], e["outcome"]) for e in log]
    assert (client.name, "monitoring_started") in outcomes
    assert (client.name, "monitoring_ended") in outcomes
    assert http.get("/v1/monitoring/subjects", headers=headers).get_json()["subjects"] == []


def test_a_holder_cannot_end_another_holders_monitoring(
    app, http, licensed_holder, sign_in, verifier, monitor
):
    victim = licensed_holder()
    subscription_id, _ = monitor(verifier, victim.licences[0])
    intruder = sign_in(licensed_holder())
    for target in (subscription_id, "mon_" + "0" * 24, "anything", "mon_%00"):
        response = http.delete(f"/v1/holder/monitoring/{target}", headers=bearer(intruder))
        problem(response, 404, "not_found")
    with app.app_context():
        ended = db.get_session().scalars(
            select(MonitoringEvent).where(MonitoringEvent.event_type == EventType.MONITORING_ENDED)
        )
        assert list(ended) == []


def test_holder_monitoring_refuses_client_tokens(http, verifier):
    _, headers = verifier
    problem(http.get("/v1/holder/monitoring", headers=headers), 401, "unauthenticated")
    problem(http.delete("/v1/holder/monitoring/mon_x", headers=headers), 401, "unauthenticated")
