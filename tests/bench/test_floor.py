"""bench/floor.py does a verification's essential work for real: the replayed statements
consume a fresh challenge and write an access record, or the floor run stops."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bench.floor import Floor, _replace, capture_verification
from tests.fixtures.verification import problem


@pytest.fixture
def assertion_body(challenge, audience, verifier, licensed_holder):
    _client, headers = verifier
    holder = licensed_holder("doctor")

    def _body() -> str:
        issued = challenge(headers, "doctor")
        return json.dumps({"assertion": holder.sign(issued["nonce"], audience)})

    return _body


def _access_records(app) -> int:
    from core.db import get_session
    from verification.models import AccessRecord

    with app.app_context():
        return get_session().scalar(select(func.count()).select_from(AccessRecord))


def test_floor_replays_the_statements_of_a_verification(app, http, verifier, assertion_body):
    _client, headers = verifier
    headers = {**headers, "Content-Type": "application/json"}
    # The first verification also fills caches (CRL set, key versions); the floor is the
    # steady state.
    assert http.post("/v1/verifications", data=assertion_body(), headers=headers).status_code == 200
    captured_body = assertion_body()
    statements, response = capture_verification(app, http, captured_body, headers)
    kinds = [s.sql.split()[0].upper() for s in statements]
    # The consuming UPDATE, the challenge's answer (UPDATE) and the access record.
    assert kinds.count("UPDATE") == 2 and kinds.count("INSERT") == 1
    assert {s.licensing for s in statements} == {True, False}  # both stores

    floor = Floor(app, statements, captured_body, response)
    try:
        fresh = assertion_body()
        before = _access_records(app)
        floor(fresh)
        assert _access_records(app) == before + 1
        # The fresh challenge is spent: the service now refuses the same assertion.
        problem(http.post("/v1/verifications", data=fresh, headers=headers), 401, "invalid_nonce")
        # A replay that consumes nothing stops the floor run and writes nothing.
        records = _access_records(app)  # the refusal above is in the holder's log
        with pytest.raises(RuntimeError, match="did not consume"):
            floor(fresh)
        assert _access_records(app) == records
    finally:
        floor.close()


def test_replace_swaps_captured_values_in_either_parameter_style():
    assert _replace(("a", 1, "b"), {"a": "x"}) == ("x", 1, "b")
    assert _replace({"k": "a", "n": 2}, {"a": "x"}) == {"k": "x", "n": 2}
