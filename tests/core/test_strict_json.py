"""Strict JSON (core.strict_json): hostile bodies are 400 ``invalid_request``, another
media type is 415, never a 5xx; values the database refuses are the client's mistake."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DataError

from core import jws
from core.db import get_session
from core.strict_json import MAX_DEPTH, InvalidJson, loads
from tests.fixtures.verification import problem

HUGE = "9" * 5000


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@given(st.integers(-(2**63), 2**63 - 1))
def test_integers_within_64_bits_are_kept(value):
    assert loads(json.dumps({"n": value})) == {"n": value}


@given(st.one_of(st.integers(max_value=-(2**63) - 1), st.integers(min_value=2**63)))
def test_integers_beyond_64_bits_are_refused(value):
    with pytest.raises(InvalidJson, match="integer out of range"):
        loads(json.dumps([value]))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (HUGE, "integer out of range"),
        ("-" + HUGE, "integer out of range"),
        ("1e999", "number out of range"),
        ("NaN", "NaN"),
        ('{"a": 1, "a": 2}', "duplicate"),
        (_nested(MAX_DEPTH + 1), "nested too deeply"),
        (_nested(100_000), "nested too deeply"),
        ('{"a":' * 70 + "1" + "}" * 70, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        ("{", "not JSON"),
    ],
)
def test_hostile_documents_are_refused_with_fixed_text(document, reason):
    with pytest.raises(InvalidJson, match=reason) as caught:
        loads(document)
    assert "999" not in str(caught.value)


def test_the_deepest_allowed_document_parses():
    assert loads(_nested(MAX_DEPTH)) == json.loads(_nested(MAX_DEPTH))


def test_a_jws_payload_is_parsed_strictly_too():
    payload = jws.b64url_encode(f'{{"iat": {HUGE}}}'.encode())
    with pytest.raises(jws.JwsError):
        jws.parse_compact(f"e30.{payload}.AA")
    deep = jws.b64url_encode(f'{{"a": {_nested(MAX_DEPTH + 5)}}}'.encode())
    with pytest.raises(jws.JwsError):
        jws.parse_compact(f"e30.{deep}.AA")


@pytest.mark.parametrize(
    "body",
    [
        f'{{"profession": {HUGE}}}',
        f'{{"profession": "doctor", "x": {HUGE}}}',
        '{"profession": ' + _nested(200) + "}",
        '{"profession": ' + _nested(5000) + "}",
        '{"profession": "doctor", "profession": "nurse"}',
    ],
)
def test_hostile_bodies_are_400_and_not_echoed(http, verifier, body):
    _, headers = verifier
    response = http.post(
        "/v1/challenges", data=body, headers={**headers, "Content-Type": "application/json"}
    )
    problem(response, 400, "invalid_request")
    assert "999" not in response.get_data(as_text=True)


def test_anonymous_endpoints_refuse_them_too(http):
    response = http.post(
        "/v1/holder/sessions",
        data=f'{{"assertion": {HUGE}}}',
        headers={"Content-Type": "application/json"},
    )
    problem(response, 400, "invalid_request")


def test_a_huge_integer_inside_an_assertion_is_a_client_error(http, verifier):
    _, headers = verifier
    payload = jws.b64url_encode(f'{{"iat": {HUGE}, "nonce": "x"}}'.encode())
    header = jws.b64url_encode(b'{"alg": "RS256", "typ": "card-assertion+jwt"}')
    response = http.post(
        "/v1/verifications", json={"assertion": f"{header}.{payload}.AA"}, headers=headers
    )
    assert 400 <= response.status_code < 500
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_json_endpoint_refuses_other_media_types(http, verifier, content_type):
    _, headers = verifier
    sent = {**headers, "Content-Type": content_type} if content_type else headers
    response = http.post("/v1/challenges", data='{"profession": "doctor"}', headers=sent)
    body = problem(response, 415, "unsupported_media_type")
    assert "application/json" in body["detail"]


def test_a_body_over_the_limit_is_413(http, verifier):
    _, headers = verifier
    response = http.post(
        "/v1/challenges",
        data=b'{"profession": "' + b"a" * 100_000 + b'"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    problem(response, 413, "payload_too_large")


def test_responses_keep_non_ascii_readable(app):
    app.add_url_rule("/test-non-ascii", "non_ascii", lambda: {"name": "山田 花子"})
    response = app.test_client().get("/test-non-ascii")
    assert "山田 花子".encode() in response.get_data()
    assert b"\\u" not in response.get_data()


def test_a_value_the_database_refuses_is_400(app, is_postgres):
    def store_nul():
        get_session().execute(text("SELECT CAST(:v AS TEXT)"), {"v": "a\x00b"})
        if not is_postgres:  # SQLite stores NUL; the handler is what is tested here
            raise DataError("SELECT", {}, ValueError("refused"))
        return {}

    app.add_url_rule("/test-nul", "nul", store_nul)
    response = app.test_client().get("/test-nul")
    problem(response, 400, "invalid_request")
    assert "\x00" not in response.get_data(as_text=True)
