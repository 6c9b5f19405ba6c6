"""Search by registration number, paginated listing with filters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from licensing.service import today


def _ids(response) -> list[str]:
    return [item["licence_id"] for item in response.get_json()["licences"]]


@pytest.fixture
def register(register_licence):
    def _make(**kwargs):
        return register_licence(**kwargs).id

    return _make


def test_search_by_registration_number_and_profession(http, regulator, register):
    doctor = register(profession="doctor", registration_number="31415")
    nurse = register(profession="nurse", registration_number="31415")
    register(profession="doctor", registration_number="27182")
    headers = regulator[1]

    both = http.get("/v1/licences?registration_number=31415", headers=headers)
    assert sorted(_ids(both)) == sorted([doctor, nurse])
    one = http.get("/v1/licences?registration_number=031415&profession=doctor", headers=headers)
    assert _ids(one) == [doctor]
    item = one.get_json()["licences"][0]
    assert item["registration_number"] == "31415"
    assert "holder_code" not in item
    none = http.get("/v1/licences?registration_number=99&profession=doctor", headers=headers)
    assert none.status_code == 200
    assert none.get_json() == {"licences": [], "next_cursor": None}


def test_pages_follow_the_cursor_in_register_order(http, regulator, register):
    created = [register(profession="midwife") for _ in range(7)]
    headers = regulator[1]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/v1/licences?profession=midwife&limit=3"
        if cursor:
            url += f"&cursor={cursor}"
        body = http.get(url, headers=headers).get_json()
        seen += [item["licence_id"] for item in body["licences"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == created
    assert pages == 3


def test_filters_by_effective_status_and_profession(http, regulator, register, register_licence):
    headers = regulator[1]
    active = register(profession="doctor")
    suspended = register(profession="doctor")
    revoked = register(profession="doctor")
    nurse = register(profession="nurse")
    until = (today() + timedelta(days=3)).isoformat()
    http.post(
        f"/v1/licences/{suspended}/suspend", json={"reason": "r", "until": until}, headers=headers
    )
    http.post(f"/v1/licences/{revoked}/revoke", json={"reason": "r"}, headers=headers)

    def ids(query):
        return _ids(http.get(f"/v1/licences?{query}", headers=headers))

    assert ids("status=active") == [active, nurse]
    assert ids("status=active&profession=doctor") == [active]
    assert ids("status=suspended") == [suspended]
    assert ids("status=revoked&profession=doctor") == [revoked]
    assert ids("status=revoked&profession=nurse") == []
    assert ids("status=erased") == []
    assert ids("profession=doctor") == [active, suspended, revoked]
    assert ids("") == [active, suspended, revoked, nurse]
    listed = http.get("/v1/licences?status=suspended", headers=headers).get_json()["licences"][0]
    assert listed["status"] == "suspended" and listed["suspended_until"] == until


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=x",
        "status=lapsed",
        "profession=astronaut",
        "registration_number=12a",
        "registration_number=123456789",
        "cursor=abc",
        "cursor=1234567890123456789",
        "statu=active",  # a misspelt filter is not silently ignored
        "registration_number=0000",
    ],
)
def test_bad_filters_are_400(http, regulator, query):
    response = http.get(f"/v1/licences?{query}", headers=regulator[1])
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_request"


def test_default_page_size_is_50(http, regulator, register):
    for _ in range(51):
        register(profession="public_health_nurse")
    body = http.get("/v1/licences", headers=regulator[1]).get_json()
    assert len(body["licences"]) == 50 and body["next_cursor"] is not None
    rest = http.get(f"/v1/licences?cursor={body['next_cursor']}", headers=regulator[1]).get_json()
    assert len(rest["licences"]) == 1 and rest["next_cursor"] is None
