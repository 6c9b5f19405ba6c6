"""Statuses (v2): deceased (terminal) and recorded reprimands (the status stays), by API
and console, with their events, audit entries, scopes and hostile input."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import db
from licensing import reconcile, service
from tests.licensing.helpers import audit_entries, register_via_api, stored_events


def _cli(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def _reprimand(http, headers, licence_id, **body):
    body = {"reason": "戒告: 記録不備", "on": service.today().isoformat(), **body}
    return http.post(f"/v1/licences/{licence_id}/reprimands", json=body, headers=headers)


def test_a_reprimand_is_recorded_and_leaves_the_licence_active(app, http, regulator):
    _, headers = regulator
    licence = register_via_api(http, headers)
    day = service.today()

    response = _reprimand(http, headers, licence["licence_id"], on=day.isoformat())

    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "active"
    assert [(s["kind"], s["on"], s["reason"]) for s in body["sanctions"]] == [
        ("reprimand", day.isoformat(), "戒告: 記録不備")
    ]
    shown = http.get(f"/v1/licences/{licence['licence_id']}", headers=headers).get_json()
    assert shown["sanctions"] == body["sanctions"]
    last = stored_events(app, licence["licence_id"])[-1]
    assert (last.from_status, last.to_status) == ("active", "active")
    entry = audit_entries(app)[-1]
    assert entry.action == "licence.reprimand" and entry.target == licence["licence_id"]
    assert entry.details["sanction"] == "reprimand" and entry.details["on"] == day.isoformat()
    assert entry.free_text["reason"] == "戒告: 記録不備"
    with app.app_context():
        assert list(reconcile.reconcile(db.get_session())) == []


def test_a_reprimand_keeps_a_suspension_and_its_end(http, regulator):
    _, headers = regulator
    licence = register_via_api(http, headers)
    until = (service.today() + timedelta(days=5)).isoformat()
    suspended = http.post(
        f"/v1/licences/{licence['licence_id']}/suspend",
        json={"reason": "x", "until": until},
        headers=headers,
    )
    assert suspended.status_code == 200
    body = _reprimand(http, headers, licence["licence_id"]).get_json()
    assert (body["status"], body["suspended_until"]) == ("suspended", until)


@pytest.mark.parametrize("terminal", ["revoke", "deceased"])
def test_no_reprimand_after_a_terminal_status(http, regulator, terminal):
    _, headers = regulator
    licence = register_via_api(http, headers)
    http.post(
        f"/v1/licences/{licence['licence_id']}/{terminal}", json={"reason": "x"}, headers=headers
    )
    response = _reprimand(http, headers, licence["licence_id"])
    assert response.status_code == 409 and response.get_json()["code"] == "invalid_transition"
    assert "The licence is " in response.get_json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"on": "2999-01-01"}, 422, "unprocessable"),
        ({"on": "not a date"}, 400, "invalid_request"),
        ({"on": None}, 400, "invalid_request"),
        ({"reason": "a\u202eb"}, 422, "unprocessable"),
        ({"reason": "a\x00b"}, 422, "unprocessable"),
        ({"reason": "番号 1234 5678 9018"}, 422, "unprocessable"),
        ({"reason": "x" * 501}, 400, "invalid_request"),
        ({"reason": "   "}, 400, "invalid_request"),
        ({"reason": 10**30}, 400, "invalid_request"),
    ],
)
def test_hostile_reprimands_are_refused_and_record_nothing(
    app, http, regulator, body, status, code
):
    _, headers = regulator
    licence = register_via_api(http, headers)
    before = len(stored_events(app, licence["licence_id"]))
    response = _reprimand(http, headers, licence["licence_id"], **body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["code"] == code
    assert len(stored_events(app, licence["licence_id"])) == before


def test_deep_json_and_unknown_licences_are_refused(http, regulator):
    _, headers = regulator
    deep: dict = {}
    for _ in range(100):
        deep = {"x": deep}
    licence = register_via_api(http, headers)
    response = http.post(
        f"/v1/licences/{licence['licence_id']}/deceased",
        json={"reason": "x", "deep": deep},
        headers=headers,
    )
    assert response.status_code == 400
    missing = http.post("/v1/licences/lic_nope/deceased", json={"reason": "x"}, headers=headers)
    assert missing.status_code == 404
    missing = _reprimand(http, headers, "lic_nope")
    assert missing.status_code == 404


def test_verifiers_and_other_professions_may_not_act(app, http, regulator, make_client):
    _, headers = regulator
    doctor = register_via_api(http, headers, profession="doctor")
    _, verifier_headers = make_client("verifier")
    for path, body in (
        ("deceased", {"reason": "x"}),
        ("reprimands", {"reason": "x", "on": service.today().isoformat()}),
    ):
        url = f"/v1/licences/{doctor['licence_id']}/{path}"
        assert http.post(url, json=body, headers=verifier_headers).status_code == 403
    result = _cli(
        app, "clients", "create", "--name", "Nursing board", "--role", "regulator",
        "--profession", "nurse",
    )  # fmt: skip
    nurse_headers = {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}
    for path, body in (
        ("deceased", {"reason": "x"}),
        ("reprimands", {"reason": "x", "on": service.today().isoformat()}),
    ):
        response = http.post(
            f"/v1/licences/{doctor['licence_id']}/{path}", json=body, headers=nurse_headers
        )
        assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
    shown = http.get(f"/v1/licences/{doctor['licence_id']}", headers=headers).get_json()
    assert (shown["status"], shown["sanctions"]) == ("active", [])


def test_the_console_records_deceased_and_reprimands(app, http, regulator):
    licence = register_via_api(http, regulator[1])
    licence_id = licence["licence_id"]
    day = service.today().isoformat()

    result = _cli(app, "licences", "reprimand", licence_id, "--reason", "戒告", "--on", day,
                  "--actor", "山田")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"sanction:            reprimand on {day}" in result.output
    assert "status:              active" in result.output

    refused = _cli(app, "licences", "reprimand", licence_id, "--reason", "a\x1bb", "--on", day)
    assert refused.exit_code != 0

    result = _cli(app, "licences", "deceased", licence_id, "--reason", "死亡届", "--actor", "山田")
    assert result.exit_code == 0, result.output
    assert "status:              deceased" in result.output
    again = _cli(app, "licences", "deceased", licence_id, "--reason", "again")
    assert again.exit_code != 0 and "deceased" in again.output
    actions = [e.action for e in audit_entries(app) if e.target == licence_id]
    assert actions[-2:] == ["licence.reprimand", "licence.deceased"]
    assert [e.actor for e in stored_events(app, licence_id)][-2:] == ["山田", "山田"]
