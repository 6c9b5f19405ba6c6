"""Regulator API: registration, look-up, validation, conflicts, authorisation."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import text

from core import db
from licensing.service import today
from tests.fixtures.licensing import invalid_check_digit, random_my_number
from tests.licensing.helpers import licence_body, register_via_api

PROBLEM = "application/problem+json"
LICENCE_FIELDS = {
    "licence_id",
    "profession",
    "name",
    "registration_number",
    "registered_on",
    "status",
    "sanctions",
    "suspended_until",
    "created_at",
    "updated_at",
}


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["code"] == code
    return body


def test_register_returns_the_active_licence_without_any_holder_identifier(http, regulator):
    my_number = random_my_number()
    body = licence_body(my_number=my_number, profession="doctor", registration_number="000789")
    response = http.post("/v1/licences", json=body, headers=regulator[1])
    assert response.status_code == 201
    licence = response.get_json()
    assert set(licence) == LICENCE_FIELDS
    assert licence["status"] == "active"
    assert licence["suspended_until"] is None
    assert licence["profession"] == "doctor"
    assert licence["name"] == body["name"]
    assert licence["registration_number"] == "789"  # canonical: no leading zeros
    assert licence["registered_on"] == "2015-04-01"
    assert licence["licence_id"].startswith("lic_")
    assert my_number not in response.get_data(as_text=True)

    fetched = http.get(f"/v1/licences/{licence['licence_id']}", headers=regulator[1])
    assert fetched.status_code == 200
    assert fetched.get_json() == licence


def test_the_database_holds_the_agency_code_and_never_the_my_number(app, http, regulator):
    my_number = random_my_number()
    licence = register_via_api(http, regulator[1], my_number=my_number)
    with app.app_context():
        session = db.get_session()
        holder_code = session.execute(
            text("SELECT holder_code FROM licences WHERE id = :id"), {"id": licence["licence_id"]}
        ).scalar_one()
        assert holder_code and my_number not in holder_code
        for table in ("licences", "licence_events", "audit_entries", "audit_chain_head"):
            for row in session.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                assert my_number not in repr(tuple(row))
        audit_dump = repr([tuple(r) for r in session.execute(text("SELECT * FROM audit_entries"))])
        assert holder_code not in audit_dump and licence["name"] not in audit_dump


def test_get_unknown_licence_is_404(http, regulator):
    _problem(http.get("/v1/licences/lic_nope", headers=regulator[1]), 404, "not_found")
    _problem(http.get("/v1/licences/lic_nope/events", headers=regulator[1]), 404, "not_found")
    response = http.post("/v1/licences/lic_nope/revoke", json={"reason": "x"}, headers=regulator[1])
    _problem(response, 404, "not_found")


def test_duplicate_registration_number_in_a_profession_is_409_conflict(http, regulator):
    first = register_via_api(http, regulator[1], profession="dentist", registration_number="4242")
    again = http.post(
        "/v1/licences",
        json=licence_body(profession="dentist", registration_number="004242"),
        headers=regulator[1],
    )
    body = _problem(again, 409, "conflict")
    assert "4242" not in body["detail"]
    # The same number in another profession is a different register.
    other = register_via_api(http, regulator[1], profession="midwife", registration_number="4242")
    assert other["licence_id"] != first["licence_id"]


def test_one_current_licence_per_person_and_profession(http, regulator):
    my_number = random_my_number()
    first = register_via_api(http, regulator[1], my_number=my_number, profession="nurse")
    second = http.post(
        "/v1/licences",
        json=licence_body(my_number=my_number, profession="nurse"),
        headers=regulator[1],
    )
    _problem(second, 409, "conflict")
    # Suspended still counts as current.
    http.post(
        f"/v1/licences/{first['licence_id']}/suspend",
        json={"reason": "inquiry", "until": (today() + timedelta(days=30)).isoformat()},
        headers=regulator[1],
    )
    again = http.post(
        "/v1/licences",
        json=licence_body(my_number=my_number, profession="nurse"),
        headers=regulator[1],
    )
    _problem(again, 409, "conflict")
    # Another profession for the same person is fine.
    register_via_api(http, regulator[1], my_number=my_number, profession="midwife")
    # After revocation, a new licence (new number) may be registered.
    revoke = http.post(
        f"/v1/licences/{first['licence_id']}/revoke",
        json={"reason": "misconduct"},
        headers=regulator[1],
    )
    assert revoke.status_code == 200
    register_via_api(http, regulator[1], my_number=my_number, profession="nurse")


@pytest.mark.parametrize(
    "bad",
    [
        "12345678901",  # 11 digits
        "1234567890123",  # 13 digits
        "abcdefghijkl",
        "１２３４５６７８９０１８",  # full-width digits
        " 123456789018",
        "",
        "wrong-check-digit",
    ],
)
def test_invalid_my_number_is_422_and_never_echoed_or_logged(http, regulator, caplog, capfd, bad):
    if bad == "wrong-check-digit":
        bad = invalid_check_digit(random_my_number())
    caplog.set_level(logging.DEBUG)
    response = http.post("/v1/licences", json=licence_body(my_number=bad), headers=regulator[1])
    body = _problem(response, 422, "invalid_my_number")
    assert body["status"] == 422
    if bad.strip():
        assert bad.strip() not in response.get_data(as_text=True)
        assert bad.strip() not in caplog.text
        captured = capfd.readouterr()
        assert bad.strip() not in captured.out + captured.err


def test_a_valid_my_number_never_reaches_the_logs(http, regulator, caplog, capfd):
    my_number = random_my_number()
    caplog.set_level(logging.DEBUG)
    register_via_api(http, regulator[1], my_number=my_number)
    # A conflict and a validation error with the same number: still nowhere.
    http.post("/v1/licences", json=licence_body(my_number=my_number), headers=regulator[1])
    http.post(
        "/v1/licences",
        json=licence_body(my_number=my_number, registered_on="not a date"),
        headers=regulator[1],
    )
    captured = capfd.readouterr()
    assert my_number not in caplog.text
    assert my_number not in captured.out + captured.err


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"registration_number": "123456789"}, "registration_number"),
        ({"registration_number": "12a"}, "registration_number"),
        ({"registration_number": ""}, "registration_number"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"registered_on": "2015-13-01"}, "registered_on"),
        ({"registered_on": "01/04/2015"}, "registered_on"),
        ({"extra": "field"}, "extra"),
        ({"my_number": 123456789018}, "my_number"),
    ],
)
def test_malformed_fields_are_400_naming_the_field(http, regulator, overrides, field):
    body = _problem(
        http.post("/v1/licences", json=licence_body(**overrides), headers=regulator[1]),
        400,
        "invalid_request",
    )
    assert field in body["fields"]


@pytest.mark.parametrize("missing", ["profession", "my_number", "name", "registration_number"])
def test_missing_fields_are_400(http, regulator, missing):
    body = licence_body()
    del body[missing]
    problem = _problem(
        http.post("/v1/licences", json=body, headers=regulator[1]), 400, "invalid_request"
    )
    assert problem["fields"] == [missing]


@pytest.mark.parametrize(
    "profession,number,ok",
    [
        ("doctor", "1234567", True),
        ("doctor", "12345678", False),
        ("nurse", "12345678", True),
        ("dentist", "123456", True),
        ("dentist", "1234567", False),
        ("pharmacist", "0001234567", None),  # more than 8 digits: malformed
        ("public_health_nurse", "000000", None),  # zero is not a registration number
    ],
)
def test_each_profession_has_its_own_registration_number_format(
    http, regulator, profession, number, ok
):
    response = http.post(
        "/v1/licences",
        json=licence_body(profession=profession, registration_number=number),
        headers=regulator[1],
    )
    if ok:
        assert response.status_code == 201
    elif ok is None:  # the schema's syntax: 1 to 8 digits, not all zeros
        assert "registration_number" in _problem(response, 400, "invalid_request")["fields"]
    else:  # well-formed, but not in this profession's format
        _problem(response, 422, "unprocessable")


def test_registration_date_in_the_future_is_422(http, regulator):
    tomorrow = (today() + timedelta(days=1)).isoformat()
    response = http.post(
        "/v1/licences", json=licence_body(registered_on=tomorrow), headers=regulator[1]
    )
    _problem(response, 422, "unprocessable")
    register_via_api(http, regulator[1], registered_on=today().isoformat())


def test_names_are_stored_trimmed_and_in_full_unicode(http, regulator):
    licence = register_via_api(http, regulator[1], name="  髙橋 﨑子  ")
    assert licence["name"] == "髙橋 﨑子"


# --- authorisation ---------------------------------------------------------------------

ENDPOINTS = [
    ("post", "/v1/licences", "register"),
    ("get", "/v1/licences", None),
    ("get", "/v1/licences?registration_number=1&profession=doctor", None),
    ("get", "/v1/licences/{id}", None),
    ("get", "/v1/licences/{id}/events", None),
    ("post", "/v1/licences/{id}/suspend", "suspend"),
    ("post", "/v1/licences/{id}/reinstate", "reason"),
    ("post", "/v1/licences/{id}/revoke", "reason"),
    ("post", "/v1/licences/{id}/erase", "reason"),
]


def _request(http, method, path, body_kind, licence_id, headers):
    bodies = {
        "register": licence_body(),
        "suspend": {"reason": "x", "until": (today() + timedelta(days=3)).isoformat()},
        "reason": {"reason": "x"},
        None: None,
    }
    return getattr(http, method)(
        path.format(id=licence_id), json=bodies[body_kind], headers=headers
    )


@pytest.mark.parametrize(
    "method,path,body_kind", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
@pytest.mark.parametrize("caller", [None, "bad-token", "verifier", "card_authority"])
def test_every_endpoint_is_for_regulators_only(
    app, http, make_client, register_licence, method, path, body_kind, caller
):
    licence = register_licence()
    if caller is None:
        headers = {}
    elif caller == "bad-token":
        headers = {"Authorization": "Bearer lvs_not-a-token"}
    else:
        headers = make_client(caller)[1]
    response = _request(http, method, path, body_kind, licence.id, headers)
    if caller in (None, "bad-token"):
        _problem(response, 401, "unauthenticated")
    else:
        _problem(response, 403, "forbidden")
    text_body = response.get_data(as_text=True)
    assert licence.name not in text_body and licence.registration_number not in text_body
    # Nothing changed.
    with app.app_context():
        from licensing.service import get_licence

        assert get_licence(db.get_session(), licence.id).status == "active"


@pytest.mark.parametrize(
    "method,path,body_kind", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS]
)
def test_every_endpoint_works_for_a_regulator(
    http, regulator, register_licence, method, path, body_kind
):
    licence = register_licence()
    if path.endswith("/reinstate"):
        suspended = _request(
            http, "post", "/v1/licences/{id}/suspend", "suspend", licence.id, regulator[1]
        )
        assert suspended.status_code == 200
    response = _request(http, method, path, body_kind, licence.id, regulator[1])
    assert response.status_code in (200, 201), response.get_json()
    assert "holder_code" not in response.get_data(as_text=True)


def test_openapi_documents_the_regulator_endpoints_without_holder_fields(http):
    spec = http.get("/openapi.json").get_json()
    for path in (
        "/v1/licences",
        "/v1/licences/{licence_id}",
        "/v1/licences/{licence_id}/events",
        "/v1/licences/{licence_id}/suspend",
        "/v1/licences/{licence_id}/reinstate",
        "/v1/licences/{licence_id}/revoke",
        "/v1/licences/{licence_id}/erase",
        "/v1/licences/{licence_id}/deceased",
        "/v1/licences/{licence_id}/reprimands",
    ):
        assert path in spec["paths"]
    out = spec["components"]["schemas"]["LicenceRecordOut"]["properties"]
    assert "holder_code" not in out and "my_number" not in out
    assert set(out) == LICENCE_FIELDS


def test_a_cursor_past_every_row_is_an_empty_last_page(http, regulator, register_licence):
    _, headers = regulator
    register_licence()
    response = http.get("/v1/licences?cursor=006639712648782773", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["licences"] == [] and response.get_json()["next_cursor"] is None
