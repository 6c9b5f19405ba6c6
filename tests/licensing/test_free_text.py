"""Names and reasons: NFC, no controls or bidi overrides, no My Number-like numbers, in the
API and the CSV import; details that say what to do (14.17, 14.8, 15.7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import db
from licensing import service
from licensing.models import Licence
from tests.fixtures.licensing import random_my_number
from tests.licensing.helpers import licence_body, register_via_api, stored_events

HOSTILE = [
    ("nul", "a\x00b"),
    ("ansi", "\x1b[2J\x1b[31mRED"),
    ("c1", "x\x85y"),
    ("bidi", "abc\u202egnp.exe"),
    ("my_number", "see {my_number}"),
    ("separated", "see {grouped}"),
    ("full_width", "see {full_width}"),
]


def _hostile(template: str) -> str:
    my_number = random_my_number()
    grouped = f"{my_number[:4]}-{my_number[4:8]}-{my_number[8:]}"
    full_width = my_number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return template.format(my_number=my_number, grouped=grouped, full_width=full_width)


@pytest.mark.parametrize("kind,template", HOSTILE)
def test_hostile_names_are_422_and_nothing_is_registered(app, http, regulator, kind, template):
    name = _hostile(template)
    response = http.post("/v1/licences", json=licence_body(name=name), headers=regulator[1])
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["code"] == "unprocessable" and problem["detail"].startswith("The name ")
    assert name not in response.get_data(as_text=True)
    with app.app_context():
        assert db.get_session().scalar(select(Licence.id)) is None


@pytest.mark.parametrize("kind,template", HOSTILE)
def test_hostile_reasons_are_422_and_the_licence_is_unchanged(app, http, regulator, kind, template):
    licence = register_via_api(http, regulator[1])
    reason = _hostile(template)
    response = http.post(
        f"/v1/licences/{licence['licence_id']}/revoke",
        json={"reason": reason},
        headers=regulator[1],
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["detail"].startswith("The reason ")
    events = http.get(f"/v1/licences/{licence['licence_id']}/events", headers=regulator[1])
    assert reason not in events.get_data(as_text=True)
    assert [e.to_status for e in stored_events(app, licence["licence_id"])] == ["active"]


def test_names_are_stored_nfc(app, http, regulator):
    licence = register_via_api(http, regulator[1], name="Jose\u0301 Garci\u0301a")
    assert licence["name"] == "José García"


def test_invalid_transition_names_the_current_status(http, regulator):
    licence = register_via_api(http, regulator[1])
    path = f"/v1/licences/{licence['licence_id']}"
    revoked = http.post(f"{path}/revoke", json={"reason": "x"}, headers=regulator[1])
    assert revoked.status_code == 200
    response = http.post(f"{path}/reinstate", json={"reason": "y"}, headers=regulator[1])
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["code"] == "invalid_transition"
    assert "The licence is revoked" in problem["detail"] and "suspended" in problem["detail"]


def test_an_unknown_profession_is_422_listing_the_valid_ones(http, regulator):
    response = http.post(
        "/v1/licences", json=licence_body(profession="astronaut"), headers=regulator[1]
    )
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["code"] == "unprocessable"
    for code in ("doctor", "nurse", "public_health_nurse"):
        assert code in problem["detail"]
    assert "astronaut" not in problem["detail"]


def test_events_name_the_client_not_its_id(http, regulator):
    client, headers = regulator
    licence = register_via_api(http, headers)
    until = (service.today() + timedelta(days=3)).isoformat()
    http.post(
        f"/v1/licences/{licence['licence_id']}/suspend",
        json={"reason": "inquiry", "until": until},
        headers=headers,
    )
    events = http.get(f"/v1/licences/{licence['licence_id']}/events", headers=headers)
    actors = [e["actor"] for e in events.get_json()["events"]]
    assert actors == [client.name, client.name]
    assert client.id not in events.get_data(as_text=True)


def test_console_actions_record_the_operator(app, register_licence):
    licence = register_licence()
    result = app.test_cli_runner().invoke(
        args=["licences", "revoke", licence.id, "--reason", "struck off", "--actor", "Dr. Ito"]
    )
    assert result.exit_code == 0, result.output
    assert stored_events(app, licence.id)[-1].actor == "Dr. Ito"
    hostile = app.test_cli_runner().invoke(
        args=["licences", "revoke", licence.id, "--reason", "x", "--actor", "a\x1b[2Jb"]
    )
    assert hostile.exit_code != 0 and "unprocessable" in hostile.output


def test_postgres_nul_in_a_reason_is_422_not_an_outage(http, regulator):
    licence = register_via_api(http, regulator[1])
    response = http.post(
        f"/v1/licences/{licence['licence_id']}/erase",
        json={"reason": "\x00"},
        headers=regulator[1],
    )
    assert response.status_code == 422
