"""The privacy promise, proven by scanning everything the service keeps or says.

A few hundred generated people go through registration and verification by two
hospitals. Then every byte of the licensing database, every response body and every
captured log line is searched for every My Number, and for codes that belong to
another agency (the hospitals' own codes, the card authority's, the licensing code
outside the licensing database). Nothing may be found.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app import import_models
from core import db
from identity import LICENSING_AGENCY, get_identity_platform, verifier_agency
from seed.population import generate_people

PEOPLE = 240
CARD_HOLDERS = 6


def _licensing_database_bytes(app) -> bytes:
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        path = Path(make_url(url).database)
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    import_models()
    chunks = []
    with app.extensions["db"].engine.connect() as conn:
        for table in db.Base.metadata.sorted_tables:
            rows = conn.execute(text(f'SELECT CAST(t AS text) FROM "{table.name}" t'))
            chunks.extend(row[0].encode() for row in rows)
    return b"\n".join(chunks)


@pytest.fixture
def population(
    app,
    http,
    regulator,
    issue_card,
    publish_crl,
    verifier,
    other_verifier,
    audience,
    challenge,
    verify,
    caplog,
    capfd,
):
    caplog.set_level(logging.DEBUG)
    people = list(generate_people(PEOPLE, seed=11))
    _, regulator_headers = regulator
    responses: dict[str, list[str]] = {"regulator": [], "hospital_a": [], "hospital_b": []}

    for person in people:
        licence = person.licences[0]
        response = http.post(
            "/v1/licences",
            headers=regulator_headers,
            json={
                "profession": licence.profession,
                "my_number": person.my_number,
                "name": person.name,
                "registration_number": licence.registration_number,
                "registered_on": licence.registered_on.isoformat(),
            },
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        responses["regulator"].append(response.get_data(as_text=True))
    # A mistyped My Number: the error must not echo it either.
    bad = people[0].my_number[:11] + str((int(people[0].my_number[11]) + 1) % 10)
    response = http.post(
        "/v1/licences",
        headers=regulator_headers,
        json={
            "profession": "nurse",
            "my_number": bad,
            "name": "誤入力 太郎",
            "registration_number": "99999",
            "registered_on": "2015-04-01",
        },
    )
    assert response.status_code == 422
    responses["regulator"].append(response.get_data(as_text=True))
    listing = http.get("/v1/licences?profession=doctor", headers=regulator_headers)
    responses["regulator"].append(listing.get_data(as_text=True))

    cards = [issue_card(my_number=person.my_number) for person in people[:CARD_HOLDERS]]
    publish_crl()
    subjects: dict[str, list[str]] = {"hospital_a": [], "hospital_b": []}
    for card, person in zip(cards, people, strict=False):
        for hospital, (_, headers) in (("hospital_a", verifier), ("hospital_b", other_verifier)):
            for _ in range(2):
                nonce = challenge(headers, person.licences[0].profession)["nonce"]
                response = verify(headers, card.sign(nonce=nonce, audience=audience))
                assert response.status_code == 200, response.get_data(as_text=True)
                body = response.get_json()
                assert body["outcome"] in ("licensed", "suspended", "revoked")
                subjects[hospital].append(body["holder"]["subject"])
                responses[hospital].append(response.get_data(as_text=True))

    with app.app_context():
        platform = get_identity_platform()
        numbers = [p.my_number for p in people]
        codes = {
            "licensing": platform.codes_for_my_numbers(LICENSING_AGENCY, numbers),
            "hospital_a": platform.codes_for_my_numbers(verifier_agency(verifier[0].id), numbers),
            "hospital_b": platform.codes_for_my_numbers(
                verifier_agency(other_verifier[0].id), numbers
            ),
            "card_authority": platform.codes_for_my_numbers("card-authority", numbers),
        }
    captured = capfd.readouterr()
    logs = captured.err + captured.out + "\n".join(r.getMessage() for r in caplog.records)
    return {
        "people": people,
        "responses": responses,
        "subjects": subjects,
        "codes": codes,
        "logs": logs,
        "database": _licensing_database_bytes(app),
    }


def _found(haystack: str | bytes, needles: list[str]) -> list[int]:
    """Indexes of needles present (indexes, not values, so a failure leaks nothing)."""
    if isinstance(haystack, bytes):
        return [i for i, n in enumerate(needles) if n.encode() in haystack]
    return [i for i, n in enumerate(needles) if n in haystack]


def test_nothing_links_or_reveals_a_person(population):
    people, codes = population["people"], population["codes"]
    my_numbers = [p.my_number for p in people]
    registration_numbers = [p.licences[0].registration_number for p in people]
    database = population["database"]
    assert len(database) > 10_000  # the scan really read the data

    # The licensing database: its own codes only, never a number or a foreign code.
    assert _found(database, codes["licensing"])  # sanity: the scan can find things
    assert _found(database, my_numbers) == []
    for agency in ("hospital_a", "hospital_b", "card_authority"):
        assert _found(database, codes[agency]) == [], agency

    # Responses: no My Number anywhere; a hospital sees only its own codes and never a
    # registration number; the regulator never sees a holder code.
    everything = [body for bodies in population["responses"].values() for body in bodies]
    assert _found("\n".join(everything), my_numbers) == []
    for hospital, other in (("hospital_a", "hospital_b"), ("hospital_b", "hospital_a")):
        said = "\n".join(population["responses"][hospital])
        assert _found(said, codes[hospital])  # sanity: own codes are there
        for foreign in (other, "licensing", "card_authority"):
            assert _found(said, codes[foreign]) == [], (hospital, foreign)
        assert _found(said, [f'"{n}"' for n in registration_numbers]) == []
    regulator_said = "\n".join(population["responses"]["regulator"])
    for agency in codes:
        assert _found(regulator_said, codes[agency]) == [], agency

    # Logs: no My Number and no code of any agency.
    logs = population["logs"]
    assert "request" in logs  # sanity: logs were captured
    assert _found(logs, my_numbers) == []
    for agency in codes:
        assert _found(logs, codes[agency]) == [], agency

    # Each hospital gets its own stable subject, and the two cannot join their records.
    a, b = population["subjects"]["hospital_a"], population["subjects"]["hospital_b"]
    assert a[0::2] == a[1::2]  # the same subject every time for the same holder
    assert b[0::2] == b[1::2]
    assert len(set(a)) == CARD_HOLDERS and len(set(b)) == CARD_HOLDERS
    assert not set(a) & set(b)
